"""Parameter files: load `params/NN_name.yaml`, check it against the notebook, resolve a profile.

Each notebook's cell tagged `parameters` declares every knob with a type, a default and a one-line
help comment, which may end in the values it allows:

    n_seeds: int = 3  # paired seeds per comparison [at least 1]
    thresholds: list[float] = [0.25, 0.1]  # training-error thresholds [above 0, below 1, non-empty]

(bounds apply to a number, or to every number in a list; no "=" in the comment, which papermill's
`--help-notebook` would not parse). The YAML file holds the profiles `smoke`,
`quick` and `full`, each listing every value it runs with (a test holds them complete, and quick equal to the
notebook's defaults, which an interactive run uses); they are read as overrides of the defaults, so a profile
may also list only what it changes. Everything is checked before anything runs: an
unknown key, a wrong type or element type, a value out of bounds, an unknown profile or experiment
raises `ParamError` with one line naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from cnnlab import data, paths
from cnnlab.suite.process import stderr_to

PROFILES = ("smoke", "quick", "full")
TOP_LEVEL_KEYS = ("title", "datasets", "profiles")
# Every notebook declares these; the runner sets them.
RUNNER_KEYS = {"profile": str, "seed": int, "output_dir": str}


class ParamError(ValueError):
    """A parameter file, profile, key or value that cannot be used; the message is one line."""


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader (no tags), refusing a key that appears twice in one mapping instead of keeping the
    last value."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' appears twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


@dataclass(frozen=True)
class Experiment:
    """One experiment: a notebook and its parameter file."""

    name: str
    title: str
    notebook: Path
    params_file: Path
    datasets: tuple[str, ...]
    profiles: dict = field(repr=False)
    defaults: dict = field(repr=False)
    specs: dict = field(repr=False)

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


BOUNDS = {"at least": operator.ge, "above": operator.gt, "at most": operator.le, "below": operator.lt}
SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
CONSTRAINTS = re.compile(r"\s*\[([^\[\]]*)\]\s*$")


@dataclass(frozen=True)
class Spec:
    """What one parameter accepts: a type (`int`, `list[float]`, ...), bounds on its numbers, whether a
    list may be empty, the help line and the names its strings must be among (`one of a | b`)."""

    type: str
    bounds: tuple = ()  # (operator text, number) pairs
    non_empty: bool = False
    help: str = ""
    choices: tuple = ()

    def describe(self) -> str:
        """What is allowed, as a person reads it: "list[float], each finite, above 0 and below 1, non-empty"."""
        parts = [self.type]
        conditions = (["finite"] if "float" in self.type else []) + (
            [" and ".join(f"{op} {_num(bound)}" for op, bound in self.bounds)] if self.bounds else []) + (
            [f"one of {', '.join(self.choices)}"] if self.choices else [])
        if conditions:
            parts.append(("each " if self.type.startswith("list") else "") + ", ".join(conditions))
        if self.non_empty:
            parts.append("non-empty")
        return ", ".join(parts)

    def accepts(self, value) -> bool:
        if not _of_type(value, self.type):
            return False
        if self.non_empty and not value:
            return False
        if self.choices and not all(text in self.choices for text in _strings(value)):
            return False
        return all(math.isfinite(number) and all(BOUNDS[op](number, bound) for op, bound in self.bounds)
                   for number in _numbers(value))

    def convert(self, value):
        """An accepted value with ints where floats are declared turned into floats."""
        return _to_float(value, self.type)


def _of_type(value, type_text: str) -> bool:
    if type_text.startswith("list[") and type_text.endswith("]"):
        return isinstance(value, list) and all(_of_type(v, type_text[5:-1]) for v in value)
    if type_text not in SCALARS:  # an unannotated parameter: the default's container type, or anything for None
        return type_text == "NoneType" or type(value).__name__ == type_text
    expected = SCALARS[type_text]
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    return isinstance(value, (int, float)) if expected is float else isinstance(value, expected)


def _to_float(value, type_text: str):
    if type_text.startswith("list["):
        return [_to_float(v, type_text[5:-1]) for v in value]
    return float(value) if type_text == "float" else value


def _numbers(value):
    if isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def _strings(value):
    if isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _num(value) -> str:
    return f"{value:g}"


def _type_text(node: ast.expr | None, default) -> str:
    """`int`, `list[float]`, ... from an annotation, or from the default when there is none."""
    if node is None:
        return type(default).__name__
    text = ast.unparse(node).replace(" ", "")
    inner = text
    while inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    if inner not in SCALARS:
        raise ValueError(f"unsupported type '{text}' (allowed: int, float, str, bool, list[...] of them)")
    return text


def _spec_from(node: ast.Assign | ast.AnnAssign, default, comment: str) -> Spec:
    """The spec of one parameter: its annotation and the `[...]` at the end of its comment."""
    type_text = _type_text(node.annotation if isinstance(node, ast.AnnAssign) else None, default)
    bounds, non_empty, choices = [], False, ()
    found = CONSTRAINTS.search(comment)
    if found:
        comment = comment[: found.start()]
        for token in (t.strip() for t in found.group(1).split(",")):
            if token == "non-empty":
                non_empty = True
                continue
            if token.startswith("one of "):
                if type_text.replace("list[", "").rstrip("]") != "str":
                    raise ValueError(f"'{token}' is for str parameters, not {type_text}")
                choices = tuple(name.strip() for name in token.removeprefix("one of ").split("|"))
                continue
            op, _, number = token.rpartition(" ")
            try:
                bounds.append((op, float(number)))
            except ValueError:
                op = None
            if op not in BOUNDS:
                raise ValueError(f"unknown constraint '{token}' (allowed: at least N, above N, at most N, below N, "
                                 "non-empty, one of A | B)")
    return Spec(type_text, tuple(bounds), non_empty, comment.strip(), choices)


def notebook_parameters(notebook: Path) -> tuple[dict, dict]:
    """The defaults of the notebook's `parameters` cell (Python literals) and each parameter's Spec."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    where = paths.rel(notebook)
    if len(cells) != 1:
        raise ParamError(f"{where}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    source = cells[0].source
    try:
        body = ast.parse(source).body
    except SyntaxError as err:
        raise ParamError(f"{where}: the parameters cell is not valid Python (line {err.lineno}: {err.msg})") from None
    lines = source.splitlines()
    defaults, specs = {}, {}
    for node in body:
        if not (isinstance(node, (ast.Assign, ast.AnnAssign))):
            raise ParamError(f"{where}: the parameters cell may only assign literals (line {node.lineno})")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            raise ParamError(f"{where}: assign one name per line in the parameters cell (line {node.lineno})")
        name = targets[0].id
        try:
            defaults[name] = ast.literal_eval(node.value)
        except ValueError:
            raise ParamError(f"{where}: parameter '{name}' must have a literal default") from None
        line = lines[node.end_lineno - 1]
        comment = line[node.end_col_offset:].strip().removeprefix("#")
        try:
            specs[name] = _spec_from(node, defaults[name], comment)
        except ValueError as err:
            raise ParamError(f"{where}: parameter '{name}': {err}") from None
        if not specs[name].accepts(defaults[name]):
            raise ParamError(f"{where}: parameter '{name}': the default {json.dumps(defaults[name])} is not "
                             f"{specs[name].describe()}")
    missing = sorted(set(RUNNER_KEYS) - set(defaults))
    if missing:
        raise ParamError(f"{where}: the parameters cell lacks {', '.join(missing)}")
    return defaults, specs


def load(params_file: Path) -> Experiment:
    """Read and check one parameter file and its notebook."""
    name = params_file.stem
    notebook = paths.NOTEBOOKS / f"{name}.ipynb"
    where = paths.rel(params_file)
    if not notebook.exists():
        raise ParamError(f"{where}: no notebook {paths.rel(notebook)}")
    try:
        spec = yaml.load(params_file.read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
    except UnicodeDecodeError as err:
        raise ParamError(f"{where}: not UTF-8 text (byte {err.start}); save it as UTF-8 YAML") from None
    except OSError as err:
        raise ParamError(f"{where}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{where}: not valid YAML ({_one_line(err)})") from None
    if not isinstance(spec, dict):
        raise ParamError(f"{where}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    for key in spec:
        if key not in TOP_LEVEL_KEYS:
            raise ParamError(f"{where}: unknown key '{key}' (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    datasets, allowed = spec.get("datasets") or [], data.offline_datasets()
    if not isinstance(datasets, list):
        raise ParamError(f"{where}: datasets must be a list (allowed: {', '.join(allowed)})")
    datasets = tuple(datasets)
    for ds in datasets:
        if ds not in allowed:
            raise ParamError(f"{where}: datasets: unknown dataset '{ds}' (allowed: {', '.join(allowed)})")
    profiles = spec.get("profiles") or {}
    if not isinstance(profiles, dict) or set(profiles) != set(PROFILES):
        raise ParamError(f"{where}: profiles must be exactly {', '.join(PROFILES)}")
    defaults, specs = notebook_parameters(notebook)
    for profile, values in profiles.items():
        if not isinstance(values, dict | None):
            raise ParamError(f"{where}: profile '{profile}' must be a mapping of parameters")
        for key, value in (values or {}).items():
            check_value(specs, key, value, f"{where}: profile '{profile}'")
    return Experiment(
        name=name,
        title=str(spec.get("title", name)),
        notebook=notebook,
        params_file=params_file,
        datasets=datasets,
        profiles={p: dict(v or {}) for p, v in profiles.items()},
        defaults=defaults,
        specs=specs,
    )


def param_files() -> list[Path]:
    """Every experiment's parameter file (`params/NN_name.yaml`), in order, unread."""
    return sorted(paths.PARAMS.glob("[0-9][0-9]_*.yaml"))


def discover() -> list[Experiment]:
    """Every experiment in params/, in order."""
    return [load(p) for p in param_files()]


def find(name: str) -> Experiment:
    """An experiment by full name (`01_architecture_arithmetic`), number (`01`) or title part."""
    files = param_files()
    matches = [p for p in files if name in (p.stem, p.stem.split("_", 1)[0], p.stem.split("_", 1)[1])]
    if len(matches) != 1:
        allowed = ", ".join(p.stem for p in files) or "none"
        raise ParamError(f"unknown experiment '{name}' (allowed: {allowed})")
    return load(matches[0])


def check_value(specs: dict, key: str, value, where: str):
    """`value` as the notebook declares `key` (ints turned into floats where floats are declared);
    ParamError naming the key, the value and what is allowed if it does not fit."""
    if key not in specs:
        raise ParamError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(specs))})")
    spec = specs[key]
    if key in RUNNER_KEYS and spec.type != RUNNER_KEYS[key].__name__:  # the runner's type, whatever was declared
        spec = Spec(RUNNER_KEYS[key].__name__)
    if not spec.accepts(value):
        raise ParamError(f"{where}: key '{key}' must be {spec.describe()}, got {json.dumps(value, default=str)} "
                         f"({type(value).__name__})")
    return spec.convert(value)


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` from the command line; the value is read as YAML (`3`, `0.1`, `[1, 2]`, `true`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParamError(f"-p {text}: expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            pass
    return key.strip(), value


def resolve(exp: Experiment, profile: str, overrides: dict | None = None, seed: int | None = None) -> dict:
    """Notebook defaults, then the profile, then overrides and seed: every value checked."""
    if profile not in PROFILES:
        raise ParamError(f"{paths.rel(exp.params_file)}: unknown profile '{profile}' (allowed: {', '.join(PROFILES)})")
    values = dict(exp.defaults)
    for key, value in exp.profiles[profile].items():
        values[key] = check_value(exp.specs, key, value, f"{paths.rel(exp.params_file)}: profile '{profile}'")
    for key, value in (overrides or {}).items():
        values[key] = check_value(exp.specs, key, value, f"{paths.rel(exp.params_file)}: -p")
    if seed is not None:
        values["seed"] = check_value(exp.specs, "seed", seed, f"{paths.rel(exp.params_file)}: --seed")
    values["profile"] = profile
    check_across(exp, values)
    return values


def check_across(exp: Experiment, values: dict) -> None:
    """The rules between parameters, in the experiment module's own `check(values)` where it has one (it raises
    ValueError): ParamError with its one line."""
    from cnnlab.experiments import EXPERIMENTS

    names = EXPERIMENTS.get(exp.name)
    if names is None:  # an experiment outside the table (a test's toy) has no rules of its own
        return
    import importlib

    with stderr_to(os.devnull):  # the module imports Keras: TensorFlow's start-up lines are not ours to show
        check = getattr(importlib.import_module(f"cnnlab.experiments.{names.module}"), "check", None)
    if check is not None:
        try:
            check(values)
        except ValueError as err:
            raise ParamError(f"{paths.rel(exp.params_file)}: {err}") from None




def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())

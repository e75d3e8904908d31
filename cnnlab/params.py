"""Parameter files: load `params/NN_name.yaml`, check it against the notebook, resolve a profile.

Each notebook's cell tagged `parameters` declares every knob with a default; the YAML file holds
the profiles `smoke`, `quick` and `full` as overrides of those defaults. Everything is checked
before anything runs: an unknown key, a wrong type, an unknown profile or experiment raises
`ParamError` with one line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from cnnlab import paths

PROFILES = ("smoke", "quick", "full")
TOP_LEVEL_KEYS = ("title", "datasets", "profiles")
DATASETS = ("fashion_mnist",)
# Every notebook declares these; the runner sets them.
RUNNER_KEYS = {"profile": str, "seed": int, "output_dir": str}


class ParamError(ValueError):
    """A parameter file, profile, key or value that cannot be used; the message is one line."""


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

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


def notebook_defaults(notebook: Path) -> dict:
    """The defaults of the notebook's `parameters` cell, as Python literals."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{paths.rel(notebook)}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    try:
        body = ast.parse(cells[0].source).body
    except SyntaxError as err:
        raise ParamError(
            f"{paths.rel(notebook)}: the parameters cell is not valid Python (line {err.lineno}: {err.msg})"
        ) from None
    defaults = {}
    for node in body:
        if not (isinstance(node, (ast.Assign, ast.AnnAssign))):
            raise ParamError(f"{paths.rel(notebook)}: the parameters cell may only assign literals (line {node.lineno})")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            raise ParamError(f"{paths.rel(notebook)}: assign one name per line in the parameters cell (line {node.lineno})")
        try:
            defaults[targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ParamError(
                f"{paths.rel(notebook)}: parameter '{targets[0].id}' must have a literal default"
            ) from None
    missing = sorted(set(RUNNER_KEYS) - set(defaults))
    if missing:
        raise ParamError(f"{paths.rel(notebook)}: the parameters cell lacks {', '.join(missing)}")
    return defaults


def load(params_file: Path) -> Experiment:
    """Read and check one parameter file and its notebook."""
    name = params_file.stem
    notebook = paths.NOTEBOOKS / f"{name}.ipynb"
    where = paths.rel(params_file)
    if not notebook.exists():
        raise ParamError(f"{where}: no notebook {paths.rel(notebook)}")
    try:
        spec = yaml.safe_load(params_file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamError(f"{where}: not valid YAML ({_one_line(err)})") from None
    if not isinstance(spec, dict):
        raise ParamError(f"{where}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    for key in spec:
        if key not in TOP_LEVEL_KEYS:
            raise ParamError(f"{where}: unknown key '{key}' (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    datasets = spec.get("datasets") or []
    if not isinstance(datasets, list):
        raise ParamError(f"{where}: datasets must be a list (allowed: {', '.join(DATASETS)})")
    datasets = tuple(datasets)
    for ds in datasets:
        if ds not in DATASETS:
            raise ParamError(f"{where}: datasets: unknown dataset '{ds}' (allowed: {', '.join(DATASETS)})")
    profiles = spec.get("profiles") or {}
    if not isinstance(profiles, dict) or set(profiles) != set(PROFILES):
        raise ParamError(f"{where}: profiles must be exactly {', '.join(PROFILES)}")
    defaults = notebook_defaults(notebook)
    for profile, values in profiles.items():
        if not isinstance(values, dict | None):
            raise ParamError(f"{where}: profile '{profile}' must be a mapping of parameters")
        for key, value in (values or {}).items():
            check_value(defaults, key, value, f"{where}: profile '{profile}'")
    return Experiment(
        name=name,
        title=str(spec.get("title", name)),
        notebook=notebook,
        params_file=params_file,
        datasets=datasets,
        profiles={p: dict(v or {}) for p, v in profiles.items()},
        defaults=defaults,
    )


def discover() -> list[Experiment]:
    """Every experiment in params/, in order."""
    return [load(p) for p in sorted(paths.PARAMS.glob("[0-9][0-9]_*.yaml"))]


def find(name: str) -> Experiment:
    """An experiment by full name (`01_architecture_arithmetic`), number (`01`) or title part."""
    files = sorted(paths.PARAMS.glob("[0-9][0-9]_*.yaml"))
    matches = [p for p in files if name in (p.stem, p.stem.split("_", 1)[0], p.stem.split("_", 1)[1])]
    if len(matches) != 1:
        allowed = ", ".join(p.stem for p in files) or "none"
        raise ParamError(f"unknown experiment '{name}' (allowed: {allowed})")
    return load(matches[0])


def check_value(defaults: dict, key: str, value, where: str):
    """`value` converted to the type of the notebook default of `key`; ParamError if it does not fit."""
    if key not in defaults:
        raise ParamError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(defaults))})")
    expected = RUNNER_KEYS.get(key) or type(defaults[key])
    if defaults[key] is None and key not in RUNNER_KEYS:
        return value
    if not _fits(value, expected):
        raise ParamError(
            f"{where}: key '{key}' must be {expected.__name__}, got {json.dumps(value, default=str)} "
            f"({type(value).__name__})"
        )
    return float(value) if expected is float else value


def _fits(value, expected: type) -> bool:
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


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
        values[key] = check_value(exp.defaults, key, value, f"{paths.rel(exp.params_file)}: profile '{profile}'")
    for key, value in (overrides or {}).items():
        values[key] = check_value(exp.defaults, key, value, f"{paths.rel(exp.params_file)}: -p")
    if seed is not None:
        values["seed"] = check_value(exp.defaults, "seed", seed, f"{paths.rel(exp.params_file)}: --seed")
    values["profile"] = profile
    return values




def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())

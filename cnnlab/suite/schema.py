"""results.json as the runner writes it, and the reader that takes nothing else.

The record's shape is a JSON Schema (`RESULTS_SCHEMA`, checked with `jsonschema`, which nbformat already
depends on: a standard, maintained validator whose error names the field). Beyond types, every file the record
names (its tables, figures and executed notebook) must be a relative path that resolves inside its own run
folder, and every table and figure must be there: a record that points elsewhere could make the report copy or
delete files outside the run. A record that fails any of this is damaged: one warning line, and it counts as no
result (the next run recomputes it).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import jsonschema

from cnnlab import paths
from cnnlab.suite.claim_text import VERDICTS
from cnnlab.suite.results import RESULTS_FILE

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TEXT = {"type": "string"}
_FILE = {"type": "string", "minLength": 1}

CLAIM_SCHEMA = {
    "type": "object",
    "required": ["id", "statement", "expected", "measured", "unit", "verdict", "rule"],
    "dependentRequired": {"per_seed": ["censored"], "interval": ["per_seed"]},
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "statement": _TEXT, "unit": _TEXT, "rule": _TEXT, "source": _TEXT, "note": _TEXT, "about": _TEXT,
        "expected": {"type": ["number", "string", "null"]},
        "measured": _NUMBER_OR_NULL,
        "verdict": {"enum": list(VERDICTS)},
        "source_inconsistent": {"type": "boolean"},
        "per_seed": {"type": "array", "items": _NUMBER_OR_NULL},
        "censored": {"type": "array", "items": _TEXT},
        "interval": {"type": "array", "items": _NUMBER_OR_NULL, "minItems": 2, "maxItems": 2},
        "level": {"type": "number"}, "null": {"type": "number"}, "log": {"type": "boolean"},
        "n_seeds": {"type": "integer"}, "seeds_left_out": {"type": "integer"},
        "bound": _TEXT,
        "decided_by": {"type": ["object", "null"]},
        "at_plateau": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
        "half_budget": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["verdict", "measured"],
            "properties": {"verdict": {"enum": list(VERDICTS)}, "measured": _NUMBER_OR_NULL}}]},
        "budget_limited": {"type": "boolean"},
    },
}

RESULTS_SCHEMA = {
    "type": "object",
    "required": ["experiment", "profile", "cache_key", "seeds", "versions", "duration_s", "tables", "figures",
                 "claims"],
    "properties": {
        "experiment": {"type": "string", "minLength": 1},
        "profile": {"type": "string", "minLength": 1},
        "cache_key": _TEXT,
        "check_run": {"type": "boolean"},
        "workers": {"type": "integer", "minimum": 1},
        "cluster": {"type": ["object", "null"]},
        "params": {"type": "object"},
        "seeds": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        "modules": {"type": ["array", "null"], "items": _TEXT},
        "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "started": _TEXT,
        "duration_s": {"type": "number", "minimum": 0},
        "peak_rss_mb": _NUMBER_OR_NULL,
        "cells": {"type": "array", "items": {
            "type": "object", "required": ["cell", "source", "seconds"],
            "properties": {"cell": {"type": "integer"}, "source": _TEXT, "seconds": {"type": "number"}}}},
        "notebook": _FILE,
        "metrics": {"type": "object"},
        "tables": {"type": "object", "additionalProperties": _FILE},
        "figures": {"type": "array", "items": _FILE},
        "claims": {"type": "array", "items": CLAIM_SCHEMA},
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(RESULTS_SCHEMA)


def schema_problem(record) -> str:
    """What is wrong with `record`'s shape, in one line ("" when it matches `RESULTS_SCHEMA`): the field's
    path and jsonschema's message."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(record))
    if error is None:
        return ""
    where = "/".join(str(part) for part in error.absolute_path) or "the record"
    return textwrap.shorten(f"{where}: {error.message}", width=160, placeholder=" ...")


def file_problem(record: dict, run_dir: Path) -> str:
    """What is wrong with the files `record` names ("" when each is a relative path inside `run_dir` and every
    table and figure exists there; the executed notebook may be gone)."""
    named = [(f"table '{name}'", path, True) for name, path in record["tables"].items()]
    named += [("figure", path, True) for path in record["figures"]]
    named += [("notebook", record["notebook"], False)] if "notebook" in record else []
    root = Path(run_dir).resolve()
    for what, path, required in named:
        target = (root / path).resolve()
        if Path(path).is_absolute() or not target.is_relative_to(root):
            return f"its {what} {path} is outside its run folder"
        if required and not target.is_file():
            return f"its {what} {path} is missing"
    return ""


def read_results(run_dir: Path) -> tuple[dict | None, str]:
    """The results.json of a run folder and "", or None and why there is no result: "" when the file is
    absent, what is wrong with it when it is damaged (cut off, not a record of the schema, naming files
    outside its folder)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None, ""
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, f"not valid JSON ({err})"
    except OSError as err:
        return None, f"cannot be read ({err.strerror or err})"
    problem = schema_problem(record) or file_problem(record, run_dir)
    return (None, problem) if problem else (record, "")


def load_results(run_dir: Path) -> dict | None:
    """The results.json of a run folder, or None when there is none. A damaged one counts as none, with one
    warning line naming the file: the next run recomputes it."""
    record, problem = read_results(run_dir)
    if problem:
        print(f"cnnlab: warning: {paths.rel(Path(run_dir) / RESULTS_FILE)} is damaged ({problem}); treated as no "
              "result", file=sys.stderr)
    return record

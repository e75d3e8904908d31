"""Files written whole or not at all: a temporary file in the same folder, renamed over the target (JSON with
its NaN and inf stored as null)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over `path`."""
    write_text_atomic(path, json.dumps(_finite(data), indent=2, default=_to_builtin, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file in the same folder, readable by everyone, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value):
    """JSON has no NaN or inf: store them as null (a diverged loss curve is a result, not an error)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, Path):
        return _finite(value.tolist())
    return value


def _to_builtin(value):
    """numpy scalars and arrays, paths: to plain JSON types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in results.json")

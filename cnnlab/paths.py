"""Where the project's folders are: the repository root is the folder above the package,
or `$CNNLAB_ROOT` when set (a separate workspace with its own notebooks, params and results)."""

import os
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("CNNLAB_ROOT") or PACKAGE.parent).resolve()
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
RESULTS = ROOT / "results"
RUNS = RESULTS / "runs"


def rel(path) -> str:
    """`path` relative to the repository root when it is inside it, for messages."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def emptied(folder: Path) -> Path:
    """`folder`, created, or emptied of what was there before."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder

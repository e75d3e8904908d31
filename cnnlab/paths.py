"""Where the project's folders are: the repository root is the folder above the package,
or `$CNNLAB_ROOT` when set (a separate workspace with its own notebooks, params and results)."""

import hashlib
import os
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("CNNLAB_ROOT") or PACKAGE.parent).resolve()
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
RESULTS = ROOT / "results"
RUNS = RESULTS / "runs"
# trained nets that later cells and runs reuse (not committed); $CNNLAB_CACHE moves it (tests use their own)
CACHE = Path(os.environ.get("CNNLAB_CACHE") or RESULTS / "cache").resolve()


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


def package_digest() -> str:
    """SHA-256 of cnnlab's source files (names and contents): part of every cache key."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

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


def source_hashes() -> dict[str, str]:
    """SHA-256 of each of cnnlab's source files, by its path relative to the package ("train.py")."""
    return {path.relative_to(PACKAGE).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(PACKAGE.rglob("*.py"))}


def package_digest(modules=None, hashes: dict | None = None) -> str:
    """SHA-256 over cnnlab's source files (names and contents), or over only `modules` (paths relative to the
    package; one that is gone counts as gone), from `hashes` (`source_hashes()` taken earlier) or as they are
    now: part of every cache key."""
    hashes = source_hashes() if hashes is None else hashes
    digest = hashlib.sha256()
    for name in sorted(hashes if modules is None else modules):
        digest.update(name.encode())
        digest.update(hashes.get(name, "gone").encode())
    return digest.hexdigest()

"""What a notebook's kernel process used: the cnnlab modules it imported (the code its results depend on); and
where this process's native stderr goes meanwhile."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from cnnlab import paths


def imported_modules() -> list[str]:
    """The cnnlab source files this process has imported, relative to the package ("train.py"): the code a
    run's results depend on, so that the cache key can leave the rest of the package out."""
    found = set()
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if source and (name == "cnnlab" or name.startswith("cnnlab.")):
            try:
                found.add(Path(source).resolve().relative_to(paths.PACKAGE).as_posix())
            except ValueError:  # a cnnlab imported from elsewhere: not this package's source
                continue
    return sorted(found)


@contextlib.contextmanager
def stderr_to(path: Path | str):
    """Send this process's stderr (file descriptor 2, which a kernel started meanwhile inherits) to `path`:
    what native libraries write there (TensorFlow's C++ start-up lines, which no variable silences) lands in a
    run's kernel.log, or in os.devnull, instead of the terminal. An empty log file is removed afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        path = Path(path)
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()

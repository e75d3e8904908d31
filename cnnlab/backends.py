"""The Keras backends cnnlab runs on, as one table that imports neither Keras nor a backend: each backend's
package (whose version, beside Keras's, decides a result) and the name reports show, and which backend a kernel
started now would use. `cnnlab.backend` does the backend-specific work inside a kernel; the runner and the
report read this table."""

from __future__ import annotations

import json
import os
from pathlib import Path

# backend -> (its package, the name a report shows), TensorFlow (Keras's default) first
BACKENDS = {"tensorflow": ("tensorflow", "TensorFlow"), "jax": ("jax", "JAX"), "torch": ("torch", "PyTorch")}
# the packages of the backends other than TensorFlow: their versions decide a result there, as TensorFlow's does
OTHER_PACKAGES = tuple(package for name, (package, _) in BACKENDS.items() if name != "tensorflow")


def package(backend: str) -> str:
    """The package whose version decides a result on `backend`."""
    return BACKENDS[backend][0]


def display_name(backend: str) -> str:
    """"TensorFlow", "JAX", "PyTorch" (an unknown backend as it is spelt)."""
    return BACKENDS.get(backend, (backend, backend))[1]


def selected() -> str:
    """The Keras backend a kernel started now would use: $KERAS_BACKEND, else ~/.keras/keras.json's, else
    TensorFlow (Keras's own order), read without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"

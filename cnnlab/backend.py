"""What differs between Keras's backends (TensorFlow, the default; JAX; PyTorch), in one place: seeding and
deterministic kernels, the precision nets compute in, gradients of a function of arrays, several devices, and the
versions that decide a result. Everything else in cnnlab uses `keras` and `keras.ops` alone.

The backend is Keras's: `KERAS_BACKEND`, else ~/.keras/keras.json, read when Keras is first imported.
"""

from __future__ import annotations

import gc
import random
from importlib import metadata

import keras
import numpy as np

from cnnlab.backends import BACKENDS, package
# Keras dtype policies a run may train under: float32, or bfloat16 compute with float32 weights (faster on a CPU
# with AVX512-BF16 or on a GPU; numbers differ from float32's, so a verdict may too)
PRECISIONS = ("float32", "mixed_bfloat16")
# Environment variables that change a trained net's floating-point path (a check run sets them)
NUMERIC_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def name() -> str:
    """The Keras backend of this process."""
    return keras.backend.backend()


def seed(value: int) -> None:
    """Seed Python, NumPy and the backend through Keras, and make the backend's kernels deterministic."""
    random.seed(value)
    np.random.seed(value)
    keras.utils.set_random_seed(value)
    if name() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name() == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    # JAX: deterministic already; its random numbers come from Keras's seeded generator


def use_precision(policy: str) -> None:
    """Build every later layer under the Keras dtype policy `policy`, one of PRECISIONS."""
    if policy not in PRECISIONS:
        raise ValueError(f"unknown precision '{policy}' (allowed: {', '.join(PRECISIONS)})")
    keras.config.set_dtype_policy(policy)


def numpy(value) -> np.ndarray:
    """A tensor or array as NumPy, bfloat16 (what nets compute in under mixed_bfloat16) as float32: NumPy and
    matplotlib do not compute in bfloat16."""
    if keras.backend.standardize_dtype(getattr(value, "dtype", "float32")) == "bfloat16":
        value = keras.ops.cast(value, "float32")  # before NumPy: TensorFlow cannot hand over a bfloat16 scalar
    return np.asarray(keras.ops.convert_to_numpy(value))


def clear_session() -> None:
    """`keras.backend.clear_session`, keeping the dtype policy (`use_precision`), which it would reset to
    float32, and collecting the garbage it leaves only among the objects made since this process's first call:
    what is alive then (the imported libraries, above all) is set aside once (`gc.freeze`). A full collection
    over TensorFlow's objects cost 0.2-0.4 s on every call, a sixth of a smoke notebook's time."""
    policy = keras.config.dtype_policy()
    keras.backend.clear_session(free_memory=False)
    gc.collect()
    if not _frozen:
        gc.freeze()
        _frozen.append(True)
    keras.config.set_dtype_policy(policy)


_frozen: list[bool] = []  # whether this process has set its long-lived objects aside (`clear_session`)


def gradients(fn, *args) -> tuple[float, list[np.ndarray]]:
    """The value of the scalar `fn(*args)` and its gradient with respect to each of the arrays `args`, as
    NumPy. `fn` takes and returns backend tensors (`keras.ops`, a model's call) and changes no state."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(xs)
            value = fn(*xs)
        grads = tape.gradient(value, xs)
    elif backend == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*map(keras.ops.convert_to_tensor,
                                                                                     args))
    elif backend == "torch":
        import torch

        xs = [keras.ops.convert_to_tensor(a).detach().requires_grad_(True) for a in args]
        value = fn(*xs)
        grads = torch.autograd.grad(value, xs)
    else:
        raise ValueError(f"Keras backend '{backend}' is not supported; use one of {', '.join(BACKENDS)}")
    return float(numpy(value)), [numpy(g) for g in grads]


def devices() -> list[str]:
    """The devices training can use: every accelerator, else every CPU device the backend sees (one, unless
    it was configured to split the CPU: a logical device configuration on TensorFlow,
    `--xla_force_host_platform_device_count` on JAX)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]


def distribute() -> int:
    """Train on every device of `devices()` with data parallelism when there is more than one: TensorFlow's
    MirroredStrategy, set as the default for models built from now on, or Keras's DataParallel on JAX (set
    again after each `keras.backend.clear_session`, which forgets it). Each step's batch is split across the
    devices and the gradients are averaged, so a step means what it means on one device. PyTorch trains on one
    device. Returns the number of devices that share a step."""
    found, backend = devices(), name()
    if len(found) < 2 or backend == "torch":
        return 1
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(found))
        return tf.distribute.get_strategy().num_replicas_in_sync
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    return len(found)


def versions() -> dict:
    """The backend and the versions of Keras and of the backend's package."""
    backend = name()
    return {"backend": backend, "keras": keras.__version__, package(backend): metadata.version(package(backend))}

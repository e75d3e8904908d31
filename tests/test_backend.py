"""cnnlab.backend: gradients against their closed forms, seeding, and the versions a run records, on whichever
Keras backend runs the tests (`make test-backends` runs them on JAX and PyTorch too)."""

import keras
import numpy as np
import pytest

from cnnlab import backend, backends


def test_gradients_are_the_closed_forms():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    w = np.array([2.0, -1.0], np.float32)

    def f(a, b):  # sum over rows of (a @ b)^2 + sum(a^2)
        return keras.ops.sum(keras.ops.matmul(a, b) ** 2) + keras.ops.sum(a ** 2)

    value, (grad_x, grad_w) = backend.gradients(f, x, w)
    ab = x @ w
    assert value == pytest.approx(float((ab ** 2).sum() + (x ** 2).sum()))
    np.testing.assert_allclose(grad_x, 2 * ab[:, None] * w[None, :] + 2 * x, rtol=1e-6)
    np.testing.assert_allclose(grad_w, 2 * x.T @ ab, rtol=1e-6)
    assert isinstance(grad_x, np.ndarray) and grad_x.shape == x.shape


def test_gradient_through_a_model_leaves_its_weights_alone():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="ones")])
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    _, (grad,) = backend.gradients(lambda x: keras.ops.sum(model(x)), np.ones((4, 3), np.float32))
    np.testing.assert_allclose(grad, np.full((4, 3), 2.0))  # each input feeds both units with weight 1
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.weights))


def test_same_seed_same_draws():
    draws = []
    for value in (4, 4, 5):
        backend.seed(value)
        draws.append(keras.ops.convert_to_numpy(keras.random.normal((5,))))
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])


def test_versions_name_the_backend_and_its_package():
    found = backend.versions()
    assert found["backend"] == keras.backend.backend() == backend.name()
    assert found["keras"] == keras.__version__ and found[backends.package(found["backend"])]


def test_one_device_needs_no_distribution():
    found = backend.devices()
    assert found
    if len(found) == 1:
        assert backend.distribute() == 1


def test_a_precision_sets_how_later_layers_compute_and_store():
    try:
        backend.use_precision("mixed_bfloat16")
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        assert (layer.compute_dtype, layer.variable_dtype) == ("bfloat16", "float32")
        assert keras.backend.standardize_dtype(layer(np.ones((2, 4), np.float32)).dtype) == "bfloat16"
    finally:
        backend.use_precision("float32")
    assert keras.layers.Dense(3).compute_dtype == "float32"
    with pytest.raises(ValueError, match=r"unknown precision 'float16' \(allowed: float32, mixed_bfloat16\)"):
        backend.use_precision("float16")


def test_a_fresh_session_keeps_the_precision():
    from cnnlab.train import seed_everything

    try:
        backend.use_precision("mixed_bfloat16")
        seed_everything(0)  # keras.backend.clear_session alone would reset the policy to float32
        assert keras.layers.Dense(3).compute_dtype == "bfloat16"
    finally:
        backend.use_precision("float32")


def test_a_fresh_session_frees_the_models_made_since_the_first_and_scans_only_those():
    import gc
    import weakref

    backend.clear_session()  # the first call in this process sets aside what is alive (or an earlier one did)
    frozen = gc.get_freeze_count()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])  # a Keras model holds reference cycles
    gone = weakref.ref(model)
    del model
    backend.clear_session()
    assert gone() is None  # collected: memory stays bounded however many models a run builds
    assert frozen > 100_000 and gc.get_freeze_count() <= frozen  # set aside once (TensorFlow's objects), not again

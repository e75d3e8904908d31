"""cnnlab.batches: seeded batches of in-memory arrays, tf.data on TensorFlow and ArrayBatches elsewhere."""

import keras
import numpy as np
import pytest

from cnnlab import batches

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data is TensorFlow's")


def epochs_of(ds, n_epochs=2):
    """The batches of `n_epochs` passes as lists, whichever kind `pipeline` returned."""
    if isinstance(ds, batches.ArrayBatches):
        passes = []
        for _ in range(n_epochs):
            passes.append([(xb.tolist(), yb.tolist()) for xb, yb in (ds[i] for i in range(len(ds)))])
            ds.on_epoch_end()
        return passes
    return [[(xb.numpy().tolist(), yb.numpy().tolist()) for xb, yb in ds] for _ in range(n_epochs)]


@pytest.mark.parametrize("kind", ["pipeline", "array_batches"])
def test_shuffle_reproducible_and_complete(kind):
    make = batches.pipeline if kind == "pipeline" else batches.ArrayBatches
    x = np.arange(100, dtype=np.int64)
    y = x * 3
    a = epochs_of(make(x, y, 32, 7))
    b = epochs_of(make(x, y, 32, 7))
    c = epochs_of(make(x, y, 32, 8))
    assert a == b
    assert a != c
    for epoch in a + c:
        assert [len(xb) for xb, _ in epoch] == [32, 32, 32, 4]
        seen = [v for xb, _ in epoch for v in xb]
        assert sorted(seen) == list(range(100))  # every example exactly once
        assert seen != list(range(100))  # and actually shuffled
        for xb, yb in epoch:
            assert yb == [3 * v for v in xb]
    assert a[0] != a[1]  # reshuffled each epoch


@tensorflow_only
def test_pipeline_gives_the_batches_of_shuffling_the_examples_themselves():
    import tensorflow as tf

    x = np.random.default_rng(0).random((300, 2, 2, 1)).astype("float32")
    y = np.arange(300)
    examples = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(300, seed=5, reshuffle_each_iteration=True)
    assert epochs_of(batches.pipeline(x, y, batch_size=64, shuffle_seed=5), 3) == epochs_of(examples.batch(64), 3)


@pytest.mark.parametrize("kind", ["pipeline", "array_batches"])
def test_without_seed_keeps_order(kind):
    make = batches.pipeline if kind == "pipeline" else batches.ArrayBatches
    x = np.arange(10, dtype=np.int64)
    epochs = epochs_of(make(x, x, 4))
    assert [xb for xb, _ in epochs[0]] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert epochs[0] == epochs[1]


def test_endless_array_batches_follow_the_pass_of_the_index():
    """A repeating ArrayBatches is endless, and batch i belongs to pass i // batches per pass, whatever
    epochs Keras cut the steps into: the same batches as the one-pass-per-epoch kind."""
    x = np.arange(10, dtype=np.int64)
    endless = batches.ArrayBatches(x, x, 4, seed=3, repeat=True)
    assert endless.num_batches is None and len(endless) == 3
    by_index = [endless[i][0].tolist() for i in range(9)]
    endless.on_epoch_end()  # a Keras epoch of `every` steps ending mid-pass changes nothing
    assert endless[4][0].tolist() == by_index[4]
    per_epoch = [xb for epoch in epochs_of(batches.ArrayBatches(x, x, 4, seed=3), 3) for xb, _ in epoch]
    assert by_index == per_epoch


def test_pipeline_on_other_backends_is_array_batches(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    x = np.arange(10, dtype=np.float32)
    made = batches.pipeline(x, x, 4, shuffle_seed=1, repeat=True)
    assert isinstance(made, batches.ArrayBatches) and made.repeat and made.seed == 1 and made.batch_size == 4


def test_an_endless_pipeline_started_at_a_later_batch_goes_on_where_an_unbroken_one_is():
    x = np.arange(10, dtype=np.int64)
    unbroken = batches.pipeline(x, x, 4, shuffle_seed=2, repeat=True).take(9)
    started = batches.pipeline(x, x, 4, shuffle_seed=2, repeat=True, start=5).take(4)
    assert [b[0].numpy().tolist() for b in started] == [b[0].numpy().tolist() for b in unbroken][5:]
    endless, later = (batches.ArrayBatches(x, x, 4, seed=2, repeat=True, start=s) for s in (0, 5))
    assert [later[i][0].tolist() for i in range(4)] == [endless[i][0].tolist() for i in range(5, 9)]
    with pytest.raises(ValueError, match="only an endless pipeline starts at a later batch, got start=5"):
        batches.pipeline(x, x, 4, start=5)

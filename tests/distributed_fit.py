"""Run by test_distribute.py in a fresh process that sees two CPU devices: `cnnlab.train.fit` spread over both
(as `seed_everything` sets it up) and the same fit on one device, each loss curve printed as JSON.

On TensorFlow this script splits the CPU into two logical devices before anything starts the runtime; on JAX
the test sets XLA_FLAGS=--xla_force_host_platform_device_count=2."""

import json
from unittest import mock

import keras

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from cnnlab import backend, train  # noqa: E402
from cnnlab.batches import ArrayBatches  # noqa: E402
from cnnlab.data import Dataset  # noqa: E402

rng = np.random.default_rng(0)
x = rng.random((256, 8, 8, 1)).astype("float32")
y = rng.integers(0, 10, 256)
data = Dataset("toy", x, y, x[:64], y[:64], tuple("0123456789"))


def build():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    return train.compile_sgd(model, 0.05)


train.seed_everything(3)
replicas = backend.distribute()
distributed = train.fit(build(), data, epochs=3, batch_size=64, seed=3, verbose=0)["loss"]
if keras.backend.backend() == "tensorflow":
    tf.distribute.experimental_set_strategy(None)
first = backend.devices()[:1]
with mock.patch.object(backend, "devices", lambda: first):  # one device: no strategy, no DataParallel
    train.seed_everything(3)
    # the input of the distributed fit (`train.fit` gives ArrayBatches on several devices), on one device
    single = build().fit(ArrayBatches(x, y, 64, 3), epochs=3, verbose=0, shuffle=False).history["loss"]
print(json.dumps(dict(replicas=replicas, distributed=distributed, single=single)))

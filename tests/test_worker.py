"""cnnlab.worker: a task run in a worker, under the policy of the process that sent it."""

import cloudpickle

from cnnlab import worker


def test_a_worker_takes_this_process_dtype_policy_and_keras_only_where_it_is_not_the_default():
    import keras

    from cnnlab import backend

    def policy_there(item):
        return keras.config.dtype_policy().name

    assert worker.dtype_policy() is None  # float32, Keras's default: a worker whose task builds nothing needs no Keras
    try:
        backend.use_precision("mixed_bfloat16")
        assert worker.dtype_policy() == "mixed_bfloat16"
        assert worker.run_item("a", lambda: cloudpickle.dumps(policy_there), "mixed_bfloat16", 0) == "mixed_bfloat16"
        # a kept worker whose earlier task ran under another policy is put back to the default
        assert worker.run_item("b", lambda: cloudpickle.dumps(policy_there), None, 0) == "float32"
    finally:
        backend.use_precision("float32")

"""Data parallelism on several devices (`cnnlab.backend.distribute`, chosen by `cnnlab.train.seed_everything`):
on a CPU split into two devices, a fit spread over both gives the loss curve of the same fit on one device."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_fit.py")


def fit_on_two_devices(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distributed_fit_gives_the_single_device_loss_curve(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (the optional extra .[{backend}])")
    found = fit_on_two_devices(backend)
    assert found["replicas"] == 2
    distributed, single = np.array(found["distributed"]), np.array(found["single"])
    assert len(distributed) == 3 and distributed[-1] < distributed[0] - 0.01  # it trained
    np.testing.assert_allclose(distributed, single, rtol=1e-5)

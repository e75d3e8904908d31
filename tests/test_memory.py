"""cnnlab.memory: the peak resident memory of this process."""

from cnnlab import memory


def test_peak_memory_is_the_process_own_not_its_parent_s():
    import subprocess
    import sys

    ballast = bytearray(400 * 2**20)  # 400 MiB resident in this (the parent) process when the child forks
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    child = subprocess.run([sys.executable, "-c", "from cnnlab.memory import peak_rss_mb; print(peak_rss_mb())"],
                           capture_output=True, text=True, check=True)
    assert memory.peak_rss_mb() > 400
    assert 5 < float(child.stdout) < 200
    del ballast

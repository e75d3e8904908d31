"""cnnlab.suite.bench: measurements, the skip and failure paths of its workers, and what it writes."""

import keras
import pandas as pd
import pytest

from cnnlab.models import conv_stack
from cnnlab.suite import bench


def rows(measured: dict) -> list[dict]:
    """Fake measurements from (setting, variant) -> images/s (three repeats around it, or the repeats' list):
    the same for every net."""
    return [dict(setting=setting, variant=variant, backend="tensorflow", net=net, batch_size=128, images=3840,
                 images_per_s=value if isinstance(value, list) else [0.9 * value, value, 1.2 * value])
            for (setting, variant), value in measured.items() for net in bench.NETS]


@pytest.mark.parametrize("variant", ["cnnlab_fit", "raw_fit_numpy", "steps_per_execution_8", "mixed_bfloat16"])
def test_measure_times_each_repeat(variant):
    rates = bench._measure(lambda: conv_stack([4], seed=0), 32, variant, repeats=2, batches=2)
    assert len(rates) == 2 and all(r > 0 for r in rates)
    assert keras.mixed_precision.global_policy().name == "float32"  # the bf16 policy does not leak


def test_tables_and_ratios_are_computed_from_the_fastest_repeats():
    table = bench.throughput_table(rows({("tensorflow", "raw_fit_numpy"): 1000.0}))
    assert table.images_per_s_median.tolist() == [1000.0] * 3 and table.images_per_s_min.tolist() == [900.0] * 3
    # repeats in two modes, as on a shared machine: the fastest repeat decides, not the median
    measured = {("tensorflow", "raw_fit_numpy"): [1000.0, 500.0, 1000.0],
                ("tensorflow", "cnnlab_fit"): [970.0, 970.0, 400.0],
                ("tensorflow, 1 thread", "raw_fit_numpy"): [1500.0, 600.0, 600.0]}
    ratios = bench.ratio_table(bench.throughput_table(rows(measured))).set_index("comparison")
    assert ratios.loc["cnnlab.train.fit / raw model.fit"].tolist() == pytest.approx([0.97] * 3)
    assert ratios.loc["1 thread / all cores"].tolist() == pytest.approx([1.5] * 3)
    assert "mixed_bfloat16 / float32" not in ratios.index  # not measured: no ratio


def test_absent_backends_are_skipped_with_a_line_and_a_failing_worker_is_named(monkeypatch, capsys):
    monkeypatch.setattr(bench, "SETTINGS", (bench.Setting("jax", {}, ("raw_fit_numpy",), needs="no_such_module"),))
    assert bench.run_bench(1, 1) == ([], ["jax: skipped, no_such_module is not installed (install it to measure "
                                          "this backend)"])
    monkeypatch.setattr(bench, "SETTINGS", (bench.Setting("broken", {}, ("no_such_variant",)),))
    with pytest.raises(bench.BenchFailed, match=r"bench worker 'broken' failed: ValueError: unknown bench variant "
                                                r"'no_such_variant' \(allowed: cnnlab_fit, "):
        bench.run_bench(1, 1)


def test_write_puts_three_files_in_place(tmp_path):
    info = dict(cpu="Test CPU", cores=2, flags=["avx2"], bf16="none", versions={"keras": "3"})
    folder = bench.write(rows({("tensorflow", "raw_fit_numpy"): 1000.0}), ["torch: skipped"], info, tmp_path / "bench")
    assert sorted(p.name for p in folder.iterdir()) == ["bench.csv", "bench.md", "bench.png"]
    assert not list(tmp_path.glob(".bench.partial-*"))
    assert len(pd.read_csv(folder / "bench.csv")) == 3
    text = (folder / "bench.md").read_text()
    assert "Machine: Test CPU, 2 cores; flags avx2; bf16 in hardware: none. keras 3." in text
    assert "| raw_fit_numpy | 1,000 (900-1,200) | 1,000 (900-1,200) | 1,000 (900-1,200) |" in text
    assert "- torch: skipped" in text


def test_machine_names_the_cpu_and_its_bf16_support():
    info = bench.machine()
    assert info["cores"] >= 1 and info["cpu"]
    assert info["bf16"].startswith(("AVX512-BF16", "AMX-BF16", "none"))
    assert "keras" in info["versions"]

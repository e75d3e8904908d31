"""`cnnlab bench`: where the minutes of a run go, and which training settings pay on this machine.

Training throughput (images per second of timed epochs after a warm-up epoch; min / median / max over the
repeats) of three nets the suite trains, built from their experiments' quick parameters: 03's 2012 CNN, 04's
mini-VGG D and 06's ResNet-20. Settings that a process fixes at start-up (TensorFlow's threads, the Keras
backend) each get a fresh worker process; the others are compared inside one:

- cnnlab's training path (`cnnlab.train.fit`: the seeded tf.data pipeline and its callbacks) against a raw
  `model.fit` on the same arrays (tf.data and numpy input);
- `steps_per_execution` 1 against 8; float32 against `mixed_bfloat16` (the CPU's bf16 support is reported);
- all cores against one intra-op thread; the JAX and PyTorch backends where they are installed.

Then the per-cell seconds of every experiment's latest quick run (papermill's own cell timings). Writes
results/bench/bench.csv, bench.md and bench.png.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cnnlab import paths

BENCH = paths.RESULTS / "bench"
NETS = ("cnn2012", "vgg_d", "resnet20")
BF16_FLAGS = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


@dataclass(frozen=True)
class Setting:
    """One worker process: its name, the environment it starts with and the variants it measures."""

    name: str
    env: dict
    variants: tuple[str, ...]
    needs: str | None = None  # a module that must be importable (an optional backend)


SETTINGS = (
    Setting("tensorflow", {}, ("cnnlab_fit", "raw_fit_tfdata", "raw_fit_numpy", "steps_per_execution_8",
                               "mixed_bfloat16")),
    Setting("tensorflow, 1 thread", {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                                     "OMP_NUM_THREADS": "1"}, ("raw_fit_numpy",)),
    Setting("jax", {"KERAS_BACKEND": "jax"}, ("raw_fit_numpy",), needs="jax"),
    Setting("torch", {"KERAS_BACKEND": "torch"}, ("raw_fit_numpy",), needs="torch"),
)
VARIANTS = ("cnnlab_fit", "raw_fit_tfdata", "raw_fit_numpy", "steps_per_execution_8", "mixed_bfloat16")
MARK = "BENCH "  # a worker's measurement lines start with this; its other lines are progress


class BenchFailed(RuntimeError):
    """A worker process that failed: the message names the setting and its last error line."""


# --- the worker: one process, one start-up setting ---------------------------------------------------------


def reference_nets() -> dict:
    """net -> (build(), batch size): the uncompiled reference nets as their experiments' quick profiles build them."""
    from cnnlab.models import cifar_resnet, conv_stack, vgg
    from cnnlab.models.convnet import stages_layout
    from cnnlab.suite import params

    def quick(number):
        return params.resolve(params.find(number), "quick")

    p03, p04, p06 = quick("03"), quick("04"), quick("06")
    return {
        "cnn2012": (lambda: conv_stack(stages_layout(p03["stages"]), kernel_size=p03["kernel_size"], init="normal_0.01",
                                       seed=0), p03["batch_size"]),
        "vgg_d": (lambda: vgg("D", classes=10, classifier_activation=None, input_shape=(32, 32, 1),
                              width_divisor=p04["width_divisor"], fc_units=p04["fc_units"], dropout=p04["dropout"],
                              init=p04["init"]), p04["batch_size"]),
        "resnet20": (lambda: cifar_resnet(20, input_shape=(28, 28, 1), width_divisor=p06["width_divisor"],
                                          weight_decay=p06["weight_decay"], seed=0),
                     p06["batch_size"]),
    }


def _measure(build, batch_size: int, variant: str, repeats: int, batches: int) -> list[float]:
    """Images per second of each of `repeats` timed epochs of `batches` batches (random images; the values do
    not change the work), after one warm-up epoch that builds the training function."""
    import keras
    import numpy as np

    from cnnlab.train import compile_sgd

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if variant == "mixed_bfloat16" else "float32")
    model = build()
    n = batch_size * batches
    x = np.random.default_rng(0).normal(size=(n, *model.input_shape[1:])).astype("float32")
    y = np.arange(n) % 10
    compile_sgd(model, 0.01, steps_per_execution=8 if variant == "steps_per_execution_8" else 1)
    epoch = _epoch(model, x, y, batch_size, variant)
    epoch()  # warm-up: traces and compiles
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - start)
    keras.mixed_precision.set_global_policy("float32")
    return [n / s for s in seconds]


def _epoch(model, x, y, batch_size: int, variant: str):
    """One epoch over (x, y) the way `variant` trains."""
    if variant == "cnnlab_fit":
        from cnnlab import data, train

        dataset = data.Dataset("bench", x, y, x[:1], y[:1], tuple(str(i) for i in range(10)))
        return lambda: train.fit(model, dataset, 1, batch_size, seed=0, verbose=0)
    if variant == "raw_fit_tfdata":
        import tensorflow as tf

        batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return lambda: model.fit(batched, epochs=1, verbose=0)
    return lambda: model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)


def worker(variants, repeats: int, batches: int, out=sys.stdout) -> None:
    """Measure `variants` on every reference net in this process; one MARK line (JSON) per measurement."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown bench variant {unknown[0]!r} (allowed: {', '.join(VARIANTS)})")
    import keras

    backend = keras.backend.backend()
    for net, (build, batch_size) in reference_nets().items():
        for variant in variants:
            rates = _measure(build, batch_size, variant, repeats, batches)
            row = dict(net=net, variant=variant, backend=backend, batch_size=batch_size, images=batch_size * batches,
                       images_per_s=rates)
            print(f"{net:9s} {variant:22s} {sorted(rates)[len(rates) // 2]:8,.0f} images/s", file=out, flush=True)
            print(MARK + json.dumps(row), file=out, flush=True)
            keras.backend.clear_session()


# --- the orchestrator -----------------------------------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on: CPU model, cores, the instruction-set flags that matter for training,
    bf16 support, and the versions."""
    from importlib import metadata

    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["cpu"] = value.strip()
        elif key.strip() == "flags":
            info["flags"] = [f for f in SHOWN_FLAGS if f in value.split()]
    bf16 = [name for flag, name in BF16_FLAGS.items() if flag in info["flags"]]
    info["bf16"] = ", ".join(bf16) if bf16 else "none (bf16 is emulated: expect it to be slower)"
    info["versions"] = {}
    for package in ("tensorflow", "keras", "jax", "torch"):
        try:
            info["versions"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info


def run_bench(repeats: int = 5, batches: int = 50, out=sys.stdout) -> tuple[list[dict], list[str]]:
    """Run every setting's worker in turn; return the measurements and a line per setting that was skipped."""
    rows, skipped = [], []
    for setting in SETTINGS:
        if setting.needs and importlib.util.find_spec(setting.needs) is None:
            line = f"{setting.name}: skipped, {setting.needs} is not installed (install it to measure this backend)"
            skipped.append(line)
            print(f"[bench] {line}", file=out, flush=True)
            continue
        print(f"[bench] {setting.name}: {', '.join(setting.variants)}", file=out, flush=True)
        rows += [dict(row, setting=setting.name) for row in _run_worker(setting, repeats, batches, out)]
    return rows, skipped


def _run_worker(setting: Setting, repeats: int, batches: int, out) -> list[dict]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore", **setting.env,
               PYTHONPATH=os.pathsep.join([str(paths.PACKAGE.parent), os.environ.get("PYTHONPATH", "")]))
    spec = json.dumps(dict(variants=setting.variants, repeats=repeats, batches=batches))
    process = subprocess.Popen([sys.executable, "-m", "cnnlab.suite.bench", spec], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rows = []
    for line in process.stdout:
        if line.startswith(MARK):
            rows.append(json.loads(line[len(MARK):]))
        elif line.strip():
            print(f"    {line.rstrip()}", file=out, flush=True)
    errors = process.stderr.read()
    if process.wait() != 0:
        last = [line for line in errors.splitlines() if line.strip()][-1:] or ["no message"]
        raise BenchFailed(f"bench worker '{setting.name}' failed: {last[0]}")
    return rows



# --- tables, chart and files --------------------------------------------------------------------------------

# (what the ratio tells, numerator (setting, variant), denominator): ratios of the fastest repeats' images/s
COMPARISONS = (
    ("cnnlab.train.fit / raw model.fit", ("tensorflow", "cnnlab_fit"), ("tensorflow", "raw_fit_numpy")),
    ("tf.data input / numpy input", ("tensorflow", "raw_fit_tfdata"), ("tensorflow", "raw_fit_numpy")),
    ("steps_per_execution 8 / 1", ("tensorflow", "steps_per_execution_8"), ("tensorflow", "raw_fit_numpy")),
    ("mixed_bfloat16 / float32", ("tensorflow", "mixed_bfloat16"), ("tensorflow", "raw_fit_numpy")),
    ("1 thread / all cores", ("tensorflow, 1 thread", "raw_fit_numpy"), ("tensorflow", "raw_fit_numpy")),
    ("JAX / TensorFlow backend", ("jax", "raw_fit_numpy"), ("tensorflow", "raw_fit_numpy")),
    ("PyTorch / TensorFlow backend", ("torch", "raw_fit_numpy"), ("tensorflow", "raw_fit_numpy")),
)


def throughput_table(rows: list[dict]):
    """One row per setting, variant and net: batch size and images/s min, median and max over the repeats."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame([dict(setting=r["setting"], variant=r["variant"], backend=r["backend"], net=r["net"],
                              batch_size=r["batch_size"], repeats=len(r["images_per_s"]),
                              images_per_s_min=min(r["images_per_s"]),
                              images_per_s_median=float(np.median(r["images_per_s"])),
                              images_per_s_max=max(r["images_per_s"])) for r in rows])


def ratio_table(table):
    """Per comparison of COMPARISONS whose two sides were measured, the ratio of the fastest repeats' images/s
    per net: on a shared machine the slower repeats measure the neighbours (on 2 cores they fall into two modes,
    the second core free or busy), the fastest one the setting itself, as `timeit` takes the shortest time."""
    import pandas as pd

    best = table.set_index(["setting", "variant", "net"]).images_per_s_max
    out = []
    for label, top, bottom in COMPARISONS:
        found = {net: best[(*top, net)] / best[(*bottom, net)] for net in NETS
                 if (*top, net) in best.index and (*bottom, net) in best.index}
        if found:
            out.append(dict(comparison=label, **found))
    return pd.DataFrame(out)


def notebook_costs(profile: str = "quick"):
    """Per experiment's latest run of `profile`: its seconds, the seconds of its cells and of everything else
    (kernel start-up, papermill), and its slowest cells, from results.json."""
    import pandas as pd

    from cnnlab.suite.schema import load_results

    out = []
    for folder in sorted(paths.RUNS.glob(f"*/{profile}")):
        results = load_results(folder)
        if not results:
            continue
        cells = results.get("cells") or []
        slowest = sorted(cells, key=lambda c: -c["seconds"])[:3]
        in_cells = sum(c["seconds"] for c in cells)
        out.append(dict(experiment=results["experiment"], seconds=results["duration_s"],
                        cells_s=round(in_cells, 1) if cells else None,
                        start_and_rest_s=round(results["duration_s"] - in_cells, 1) if cells else None,
                        slowest_cells="; ".join(f"{c['cell']}: {c['source']} {c['seconds']:.0f} s" for c in slowest)
                        or "(run before per-cell timing)"))
    return pd.DataFrame(out)


def plot(table):
    """Median images/s per net, one bar per setting and variant, the repeats' range as whiskers."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(NETS), figsize=(5 * len(NETS), 4), squeeze=False)
    for ax, net in zip(axes[0], NETS):
        rows = table[table.net == net]
        labels = [f"{s}: {v}" if s != "tensorflow" else v for s, v in zip(rows.setting, rows.variant)]
        median = rows.images_per_s_median
        ax.barh(range(len(rows)), median, color="C0", alpha=0.8,
                xerr=[median - rows.images_per_s_min, rows.images_per_s_max - median])
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set(title=net, xlabel="training images / s (median, min-max)")
    fig.tight_layout()
    return fig


def write(rows: list[dict], skipped: list[str], info: dict, folder: Path = BENCH) -> Path:
    """bench.csv, bench.md and bench.png into `folder`, replaced only once all three are written."""
    import shutil

    table = throughput_table(rows)
    work = paths.emptied(folder.with_name(f".{folder.name}.partial-{os.getpid()}"))
    table.to_csv(work / "bench.csv", index=False, float_format="%.1f")
    fig = plot(table)
    fig.savefig(work / "bench.png", dpi=110)
    (work / "bench.md").write_text(markdown(table, skipped, info))
    if folder.exists():
        shutil.rmtree(folder)
    work.rename(folder)
    return folder


def markdown(table, skipped: list[str], info: dict) -> str:
    """The bench report: the machine, throughput, the ratios that decide settings, and the notebooks' costs."""
    shown = table.assign(images_per_s=[f"{m:,.0f} ({lo:,.0f}-{hi:,.0f})" for m, lo, hi in zip(
        table.images_per_s_median, table.images_per_s_min, table.images_per_s_max)])
    shown["measured"] = [v if s == "tensorflow" else f"{v} ({s})" for s, v in zip(shown.setting, shown.variant)]
    wide = shown.pivot_table(index="measured", columns="net", values="images_per_s", aggfunc="first",
                             sort=False)[[n for n in NETS if n in set(table.net)]]
    ratios = ratio_table(table)
    costs = notebook_costs()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        "# cnnlab bench", "",
        f"Machine: {info['cpu']}, {info['cores']} cores; flags {', '.join(info['flags']) or 'none of interest'}; "
        f"bf16 in hardware: {info['bf16']}. {versions}.", "",
        f"Training images per second: median of {int(table.repeats.max())} timed epochs (min-max) after a warm-up "
        "epoch, random images, SGD with momentum, each net at its experiment's batch size.", "",
        wide.to_markdown(), "",
        "Ratios of the fastest repeats (above 1: the first is faster; the slower repeats of a shared machine "
        "measure its neighbours):", "",
        ratios.to_markdown(index=False, floatfmt=".2f") if len(ratios) else "(none measured)", "",
    ]
    lines += [f"- {line}" for line in skipped] + ([""] if skipped else [])
    lines += ["## Where a quick run's minutes go", "",
              "From papermill's per-cell timings in each experiment's latest quick results.json; start and rest is "
              "the kernel's start-up and papermill's own work.", "",
              costs.to_markdown(index=False) if len(costs) else "(no quick runs yet)", ""]
    return "\n".join(lines)

if __name__ == "__main__":
    worker(**json.loads(sys.argv[1]))

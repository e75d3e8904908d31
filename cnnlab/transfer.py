"""Transfer learning: copy the first n weight layers of a trained net into a fresh one, frozen or
trainable (Yosinski et al. 2014), and a store of trained source nets that later cells and runs reuse.

Yosinski's variants name the source net and whether the copied layers train on: `AnB` copies the first
n layers of the net trained on half A into a net for half B and freezes them, `AnB+` fine-tunes them;
`BnB` and `BnB+` copy from the net trained on B itself (baseB), the control for co-adaptation.

A net's weight layers are `hidden_1` ... `hidden_L` (the naming of `cnnlab.models`); a conv's batch
normalisation `hidden_<i>_bn` travels with it. Two Keras pitfalls, handled here:

- `trainable` is read when a model is compiled: `copy_layers` sets it, compile afterwards.
- A frozen BatchNormalization layer runs in inference mode in Keras 3: it normalises with the source's
  moving statistics and leaves them unchanged, as a frozen feature extractor must.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import keras

from cnnlab import backend, convergence, paths
from cnnlab.backend import NUMERIC_ENV
from cnnlab.plots import plot_runs
from cnnlab.train import fit_steps, seed_everything

VARIANTS = ("BnB", "BnB+", "AnB", "AnB+")
# Fig. 2's colours: B-sourced blue, A-sourced red; dashed when fine-tuned
VARIANT_STYLES = {"BnB": ("C0", "o", "-"), "BnB+": ("C0", "^", "--"), "AnB": ("C3", "s", "-"),
                  "AnB+": ("C3", "D", "--")}


def weight_blocks(model) -> list[list]:
    """Per weight layer, in depth order: `hidden_<i>` and its batch normalisation, if any."""
    by_name = {layer.name: layer for layer in model.layers}
    blocks, i = [], 1
    while f"hidden_{i}" in by_name:
        blocks.append([by_name[f"hidden_{i}"]] + ([by_name[f"hidden_{i}_bn"]] if f"hidden_{i}_bn" in by_name else []))
        i += 1
    if not blocks:
        raise ValueError(f"model '{model.name}' has no layers named hidden_<i>")
    return blocks


def copy_layers(source, target, n: int, frozen: bool):
    """Copy the weights of `source`'s first `n` weight layers into `target` (the same architecture below
    them) and freeze them when `frozen`; the layers above keep `target`'s fresh initialisation.
    Returns `target`, still to be compiled."""
    source_blocks, target_blocks = weight_blocks(source), weight_blocks(target)
    if not 1 <= n <= min(len(source_blocks), len(target_blocks)):
        raise ValueError(f"cannot transfer {n} layers: the nets share at most "
                         f"{min(len(source_blocks), len(target_blocks))} (allowed: 1 to that)")
    for source_block, target_block in zip(source_blocks[:n], target_blocks[:n]):
        for from_layer, to_layer in zip(source_block, target_block, strict=True):
            shapes = [tuple(w.shape) for w in from_layer.get_weights()]
            if shapes != [tuple(w.shape) for w in to_layer.get_weights()]:
                raise ValueError(f"layer '{from_layer.name}' differs in shape between the nets: {shapes}")
            to_layer.set_weights(from_layer.get_weights())
            to_layer.trainable = not frozen
    return target


def _numeric_context() -> dict:
    """What besides the recipe decides a trained net's weights: versions, backend, floating-point path, the
    precision it computes in and cnnlab's source."""
    return dict(**backend.versions(), env={name: os.environ.get(name) for name in NUMERIC_ENV},
                precision=keras.config.dtype_policy().name, cnnlab=paths.package_digest())


def _stem(name: str, recipe: dict) -> str:
    """`name` and a digest of `recipe` with the numeric context: the stored files' common name."""
    key = json.dumps(dict(recipe=recipe, context=_numeric_context()), sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _save(model, path: Path) -> None:
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}.keras")
    model.save(partial)
    partial.replace(path)  # a net is stored whole or not at all


def stored_model(name: str, recipe: dict, train: Callable[[], keras.Model], folder: Path | None = None):
    """The net that `train()` returns for `recipe` (everything that decides it: data, seed, architecture,
    schedule), trained once and then loaded from `folder` (default results/cache/models) with Keras's
    safe loading. Returns (model, reused)."""
    folder = Path(folder or paths.CACHE / "models")
    path = folder / f"{_stem(name, recipe)}.keras"
    if path.exists():
        return keras.saving.load_model(path, compile=False), True
    model = train()
    folder.mkdir(parents=True, exist_ok=True)
    _save(model, path)
    return model, False


def stored_run(name: str, recipe: dict, train: Callable[[], tuple[dict, dict]], folder: Path | None = None):
    """The nets and the record that `train()` returns ({label: model}, a JSON-able dict) for `recipe`, trained
    once and then loaded from `folder` (default results/cache/models): one `<name>-<digest>.<label>.keras`
    per net and `<name>-<digest>.json` with the record, written last (a run is reused only when that is
    there). Returns (nets, record, reused)."""
    folder = Path(folder or paths.CACHE / "models")
    stem = _stem(name, recipe)
    index = folder / f"{stem}.json"
    if index.exists():
        stored = json.loads(index.read_text())
        nets = {label: keras.saving.load_model(folder / f"{stem}.{label}.keras", compile=False)
                for label in stored["nets"]}
        return nets, stored["record"], True
    nets, record = train()
    folder.mkdir(parents=True, exist_ok=True)
    for label, model in nets.items():
        _save(model, folder / f"{stem}.{label}.keras")
    partial = index.with_name(f".{index.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(dict(nets=list(nets), record=record), default=str))
    partial.replace(index)
    return nets, record, False


def check_variant(name: str) -> tuple[str, bool]:
    """(source half, frozen) of a variant name; ValueError naming the allowed ones otherwise."""
    if name not in VARIANTS:
        raise ValueError(f"unknown transfer variant '{name}' (allowed: {', '.join(VARIANTS)})")
    return name[0], not name.endswith("+")


def transfer_builds(build, compile, sources: dict, ns, variants) -> dict:
    """(variant, n) -> build(seed) for `cnnlab.train.run_steps`: a fresh `build(seed)` net with the first n
    layers of `sources[half][seed]` (half "A" or "B"), frozen or fine-tuned as the variant says, compiled
    by `compile(model)` after the copy."""
    builds = {}
    for variant in variants:
        half, frozen = check_variant(variant)
        for n in ns:
            builds[(variant, n)] = lambda seed, half=half, n=n, frozen=frozen: compile(
                copy_layers(sources[half][seed], build(seed), n, frozen))
    return builds


def trained_net(name: str, recipe: dict, build, data, steps: int, seed: int, batch_size: int = 128):
    """`build(seed)` (a compiled net) trained for `steps` SGD steps on `data` from `seed`, stored under
    `name` and `recipe` and loaded on later calls (see `stored_model`). Returns (model, reused)."""
    def train():
        seed_everything(seed)
        model = build(seed)
        fit_steps(model, data, steps, steps, None, batch_size, seed, verbose=0)
        return model

    return stored_model(name, dict(recipe, steps=steps, seed=seed, batch_size=batch_size), train)


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A net trained to its plateau: the final `model`, the same run's weights at half its length (`half`,
    where a claim's half-budget value is measured), its convergence record (`cnnlab.convergence.record`, with
    diverged_at_step) and whether it was loaded from the store (`reused`)."""

    model: keras.Model
    half: keras.Model
    record: dict
    reused: bool


def trained_run(name: str, recipe: dict, build, data, cap: int, every: int, plateau: convergence.Plateau,
                seed: int, batch_size: int = 128) -> TrainedRun:
    """`build(seed)` (a compiled net with an accuracy metric) trained from `seed` on `data` until its
    `plateau` on the held-out split `data.x_val` (measured every `every` steps) or `cap` steps, stored under
    `name` and everything that decides its weights (`recipe` plus the cap, the measurement interval, the
    plateau's settings, the held-out split's size, seed and batch size) and loaded on later calls."""
    if data.x_val is None:
        raise ValueError(f"'{name}' trains to a plateau on held-out training images: the dataset has none (x_val)")

    def train():
        seed_everything(seed)
        model = build(seed)
        curve = fit_steps(model, data, cap, every, (data.x_val, data.y_val), batch_size, seed, verbose=0,
                          plateau=plateau)
        half = keras.models.clone_model(model)
        half.set_weights(curve["half_weights"])
        return {"final": model, "half": half}, dict(curve["convergence"], diverged_at_step=curve["diverged_at_step"])

    key = dict(recipe, cap=cap, every=every, plateau=dataclasses.asdict(plateau), held_out=len(data.x_val),
               train_images=len(data.x_train), seed=seed, batch_size=batch_size)
    nets, record, reused = stored_run(name, key, train)
    return TrainedRun(nets["final"], nets["half"], record, reused)


def plot_transfer(ax, runs, base: dict, title: str = ""):
    """Yosinski et al.'s Fig. 2: accuracy on B against the number of copied layers n, one marker per run
    and a line through the means of each variant; `base` maps seed -> baseB's accuracy, drawn at n = 0.
    `runs` has columns variant, n, seed, accuracy."""
    ax.scatter([0] * len(base), list(base.values()), color="white", edgecolor="black", zorder=3, label="baseB")
    plot_runs(ax, runs, "n", "variant", "accuracy", VARIANT_STYLES, spread=0.08)
    ax.set_xlabel("layers copied from the source net (n)")
    ax.set_ylabel("top-1 accuracy on B's test set")
    ax.set_title(title)
    ax.legend(fontsize=8)

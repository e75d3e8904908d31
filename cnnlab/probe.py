"""Signal propagation: how the activations and the back-propagated gradients of a net scale with depth.

For a model whose hidden layers are named `hidden_1` ... `hidden_L` (see `cnnlab.models.plain`),
`propagation` runs one batch forward and backward (softmax cross-entropy on the true labels) and
returns, per hidden layer, the standard deviation of its activations and of the gradient of the loss
with respect to them. Glorot & Bengio 2010 (Fig. 6/7) and He et al. 2015 read initialisations this way.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from cnnlab import backend


def hidden_layers(model) -> list:
    """The layers named hidden_1 ... hidden_L, in depth order."""
    found = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    if not found:
        raise ValueError(f"model '{model.name}' has no layers named hidden_<i>")
    return sorted(found, key=lambda layer: int(layer.name.split("_")[1]))


def activations_and_gradients(model, x, y):
    """Per hidden layer: (activation array, gradient array) for one batch.

    The gradient of the loss with respect to a layer's output is its gradient with respect to a zero added to
    that output, so one backward pass through the chain of `segments` gives every layer's, on any backend."""
    hidden = hidden_layers(model)
    tapped = keras.Model(model.input, [layer.output for layer in hidden])
    acts = tapped(x, training=False)
    acts = [backend.numpy(a) for a in (acts if isinstance(acts, (list, tuple)) else [acts])]
    parts = segments(model)

    def loss(*added):
        a = keras.ops.convert_to_tensor(x)
        for part, zero in zip(parts, added):
            a = part(a, training=False)
            a = a + keras.ops.cast(zero, a.dtype)  # bfloat16 under mixed precision
        logits = parts[-1](a, training=False)
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    _, grads = backend.gradients(loss, *[np.zeros_like(a) for a in acts])
    return list(zip(acts, grads))


def segments(model) -> list:
    """The model cut at its hidden layers: input -> hidden_1, hidden_1 -> hidden_2, ..., hidden_L -> output,
    each a Keras model; a model whose signal reaches a hidden layer other than through the one before it
    (a skip connection across them) is refused."""
    cuts = [model.inputs[0]] + [layer.output for layer in hidden_layers(model)] + [model.outputs[0]]
    try:
        return [keras.Model(a, b) for a, b in zip(cuts, cuts[1:])]
    except ValueError as error:
        raise ValueError(f"model '{model.name}' is not a chain of its hidden_<i> layers: {error}") from None


def propagation(model, x, y, batch_size: int = 64) -> pd.DataFrame:
    """Per hidden layer over the images `x`: depth, activation std and gradient std (of the mean loss over
    all of `x`), both relative to layer 1, mean activation and zero fraction.

    The images go through in chunks of `batch_size`, their sums gathered in float64: a deep CNN's forward
    and backward intermediates for a few hundred images would otherwise take gigabytes at once."""
    totals = None
    for start in range(0, len(x), batch_size):
        chunk = slice(start, start + batch_size)
        weight = len(x[chunk]) / len(x)  # the chunk's mean loss -> its share of the mean over all of x
        pairs = activations_and_gradients(model, x[chunk], y[chunk])
        sums = np.array([[a.size, a.sum(dtype=np.float64), np.square(a, dtype=np.float64).sum(),
                          (g * weight).sum(dtype=np.float64), np.square(g * weight, dtype=np.float64).sum(),
                          (a == 0).sum()] for a, g in pairs])
        totals = sums if totals is None else totals + sums
    count, act_sum, act_sq, grad_sum, grad_sq, zeros = totals.T

    def std(total, squares):
        return np.sqrt(np.maximum(squares / count - (total / count) ** 2, 0.0))

    frame = pd.DataFrame(dict(depth=np.arange(1, len(count) + 1), act_std=std(act_sum, act_sq),
                              grad_std=std(grad_sum, grad_sq), act_mean=act_sum / count, zero_fraction=zeros / count))
    frame["act_ratio"] = frame.act_std / frame.act_std.iloc[0]
    frame["grad_ratio"] = frame.grad_std / frame.grad_std.iloc[0]
    return frame


def propagation_over_seeds(build, seeds, x, y) -> pd.DataFrame:
    """`propagation` of the model `build(seed)` for each seed, combined per depth: the geometric mean over
    seeds of the activation and gradient ratios (they span orders of magnitude) and the mean zero fraction."""
    stacked = pd.concat([propagation(build(seed), x, y) for seed in seeds])
    logs = np.log(stacked[["act_ratio", "grad_ratio"]].clip(lower=1e-300))
    out = np.exp(logs.groupby(stacked.depth).mean()).reset_index()
    out["zero_fraction"] = stacked.groupby("depth").zero_fraction.mean().values
    return out


def unit_activity(model, x, batch_size: int = 1000) -> pd.DataFrame:
    """Per hidden layer over the images `x`: the share of units (one per position and channel) that
    never fire (output 0 on every image), the share of channels that never fire anywhere, and the mean
    activation (ReLU's positive offset vs ELU's, which is closer to 0)."""
    hidden = hidden_layers(model)
    tapped = keras.Model(model.input, [layer.output for layer in hidden])
    peak = [None] * len(hidden)
    total = np.zeros(len(hidden))
    count = np.zeros(len(hidden))
    for start in range(0, len(x), batch_size):
        outputs = tapped(x[start : start + batch_size], training=False)
        for i, a in enumerate(outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            a = backend.numpy(a)
            batch_peak = a.max(axis=0)
            peak[i] = batch_peak if peak[i] is None else np.maximum(peak[i], batch_peak)
            total[i] += a.sum()
            count[i] += a.size
    rows = []
    for i, p in enumerate(peak):
        channel_peak = p.reshape(-1, p.shape[-1]).max(axis=0)
        rows.append(dict(depth=i + 1, units=int(p.size), never_fire=float((p <= 0).mean()),
                         dead_channels=float((channel_peak <= 0).mean()), mean_activation=float(total[i] / count[i])))
    return pd.DataFrame(rows)


def plot_std_vs_depth(ax, curves: dict, column: str = "act_ratio", theory: dict | None = None, title: str = ""):
    """One line per scheme of `column` against depth (log scale); dashed theory lines beside."""
    for i, (scheme, frame) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(frame.depth, frame[column].clip(lower=1e-30), marker=".", color=color, label=scheme)
        if theory and scheme in theory:
            ax.plot(frame.depth, theory[scheme], linestyle="--", color=color, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(column.replace("_", " ") + " (layer / layer 1)")
    ax.set_title(title)
    ax.legend(fontsize=8)


def plot_histograms(axes, arrays: list, layers: list[int], label: str, bins: int = 60, clip: float = 1.0):
    """Glorot & Bengio Fig. 6/7 style: the distribution of values per layer, one curve per layer."""
    edges = np.linspace(-clip, clip, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for depth in layers:
        counts, _ = np.histogram(np.clip(arrays[depth - 1].ravel(), -clip, clip), bins=edges)
        axes.plot(centres, counts / counts.sum(), label=f"layer {depth}")
    axes.set_title(label)
    axes.legend(fontsize=7)

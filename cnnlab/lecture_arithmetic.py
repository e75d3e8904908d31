"""The lectures' exact claims that need no training: parameter counts of fully, locally and convolutionally
connected layers, backprop through a conv layer, max pooling and sigmoid cross-entropy against autodiff, the
cost of ResNet-152 against VGG and of a 3x3 conv in each CIFAR stage, network depths and layouts, the Deep
Image crop count and the ILSVRC slideshow. Each small function computes a measured value from Keras, autodiff
or the slide's own numbers; `record_lecture_claims(rec)` records them as claims of experiment 01.
"""

import keras
import numpy as np

from cnnlab import arith
from cnnlab.backend import gradients
from cnnlab.models import cifar_resnet, googlenet, lenet5, resnet, vgg
from cnnlab.models.cifar_resnet import blocks_for
from cnnlab.rules import at_most, between, exact, within

FLOAT32_TOL = 1e-5  # float32 rounding of sums of a few dozen products of order 1
ILSVRC = dict(categories=1000, training=1_200_000, validation=50_000)  # as the slide gives them
ILSVRC2012_TRAINING = 1_281_167  # the training images ILSVRC-2012 actually has
DAY_S, MONTH_DAYS = 86_400, (28, 31)
_LAYOUT = ((keras.layers.Conv2D, "CONV"), ((keras.layers.MaxPooling2D, keras.layers.AveragePooling2D), "POOL"),
           (keras.layers.Dense, "FC"))


# ---------------------------------------------------------------- parameters


def dense_params(side=32, channels=3):
    """Parameters (weights and biases) of Keras's Dense(side^2) on a flattened side x side x channels image."""
    model = keras.Sequential([keras.Input((side, side, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(side * side)])
    return model.count_params()


def fully_connected_weights(pixels, hidden):
    """Weights of a layer whose every hidden unit sees every pixel of a grey image."""
    return pixels * hidden


def locally_connected_weights(hidden, field):
    """Weights of an unshared layer on a grey image: each hidden unit its own field x field kernel."""
    return hidden * field**2


def shared_weights(filters, field):
    """Weights of a conv layer on a grey image: one field x field kernel per filter, shared by all locations."""
    return filters * field**2


def unshared_layer(side, field):
    """A locally connected layer on a side x side grey image, one unit per pixel ('same' padding), of Keras
    layers: a Conv2D(1, field) of its own at every location (Keras 3 has no LocallyConnected2D)."""
    x = keras.Input((side, side, 1))
    padded = keras.layers.ZeroPadding2D(field // 2)(x)
    units = [keras.layers.Conv2D(1, field, use_bias=False)(padded[:, i:i + field, j:j + field, :])
             for i in range(side) for j in range(side)]
    return keras.Model(x, keras.layers.Reshape((side, side, 1))(keras.layers.Concatenate()(units)))


def connectivity_counts(side=6, field=3, filters=4):
    """{layer: (formula, Keras's count)} of a fully connected, a locally connected and a conv layer on a
    side x side grey image with one hidden unit per pixel: the formulas checked where Keras can build them."""
    dense = keras.Sequential([keras.Input((side, side, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(side * side, use_bias=False)])
    conv = keras.Sequential([keras.Input((side, side, 1)),
                             keras.layers.Conv2D(filters, field, padding="same", use_bias=False)])
    hidden = side * side
    return {"fully connected": (fully_connected_weights(hidden, hidden), dense.count_params()),
            "locally connected": (locally_connected_weights(hidden, field),
                                  unshared_layer(side, field).count_params()),
            "shared": (shared_weights(filters, field), conv.count_params())}


# ---------------------------------------------------------------- gradients


def conv_weight_gradient_gap(seed=0, side=7, field=3, channels=2, filters=3):
    """Max |autodiff - explicit sum| of a conv layer's weight gradient for the loss sum(G * conv(x, w)) (so
    dL/dy = G): the gradient at output location (i, j) is the outer product of the patch under the filter and
    G[i, j], and the explicit sum adds it over all locations."""
    rng = np.random.default_rng(seed)
    out = side - field + 1
    x, w, g = (rng.standard_normal(shape).astype("float32") for shape in
               ((1, side, side, channels), (field, field, channels, filters), (1, out, out, filters)))
    _, (autodiff,) = gradients(lambda k: keras.ops.sum(keras.ops.conv(x, k) * g), w)
    summed = sum(np.einsum("abc,f->abcf", x[0, i:i + field, j:j + field].astype(np.float64), g[0, i, j])
                 for i in range(out) for j in range(out))
    return float(np.abs(autodiff - summed).max())


def max_pool_routing(x, g, pool, stride):
    """dL/dx of sum(G * maxpool(x)) ('valid'), routed by hand: each window's G goes to its argmax, summed where
    windows overlap. Returns the gradient and how many windows route to each input."""
    grad, hits = np.zeros(x.shape), np.zeros(x.shape, int)
    for n, i, j, c in np.ndindex(g.shape):
        window = x[n, i * stride:i * stride + pool, j * stride:j * stride + pool, c]
        a, b = np.unravel_index(window.argmax(), window.shape)
        grad[n, i * stride + a, j * stride + b, c] += g[n, i, j, c]
        hits[n, i * stride + a, j * stride + b, c] += 1
    return grad, hits


def max_pool_gradient_gap(seed=0, side=9, pool=3, stride=2, channels=2):
    """(max |autodiff - routing|, inputs that several windows route to) for overlapping max pooling. The input
    at (stride, stride) is set above the rest, so it is the argmax of the four windows that share it."""
    rng = np.random.default_rng(seed)
    out = (side - pool) // stride + 1
    x = rng.standard_normal((1, side, side, channels)).astype("float32")
    x[0, stride, stride] = 10.0
    g = rng.standard_normal((1, out, out, channels)).astype("float32")
    _, (autodiff,) = gradients(lambda t: keras.ops.sum(keras.ops.max_pool(t, pool, stride) * g), x)
    routed, hits = max_pool_routing(x, g, pool, stride)
    return float(np.abs(autodiff - routed).max()), int((hits > 1).sum())


def sigmoid_xent_gradient_gap(seed=0, n=8, d=5):
    """Max |autodiff - formula| of dL/dw for Keras's binary cross-entropy of sigmoid(x . w) averaged over n
    examples, against the slide's dL/dw_j = 1/n sum_x x_j (sigma(z) - y)."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n, d)).astype("float32"), rng.standard_normal(d).astype("float32")
    y = rng.integers(0, 2, n).astype("float32")
    _, (autodiff,) = gradients(
        lambda v: keras.ops.mean(keras.ops.binary_crossentropy(y, keras.ops.matmul(x, v), from_logits=True)), w)
    x64 = x.astype(np.float64)
    formula = x64.T @ (1 / (1 + np.exp(-x64 @ w)) - y) / n
    return float(np.abs(autodiff - formula).max())


# ---------------------------------------------------------------- architectures


def weight_depth(model):
    """Weight layers (those with a kernel: convs, Dense) on the longest path from input to output of a functional
    model, as papers count depth: ResNet-152 gives 152 (its projection shortcuts are side paths), GoogLeNet 22."""
    depth = {}
    for op in model.operations:  # in graph order
        parents = [] if isinstance(op, keras.layers.InputLayer) else keras.tree.flatten(op.input)
        own = int(getattr(op, "kernel", None) is not None)
        depth[id(op)] = own + max((depth[id(t._keras_history.operation)] for t in parents), default=0)
    return max(depth[id(t._keras_history.operation)] for t in keras.tree.flatten(model.outputs))


def macs_and_depth(build):
    """(multiply-adds per example by `arith.layer_table`, `weight_depth`) of the net `build()` returns."""
    return arith.measure(build, lambda m: int(arith.totals(arith.layer_table(m)).macs), weight_depth)


def cifar_stage_conv_macs(depth=20):
    """{stage: (output shape, MACs)} of the last 3x3 conv of each stage of He et al.'s CIFAR ResNet-`depth`."""
    table = arith.layer_table(cifar_resnet(depth)).set_index("name")
    last = blocks_for(depth)
    rows = {s: table.loc[f"stage{s}_block{last}_conv2"] for s in (1, 2, 3)}
    return {s: (row.output_shape, int(row.macs)) for s, row in rows.items()}


def layout(model):
    """A model's conv, pool and FC layers in CS231n's notation ("CONV-POOL-FC"); other layers left out."""
    return "-".join(next(name for kind, name in _LAYOUT if isinstance(layer, kind))
                    for layer in model.layers if isinstance(layer, tuple(kind for kind, _ in _LAYOUT)))


def crop_offsets(image=512, crop=224):
    """Positions per axis of a crop x crop window in an image x image picture: Keras's output size of that pool."""
    return arith.keras_output_size(image, crop, layer="pool")


def duration(items, seconds_each, unit_s):
    """Time to go through `items` at `seconds_each`, in units of `unit_s` seconds."""
    return items * seconds_each / unit_s


# ---------------------------------------------------------------- the claims


def record_lecture_claims(rec):
    """Record the claims above on `rec`, a `cnnlab.suite.results.Record` of prefix 'arith' (experiment 01)."""
    _record_parameters(rec)
    _record_gradients(rec)
    _record_architectures(rec)
    _record_counts(rec)


def _record_parameters(rec):
    rec.claim("arith.fc.params_32x32", "A fully connected layer on a 32x32x3 image: |θ| = 3·32^4 + 32^2 ≈ 3·10^6",
              3 * 32**4 + 32**2, dense_params(), "params", exact(3 * 32**4 + 32**2),
              source="seed 000, slide 'What's Wrong With Standard Neural Networks?'",
              note="Keras's Dense(32x32) on the flattened image: 3,072 x 1,024 weights + 1,024 biases")
    source = "seed 000, slides 'Convolutional Networks: Intuition'"
    checked = "the formula equals Keras's count on a 6x6 image (arith.connectivity.formulas_vs_keras)"
    for key, statement, expected, measured in [
        ("fully_connected", "Fully connected: 1000x1000 image, 1M hidden units ⇒ 1T parameters!", 10**12,
         fully_connected_weights(10**6, 10**6)),
        ("locally_connected", "Locally connected: 1000x1000 image, 1M hidden units, 10x10 receptive fields "
         "⇒ 100M parameters!", 10**8, locally_connected_weights(10**6, 10)),
        ("shared", "Convolutional (shared weights): 1000x1000 image, 100 filters, 10x10 filter size ⇒ 10k "
         "parameters, 100 per filter", 10**4, shared_weights(100, 10)),
    ]:
        rec.claim(f"arith.connectivity.{key}", statement, expected, measured, "weights", exact(expected),
                  source=source, note=f"weights without biases; {checked}")
    counts = connectivity_counts()
    rec.claim("arith.connectivity.formulas_vs_keras",
              "The three formulas (pixels x units, units x field^2, filters x field^2) equal Keras's counts", 0,
              sum(formula != keras_count for formula, keras_count in counts.values()), "mismatched counts",
              exact(0), source=source,
              note="6x6 grey image, one unit per pixel, 3x3 fields, 4 filters (formula, Keras): "
                   + ", ".join(f"{layer} {f:,} and {k:,}" for layer, (f, k) in counts.items())
                   + "; the locally connected layer is a Conv2D(1, 3) of its own at each location, since Keras 3 "
                     "has no LocallyConnected2D")


def _record_gradients(rec):
    tol = at_most(FLOAT32_TOL, why="float32 rounding")
    rec.claim("arith.backprop.conv_weight_sum", "Filter weights are shared between locations ⇒ gradients are "
              "added for each filter location (autodiff of a conv layer against the sum over locations)", 0,
              conv_weight_gradient_gap(), "max |difference|", tol,
              source="seed 000, slide 'CNNs: Implication for Back-Propagation'; seed 002, slide 'BP on CNN'",
              note="keras.ops.conv (what Conv2D calls) on a random 7x7x2 input with a 3x3x2x3 kernel: the "
                   "per-location gradients of its 25 locations, summed")
    gap, shared = max_pool_gradient_gap()
    rec.claim("arith.backprop.max_pool_routing", "Max pooling backprop: the gradient goes to the index that took "
              "the max; where pooling regions overlap, the sensitivities are added (autodiff against that routing)",
              0, gap, "max |difference|", tol,
              source="seed 001, slide 'Max Pooling'; seed 002, slide 'Calculate sensitivities in the pooling layer'",
              note=f"3x3 windows at stride 2 on a random 9x9x2 input, one value raised to be the max of the four "
                   f"windows that share it: {shared} inputs take the gradient of more than one window")
    rec.claim("arith.backprop.sigmoid_xent", "With a sigmoid output, the cross-entropy gradient is "
              "∂L/∂w_j = 1/n Σ_x x_j (σ(z) − y)", 0, sigmoid_xent_gradient_gap(), "max |difference|", tol,
              source="seed 004, slide 'Loss Functions: Beyond Mean Square Error'",
              note="autodiff of Keras's binary cross-entropy on the logits z = x·w, 8 examples, 5 weights")


def _record_architectures(rec):
    (r152, d152), (v16, d16), (v19, d19) = (macs_and_depth(b) for b in
                                            (lambda: resnet(152), lambda: vgg("D"), lambda: vgg("E")))
    source = "seed 001, slide 'Case Study: ResNet (2015)'"
    rec.claim("arith.resnet152_vs_vgg16.macs", "At runtime ResNet-152 is faster than a VGGNet: fewer multiply-adds "
              "than VGG-16", 1, r152 / v16, "x VGG-16's MACs", at_most(1, why="'faster': below VGG-16's cost"),
              source=source, note=f"multiply-adds per 224x224 image: ResNet-152 {r152 / 1e9:.2f}G (the slide's "
                                  f"table: 11.3x10^9), VGG-16 {v16 / 1e9:.2f}G, VGG-19 {v19 / 1e9:.2f}G")
    rec.claim("arith.resnet152_vs_vgg.layers", "ResNet-152 has 8x more layers than a VGGNet", 8, d152 / d19, "x",
              within(8, 0.5, why="the slide gives a whole multiple"), source=source,
              note=f"weight layers on the longest path: ResNet-152 {d152}, VGG-19 {d19}, VGG-16 {d16}; against "
                   f"VGG-16 it is {d152 / d16:.1f}x: the 8x is VGG-19's, the VGG of seed 003's ILSVRC table")
    for stage, (shape, macs) in cifar_stage_conv_macs().items():
        rec.claim(f"arith.cifar_resnet.conv_macs.stage{stage}", "Spatial size / 2 ⇒ #filters · 2 (same complexity "
                  f"per layer): a 3x3 conv at {shape} needs 2,359,296 multiply-adds", 2_359_296, macs, "MACs",
                  exact(2_359_296), source="seed 003, slide 'Network Design'",
                  note="the last 3x3 conv of the stage in He et al.'s CIFAR ResNet-20; 2,359,296 = 3·3·16·16·32·32")
    rec.claim("arith.googlenet.depth", "GoogLeNet has 22 layers", 22, arith.measure(googlenet, weight_depth),
              "weight layers", exact(22), source="seed 004, slide 'GoogleNet'; Szegedy et al. 2015, Table 1",
              note="counted on the built architecture: conv and FC layers on the longest path from input to output "
                   "(cnnlab.models.googlenet does not transcribe Table 1's depth column)")
    net = lenet5()
    c5, builder = net.get_layer("c5"), layout(net)
    rec.claim("arith.lenet.layout", "LeNet-5's architecture is [CONV-POOL-CONV-POOL-CONV-FC]: three conv layers",
              3, builder.split("-").count("CONV"), "conv layers", exact(3),
              source="seed 001, slide 'Case Study: LeNet-5 (1998)'; seed 004, slide 'LeNet-5 (1989-1998)'",
              note=f"the builder (LeCun et al. 1998, Figure 2) is {builder}, as seed 001 has it; seed 004's "
                   "[CONV-POOL-CONV-POOL-FC-FC] counts C5 as FC: its 5x5 kernel spans its whole "
                   f"{'x'.join(map(str, c5.input.shape[1:]))} input and gives "
                   f"{'x'.join(map(str, c5.output.shape[1:]))}, a fully connected layer in effect")


def _record_counts(rec):
    side, slide = crop_offsets(), 82_944
    positions = side**2
    rec.claim("arith.deepimage.crops", "Cropping: 82944 possible changes (crop size is 224x224, input image size is "
              "512x512)", slide, positions, "crop positions", exact(slide),
              source="seed 002, slide 'Data augmentation.' (Deep Image, Wu et al. 2015)",
              source_inconsistent=positions != slide,
              note=f"a 224x224 crop has {side} positions per axis in a 512x512 image (Keras's output size of a "
                   f"224x224 pool), {positions:,} in all; the slide's 82,944 = 288^2 = (512 - 224)^2 counts the "
                   "offsets 0-287 per axis and leaves out 288")
    source = "seed 000, slide 'Understanding the ILSVRC Challenge'"
    rec.claim("arith.ilsvrc.category_names", "Speaking out the list of category names at 1 word/s takes 15 mins", 15,
              duration(ILSVRC["categories"], 1, 60), "min",
              within(15, 2.5, why="a spoken duration, rounded to 5 minutes"), source=source,
              note="1,000 names at one a second; names of several words ('American Staffordshire terrier') would "
                   "take longer")
    rec.claim("arith.ilsvrc.validation_slideshow", "A slideshow of the 50k validation images at 2s/image takes a "
              "full day (24h+)", 24, duration(ILSVRC["validation"], 2, 3600), "h",
              between(24, 48, why="'a full day (24h+)': at least 24 h, less than two days"), source=source)
    days = duration(ILSVRC["training"], 2, DAY_S)
    low, high = MONTH_DAYS
    rec.claim("arith.ilsvrc.training_slideshow", "A slideshow of the 1.2M training images at 2s/image takes a full "
              "month", low, days, "days",
              between(low, high, partial=(0.9 * low, 1.1 * high), why="a month has 28-31 days; partial within 10%"),
              source=source, note=f"ILSVRC-2012's {ILSVRC2012_TRAINING:,} training images would take "
                                  f"{duration(ILSVRC2012_TRAINING, 2, DAY_S):.1f} days")

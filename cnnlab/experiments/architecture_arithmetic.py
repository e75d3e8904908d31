"""Experiment 01: the size, parameter and compute arithmetic of the classic CNNs, each slide's or paper's number
checked exactly against Keras layers and models built here (no training): the output-size formula, the 32x32x3
example, AlexNet's and VGG-16's layer tables, VGG A-E, stacked 3x3 convs, GoogLeNet's Table 1, the inception
module with and without bottlenecks, ResNet's FLOPs and AlphaGo's policy net."""

from __future__ import annotations

import itertools
import math

import keras
import pandas as pd

from cnnlab import arith, plots
from cnnlab.layers import inception_module
from cnnlab.models import alexnet, alphago_policy, googlenet, resnet, vgg
from cnnlab.models.googlenet import row_of
from cnnlab.models.vgg import PAPER_PARAMS_M, weight_layers
from cnnlab.rules import at_least, exact, relative, within

ALEXNET_CONVS, ALEXNET_FCS = ["conv1", "conv2", "conv3", "conv4", "conv5"], ["fc6", "fc7", "fc8"]


# --- output sizes ------------------------------------------------------------------------------------------------


def output_size_claims(rec, widths, kernels, strides, paddings, dilations) -> pd.DataFrame:
    """The slides' output-size examples, and the formula against Keras's conv and pool layers on every case of
    the grid Keras can build. Returns the grid (formula and Keras's size per case)."""
    examples = [  # (claim id, statement, w, k, s, p, d, slide value, slide deck)
        ("arith.outsize.7x7_k3_s1", "7x7 input, 3x3 filter, stride 1 gives 5x5", 7, 3, 1, 0, 1, 5, "seed 000"),
        ("arith.outsize.7x7_k3_s2", "7x7 input, 3x3 filter, stride 2 gives 3x3", 7, 3, 2, 0, 1, 3, "seed 000"),
        ("arith.outsize.7x7_k3_p1", "7x7 input, 3x3 filter, pad 1, stride 1 keeps 7x7", 7, 3, 1, 1, 1, 7, "seed 000"),
        ("arith.outsize.alexnet_conv1", "AlexNet conv1: (227-11)/4+1 = 55", 227, 11, 4, 0, 1, 55, "seed 001"),
        ("arith.outsize.alexnet_pool1", "AlexNet pool1: (55-3)/2+1 = 27", 55, 3, 2, 0, 1, 27, "seed 001"),
    ]
    for cid, statement, w, k, s, p, d, slide, deck in examples:
        rec.claim(cid, statement, slide, arith.keras_output_size(w, k, s, p, d), "pixels", exact(slide), source=deck)
    grid = []
    for layer, w, k, s, p, d in itertools.product(["conv", "pool"], widths, kernels, strides, paddings, dilations):
        if (layer == "pool" and d > 1) or (s > 1 and d > 1):  # Keras has no dilated pools or strided dilated convs
            continue
        try:
            formula = arith.output_size(w, k, s, p, d)
        except ValueError:  # empty output: nothing to compare
            continue
        if layer == "pool" and p > k // 2:  # Keras, like cuDNN, wants padding at most half the window
            continue
        grid.append(dict(layer=layer, w=w, k=k, s=s, p=p, d=d, formula=formula,
                         keras=arith.keras_output_size(w, k, s, p, d, layer)))
    grid = pd.DataFrame(grid)
    mismatches = int((grid.formula != grid.keras).sum())
    rec.metric("output_size_grid_cases", len(grid))
    rec.claim("arith.outsize.grid", f"The formula equals Keras's output size on all {len(grid)} grid cases",
              0, mismatches, "mismatches", exact(0), source="seed 001")
    print(f"{len(grid)} (layer, w, k, s, p, d) cases, {mismatches} mismatches")
    return grid


def example_claims(rec) -> pd.Series:
    """The 32x32x3 input through six 5x5 filters: output size, parameters, multiplications. Returns its row."""
    example = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(6, 5, name="conv")])
    row = arith.layer_table(example).set_index("name").loc["conv"]
    rec.claim("arith.example.output", "Output is 28x28x6", 28 * 28 * 6, row.activations, "values",
              exact(28 * 28 * 6), source="seed 001")
    rec.claim("arith.example.params", "3*5*5*6+6 = 456 parameters", 456, row.params, "params", exact(456),
              source="seed 001")
    rec.claim("arith.example.mults", "3*5*5*6*28*28 = 352,800 multiplications", 352_800, row.macs, "MACs",
              exact(352_800), source="seed 001")
    return row


# --- AlexNet and VGG-16 -----------------------------------------------------------------------------------------


def alexnet_claims(rec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AlexNet's single-tower table (seed 001) and the paper's two towers (seed 004): shapes, weights per
    layer, totals, where computation and parameters sit, neurons per layer. Returns both layer tables."""
    alex1 = arith.measure(alexnet, arith.layer_table)
    alex2 = arith.measure(lambda: alexnet(two_tower=True), arith.layer_table)
    a1, a2 = alex1.set_index("name"), alex2.set_index("name")
    slide_shapes = ["227x227x3", "55x55x96", "27x27x96", "27x27x256", "13x13x256", "13x13x384", "13x13x384",
                    "13x13x256", "6x6x256", "4096", "4096", "1000"]
    path = ["input", "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8"]
    measured_shapes = [a1.loc[n, "output_shape"] if n in a1.index else alex1.output_shape.iloc[0] for n in path]
    rec.claim("arith.alexnet.shapes", "Single tower: 227x227x3 -> 55x55x96 -> 27x27x96 -> ... -> 6x6x256 -> 4096 -> "
              "4096 -> 1000", 0, sum(a != b for a, b in zip(measured_shapes, slide_shapes)), "mismatched layers",
              exact(0), source="seed 001")
    rec.claim("arith.alexnet.conv1_weights", "Conv1 has (11*11*3)*96 = 35K weights", 35,
              a1.loc["conv1", "weights"] / 1e3, "K weights", within(35, 0.5, why="the slide rounds to thousands"),
              source="seed 001")
    rec.claim("arith.alexnet.pool_params", "Pooling layers have 0 parameters", 0,
              int(alex1[alex1.type.str.contains("Pooling")].params.sum()), "params", exact(0), source="seed 001")
    for layer, slide, unit, scale in [("conv2", 307, "K", 1e3), ("conv3", 884, "K", 1e3), ("conv4", 663, "K", 1e3),
                                      ("conv5", 442, "K", 1e3), ("fc6", 37, "M", 1e6), ("fc7", 16, "M", 1e6),
                                      ("fc8", 4, "M", 1e6)]:
        rec.claim(f"arith.alexnet2.{layer}_weights", f"Two towers: {layer} has {slide}{unit} weights", slide,
                  a2.loc[layer, "weights"] / scale, f"{unit} weights",
                  within(slide, 1, why=f"the slide rounds or truncates to whole {unit}"), source="seed 004")
    total2 = arith.totals(alex2)
    rec.claim("arith.alexnet2.total_params", "AlexNet has about 60M parameters", 60, total2.params / 1e6, "M params",
              relative(60, 0.05, why="'about'"), source="seed 004")
    rec.claim("arith.alexnet2.fc_params", "About 57M of them are in the FC layers", 57,
              a2.loc[ALEXNET_FCS, "params"].sum() / 1e6, "M params", relative(57, 0.05, why="'about'"),
              source="seed 004")
    conv_share_macs = a2.loc[ALEXNET_CONVS, "macs"].sum() / total2.macs
    conv_share_params = a2.loc[ALEXNET_CONVS, "params"].sum() / total2.params
    rec.claim("arith.alexnet2.conv_compute_share", "Conv layers hold about 90-95% of the computation", 92.5,
              100 * conv_share_macs, "% of MACs", within(92.5, 2.5, why="the range 90-95%"), source="seed 004")
    rec.claim("arith.alexnet2.conv_param_share", "Conv layers hold about 5% of the parameters", 5,
              100 * conv_share_params, "% of params", within(5, 1.5, why="'about 5%'"), source="seed 004")
    slide_neurons = {"conv1": 253_440, "conv2": 186_624, "conv3": 64_896, "conv4": 64_896, "conv5": 43_264,
                     "fc6": 4096, "fc7": 4096, "fc8": 1000}
    for layer, slide in slide_neurons.items():
        measured = a2.loc[layer, "activations"]
        wrong = measured != slide
        rec.claim(f"arith.alexnet2.{layer}_neurons", f"{layer} has {slide:,} neurons", slide, measured, "neurons",
                  exact(slide), source="seed 002",
                  note="55x55x96 = 290,400: the paper's 253,440 does not follow from its own layer sizes" if wrong
                  else "", source_inconsistent=bool(wrong))
    return alex1, alex2


def vgg16_claims(rec) -> pd.DataFrame:
    """VGG-16 per layer (seed 001): the slide's 22 rows of weights and activations, the totals, memory early and
    parameters late. Returns its layer table."""
    v16 = arith.measure(lambda: vgg("D"), arith.layer_table)
    slide_rows = [  # CS231n's list: (activations as printed, weights without biases)
        (150e3, 0), (3.2e6, 1_728), (3.2e6, 36_864), (800e3, 0), (1.6e6, 73_728), (1.6e6, 147_456), (400e3, 0),
        (800e3, 294_912), (800e3, 589_824), (800e3, 589_824), (200e3, 0), (400e3, 1_179_648), (400e3, 2_359_296),
        (400e3, 2_359_296), (100e3, 0), (100e3, 2_359_296), (100e3, 2_359_296), (100e3, 2_359_296), (25e3, 0),
        (4096, 102_760_448), (4096, 16_777_216), (1000, 4_096_000),
    ]
    rows = v16[v16.type.isin(["InputLayer", "Conv2D", "MaxPooling2D", "Dense"])].reset_index(drop=True)
    weight_mismatch = sum(int(rows.weights[i] != w) for i, (_, w) in enumerate(slide_rows))
    memory_mismatch = sum(int(abs(rows.activations[i] - a) > 0.02 * a) for i, (a, _) in enumerate(slide_rows))
    rec.claim("arith.vgg16.layer_weights", "Weights of all 22 rows of the VGG-16 table (1,728 ... 4,096,000)", 0,
              weight_mismatch, "mismatched rows", exact(0), source="seed 001")
    rec.claim("arith.vgg16.layer_memory", "Activations of all 22 rows (150K, 3.2M, ..., 1000)", 0, memory_mismatch,
              "rows off by > 2%", exact(0, why="the slide rounds to 2 digits"), source="seed 001")
    v16_total = arith.totals(v16)
    rec.claim("arith.vgg16.params", "VGG-16 has 138M parameters", 138, v16_total.params / 1e6, "M params",
              within(138, 0.5, why="the slide rounds to millions"), source="seed 001")
    rec.claim("arith.vgg16.activations", "About 24M activations per image", 24, v16_total.activations / 1e6,
              "M values", within(24, 0.5, why="the slide rounds to millions"), source="seed 001",
              note=f"the slide's own 22 rows sum to {sum(a for a, _ in slide_rows) / 1e6:.1f}M, not 24M",
              source_inconsistent=True)
    rec.claim("arith.vgg16.forward_mb", "About 93 MB per image forward (float32)", 93,
              v16_total.activation_bytes / 2**20, "MiB", within(93, 1, why="24M x 4 bytes in MiB"), source="seed 001",
              note="93 MiB follows from the miscounted 24M; the rows give 15.2M values = 58 MiB",
              source_inconsistent=True)
    early = v16.name.str.startswith(("input", "block1", "block2"))
    fc = v16.name.isin(["fc1", "fc2", "predictions"])
    rec.claim("arith.vgg16.memory_early", "Most memory is in the early convs (input, blocks 1-2)", 50,
              100 * v16[early].activations.sum() / v16_total.activations, "% of activations", at_least(50),
              source="seed 001")
    rec.claim("arith.vgg16.params_late", "Most parameters are in the late FC layers", 50,
              100 * v16[fc].params.sum() / v16_total.params, "% of params", at_least(50), source="seed 001")
    return v16


def plot_memory_vs_params(alex1: pd.DataFrame, v16: pd.DataFrame):
    """Activations and parameters layer by layer (log scale) of AlexNet (single tower) and VGG-16."""
    fig, axes = plots.new_figure(2, width=7.0, height=4.5)
    for ax, table, title in ((axes[0], alex1, "AlexNet (single tower)"), (axes[1], v16, "VGG-16")):
        t = table[table.type.isin(["Conv2D", "MaxPooling2D", "Dense"])]
        x = range(len(t))
        ax.bar([i - 0.2 for i in x], t.activations, width=0.4, label="activations (values per image)")
        ax.bar([i + 0.2 for i in x], t.params.where(t.params > 0), width=0.4, label="parameters")
        ax.set_yscale("log")
        ax.set_xticks(list(x), t.name, rotation=75, fontsize=7)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("Most memory early, most parameters late")
    return fig


def alexnet_vs_vgg16_claims(rec, alex1: pd.DataFrame, alex2: pd.DataFrame, v16: pd.DataFrame) -> None:
    """Seed 004: VGG-16 against AlexNet, parameters and conv-output memory."""
    alex_conv_mem = alex1.set_index("name").loc[ALEXNET_CONVS, "activation_bytes"].sum()
    vgg_conv_mem = v16[v16.type == "Conv2D"].activation_bytes.sum()
    rec.claim("arith.alexnet_vs_vgg16.params", "VGG-16 has 2.3x AlexNet's parameters (138M vs 61M)", 2.3,
              arith.totals(v16).params / arith.totals(alex2).params, "x",
              within(2.3, 0.05, why="the slide rounds to 0.1"), source="seed 004")
    rec.claim("arith.alexnet_vs_vgg16.memory", "VGG-16 needs 25x AlexNet's conv-output memory (48.6 MB vs 1.9 MB)",
              25, vgg_conv_mem / alex_conv_mem, "x", relative(25, 0.25, partial_frac=0.5), source="seed 004",
              note=(f"conv outputs at float32: AlexNet {alex_conv_mem / 1e6:.1f} MB, VGG-16 {vgg_conv_mem / 1e6:.1f} "
                    "MB; the slide's AlexNet is the 64-192-384-256-256 variant, hence its 1.9 MB"))


# --- VGG configurations, stacked 3x3 convs -------------------------------------------------------------------------


def vgg_config_claims(rec) -> pd.DataFrame:
    """Table 2's parameter totals of VGG A-E, and D and E against keras.applications. Returns the table."""
    vgg_params = {config: arith.measure(lambda config=config: vgg(config), lambda m: m.count_params())
                  for config in ["A", "A-LRN", "B", "C", "D", "E"]}
    rows = []
    for config, paper in PAPER_PARAMS_M.items():
        params = vgg_params[config]
        rows.append(dict(config=config, weight_layers=weight_layers(config), params=params, paper_millions=paper))
        rec.claim(f"arith.vgg.params.{config}", f"VGG {config} has {paper}M parameters", paper, params / 1e6,
                  "M params", within(paper, 0.5, why="Table 2 rounds to millions"),
                  source="Simonyan & Zisserman 2015, Table 2")
    for config, reference in [("D", keras.applications.VGG16), ("E", keras.applications.VGG19)]:
        expected = arith.measure(lambda reference=reference: reference(weights=None), lambda m: m.count_params())
        rec.claim(f"arith.vgg.equals_keras.{config}", f"Config {config} equals keras.applications "
                  f"{reference.__name__}", expected, vgg_params[config], "params", exact(expected),
                  source="keras.applications")
    return pd.DataFrame(rows)


def receptive_field_claims(rec, channels: int = 64) -> None:
    """Seed 004: two and three stacked 3x3 convs see 5x5 and 7x7, with 27C^2 weights against 49C^2."""
    rec.claim("arith.rf.two_3x3", "Two stacked 3x3 convs see 5x5", 5, arith.receptive_field([3, 3]), "pixels",
              exact(5), source="seed 004")
    rec.claim("arith.rf.three_3x3", "Three stacked 3x3 convs see 7x7", 7, arith.receptive_field([3, 3, 3]), "pixels",
              exact(7), source="seed 004")
    stack = keras.Sequential([keras.Input((32, 32, channels))] +
                             [keras.layers.Conv2D(channels, 3, use_bias=False) for _ in range(3)])
    single = keras.Sequential([keras.Input((32, 32, channels)), keras.layers.Conv2D(channels, 7, use_bias=False)])
    rec.claim("arith.rf.weights_ratio", "Three 3x3 layers have 27C^2 weights against 49C^2 for one 7x7", 27 / 49,
              stack.count_params() / single.count_params(), "ratio", exact(27 / 49), source="seed 004")


# --- GoogLeNet and the inception module ---------------------------------------------------------------------------


def googlenet_claims(rec, alex2: pd.DataFrame) -> pd.DataFrame:
    """Szegedy et al.'s Table 1 row by row (parameters without biases in K = 1,024, multiply-adds in M), the
    totals, and seed 001's comparisons with (two-tower) AlexNet. Returns the rows beside the paper's."""
    goog = arith.measure(googlenet, arith.layer_table)
    rows = arith.group_totals(goog, row_of)
    table1 = {  # row: (params in K, ops in M) as printed
        "conv1": (2.7, 34), "conv2": (112, 360), "3a": (159, 128), "3b": (380, 304), "4a": (364, 73), "4b": (437, 88),
        "4c": (463, 100), "4d": (580, 119), "4e": (840, 170), "5a": (1072, 54), "5b": (1388, 71), "linear": (1000, 1),
    }
    table = []
    for row_name, (paper_k, paper_m) in table1.items():
        k, m = rows.loc[row_name, "weights"] / 1024, rows.loc[row_name, "macs"] / 1e6
        table.append(dict(row=row_name, params_K=round(k, 1), paper_params_K=paper_k, ops_M=round(m, 1),
                          paper_ops_M=paper_m))
        for kind, paper, measured, unit in [("params", paper_k, k, "K weights (K=1024)"),
                                            ("ops", paper_m, m, "M MACs")]:
            claim = rec.claim(f"arith.googlenet.{kind}.{row_name}", f"GoogLeNet {row_name}: {paper}{unit.split()[0]} "
                              f"{kind}", paper, measured, unit,
                              within(paper, 1, partial_tol=0.05 * paper,
                                     why="the table rounds or truncates; partial within 5%"),
                              source="Szegedy et al. 2015, Table 1")
            if claim["verdict"] != "reproduced":  # the model follows the row's own filter columns
                claim["source_inconsistent"] = True
                claim["note"] = f"the row's own filter columns give {measured:.1f}"
    goog_total, total2 = arith.totals(goog), arith.totals(alex2)
    rec.claim("arith.googlenet.total_params", "About 6.8M parameters in all (the rows of Table 1)", 6.8,
              goog_total.params / 1e6, "M params", relative(6.8, 0.05, why="'about'"),
              source="Szegedy et al. 2015, Table 1")
    rec.claim("arith.googlenet.total_macs", "About 1.5G multiply-adds", 1.5, goog_total.macs / 1e9, "G MACs",
              relative(1.5, 0.1, why="the paper says 'about 1.5 billion'"), source="Szegedy et al. 2015")
    rec.claim("arith.googlenet.five_million", "Only 5 million parameters", 5, goog_total.params / 1e6, "M params",
              relative(5, 0.1), source="seed 001", source_inconsistent=True,
              note="Table 1's own rows add up to 6.8M; the slide's 5M does not follow from them")
    rec.claim("arith.googlenet.fewer_than_alexnet", "12x fewer parameters than AlexNet", 12,
              total2.params / goog_total.params, "x", relative(12, 0.1), source="seed 001", source_inconsistent=True,
              note="12 = 60M/5M, from the 5M above")
    rec.claim("arith.googlenet.compute_vs_alexnet", "About 2x AlexNet's compute", 2, goog_total.macs / total2.macs,
              "x", relative(2, 0.25, why="'about 2x'"), source="seed 001", note="against the two-tower AlexNet")
    return pd.DataFrame(table)


def inception_claims(rec) -> None:
    """Seed 004's inception module on 28x28x256, naive and with 1x1 bottlenecks: output channels and
    multiply-adds."""
    for kind, reductions, macs_m, channels in [("naive", False, 854, 672), ("bottleneck", True, 358, 480)]:
        x = keras.Input((28, 28, 256))
        table = arith.layer_table(keras.Model(x, inception_module(x, 128, 64, 192, 64, 96, 64, name="incep",
                                                                  reductions=reductions)))
        rec.claim(f"arith.inception.{kind}.output", f"{kind} module output is 28x28x{channels}", channels,
                  int(table.output_shape.iloc[-1].split("x")[-1]), "channels", exact(channels), source="seed 004")
        measured = arith.totals(table).macs / 1e6
        claim = rec.claim(f"arith.inception.{kind}.macs", f"{kind} module needs {macs_m}M multiply-adds", macs_m,
                          measured, "M MACs", within(macs_m, 1, why="the slide rounds to millions"), source="seed 004")
        if kind == "bottleneck" and claim["verdict"] != "reproduced":
            claim["source_inconsistent"] = True
            claim["note"] = ("the slide's own terms 3 x 28*28*64*256 + 28*28*128*256 + 28*28*192*3*3*64 + "
                             f"28*28*96*5*5*64 sum to {measured:.0f}M")


# --- ResNet and AlphaGo ---------------------------------------------------------------------------------------------


def paper_style_params(model) -> int:
    """Trainable parameters without the conv biases that keras.applications puts before each BN."""
    conv_biases = sum(layer.filters for layer in model.layers
                      if isinstance(layer, keras.layers.Conv2D) and layer.use_bias)
    return sum(math.prod(w.shape) for w in model.trainable_weights) - conv_biases


def resnet_claims(rec) -> pd.DataFrame:
    """He et al.'s Table 1: multiply-adds and parameters of ResNet-18 to 152, and ResNet-50 against
    keras.applications. Returns the table beside the paper's."""
    paper_gflops = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
    paper_mparams = {18: 11.7, 34: 21.8, 50: 25.6, 101: 44.5, 152: 60.2}
    rows, params = [], {}
    for depth, gflops in paper_gflops.items():
        table, paper_style, params[depth] = arith.measure(lambda depth=depth: resnet(depth), arith.layer_table,
                                                          paper_style_params, lambda m: m.count_params())
        t = arith.totals(table)
        rows.append(dict(depth=depth, params_M=round(t.params / 1e6, 2), paper_style_params_M=round(paper_style / 1e6, 2),
                         paper_params_M=paper_mparams[depth], gmacs=round(t.macs / 1e9, 3), paper_gflops=gflops))
        rec.claim(f"arith.resnet.flops.{depth}", f"ResNet-{depth} needs {gflops}x10^9 multiply-adds", gflops,
                  t.macs / 1e9, "G MACs", within(gflops, 0.05, partial_tol=0.05 * gflops,
                                                 why="Table 1 rounds to 0.1G; partial within 5%"),
                  source="He et al. 2016, Table 1")
        rec.claim(f"arith.resnet.params.{depth}", f"ResNet-{depth} has about {paper_mparams[depth]}M parameters",
                  paper_mparams[depth], paper_style / 1e6, "M params",
                  within(paper_mparams[depth], 0.05, partial_tol=0.02 * paper_mparams[depth],
                         why="rounded to 0.1M; partial within 2%"),
                  source="CLAIMS 01", note="trainable parameters without the conv biases keras.applications adds "
                                           "before BN")
    expected = arith.measure(lambda: keras.applications.ResNet50(weights=None), lambda m: m.count_params())
    rec.claim("arith.resnet.equals_keras.50", "ResNet-50 equals keras.applications ResNet50", expected, params[50],
              "params", exact(expected), source="keras.applications")
    return pd.DataFrame(rows)


def alphago_claims(rec) -> pd.DataFrame:
    """Seed 001's AlphaGo policy net: its parameters counted by hand, and the board kept to the softmax over
    its 361 points. Returns its layer table."""
    policy = arith.measure(alphago_policy, arith.layer_table)
    by_hand = (5 * 5 * 48 * 192 + 192) + 11 * (3 * 3 * 192 * 192 + 192) + 192 + 19 * 19
    rec.claim("arith.alphago.params", "Policy net: 5x5x192 conv, eleven 3x3x192 convs, 1x1 conv with a bias per "
              "position", by_hand, arith.totals(policy).params, "params", exact(by_hand), source="seed 001",
              note="expected value computed by hand from the layer list")
    rec.claim("arith.alphago.positions", "Every hidden layer keeps the 19x19 board; softmax over 361 moves", 361,
              int(policy.activations.iloc[-1]), "moves", exact(361), source="seed 001")
    return policy

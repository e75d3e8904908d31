"""One module per experiment: its protocol (what is built, trained and measured, from the
notebook's parameters) and the claims it checks, each with the rule that decides its verdict.

A notebook calls these in order and shows what they return; the science they use lives in the modules
above (data, models, train, probe, compare). Modules here may use the suite's `Record` and rules, the
science modules never import from here.
"""

from typing import NamedTuple


class Names(NamedTuple):
    """An experiment's other names: its module in this package and the prefix of its claim ids."""

    module: str
    prefix: str


# Each experiment's one name (notebook, parameter file, test file, run folder: `NN_name`) and its other names.
EXPERIMENTS = {
    "01_architecture_arithmetic": Names("architecture_arithmetic", "arith"),
    "02_init_variance": Names("init_variance", "init"),
    "03_nonlinearities": Names("nonlinearities", "act"),
    "04_vgg_depth": Names("vgg_depth", "vgg"),
    "05_googlenet_gap": Names("googlenet_gap", "gap"),
    "06_resnet": Names("resnet_degradation", "resnet"),
    "07_tricks": Names("tricks", "tricks"),
    "08_transfer_learning": Names("transfer_learning", "transfer"),
    "09_fcn_segmentation": Names("fcn_segmentation", "fcn"),
    "10_visualisation": Names("visualisation", "vis"),
}

"""The model zoo: one builder per architecture family, plain functional Keras models."""

from cnnlab.models.alexnet import alexnet
from cnnlab.models.alphago import alphago_policy
from cnnlab.models.googlenet import googlenet
from cnnlab.models.lenet import lenet5
from cnnlab.models.resnet import resnet
from cnnlab.models.vgg import vgg

MODELS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg": vgg,
    "googlenet": googlenet,
    "resnet": resnet,
    "alphago_policy": alphago_policy,
}

__all__ = [
    "MODELS",
    "alexnet",
    "alphago_policy",
    "googlenet",
    "lenet5",
    "resnet",
    "vgg",
]

"""The model zoo: one builder per architecture family, plain functional Keras models.

Convention: a builder's weight layers below the classifier are named as its family's paper or
keras.applications names them (the small nets of the experiments: `hidden_1` ... `hidden_L`); the
full-size ImageNet nets end in softmax as keras.applications does, the small experiment nets in logits
(`classifier_activation` changes either, where a builder takes it), trained with a from_logits loss; the
segmentation nets (`fcn`, `encoder_decoder`) return per-pixel logits.

Signatures follow keras.applications: at most one positional argument, the one that names the net
(`conv_stack(layout)`, `vgg(config)`, `resnet(depth)`, `fcn(variant)`, ...), then keyword-only `include_top,
pooling, classes, classifier_activation, input_shape` (those that make sense for the net), the family's own
arguments, and `seed`, `name` last.
"""

from cnnlab.models.alexnet import alexnet
from cnnlab.models.alphago import alphago_policy
from cnnlab.models.cifar_resnet import cifar_resnet
from cnnlab.models.convnet import conv_stack
from cnnlab.models.fcn import encoder_decoder, fcn, patch_classifier
from cnnlab.models.googlenet import googlenet, mini_googlenet
from cnnlab.models.lenet import lenet5
from cnnlab.models.plain import plain_cnn, plain_mlp
from cnnlab.models.resnet import resnet
from cnnlab.models.vgg import vgg

MODELS = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg": vgg,
    "googlenet": googlenet,
    "resnet": resnet,
    "cifar_resnet": cifar_resnet,
    "alphago_policy": alphago_policy,
    "mini_googlenet": mini_googlenet,
    "conv_stack": conv_stack,
    "plain_mlp": plain_mlp,
    "plain_cnn": plain_cnn,
    "patch_classifier": patch_classifier,
    "fcn": fcn,
    "encoder_decoder": encoder_decoder,
}

__all__ = ["MODELS", *MODELS]

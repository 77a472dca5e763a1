"""Layer names users bring from Keras and PyTorch, answered with the archc op.

A user who writes ``Dense``, ``BatchNormalization`` or ``nn.Conv2d`` knows exactly which
layer they want; difflib cannot see that ``Dense`` is ``linear``, so the unknown-op error
(:func:`archc.ops.registry.suggest`) asks this table first.

Two steps: a name is *normalised* (a module prefix such as ``nn.`` or ``keras.layers.``
dropped, case and underscores ignored), which already turns ``nn.Conv2d``, ``ReLU``,
``LeakyReLU`` or ``AdaptiveAvgPool2d`` into an archc op; the table below holds the names
that are spelled differently (Keras' ``MaxPooling2D`` is archc's ``maxpool2d``). Names
are from the Keras 3 layer API and torch.nn's module list."""

from __future__ import annotations

import re

# normalised foreign name -> archc op(s), most likely first
FOREIGN: dict[str, tuple[str, ...]] = {
    # fully connected
    "dense": ("linear",), "fc": ("linear",), "fullyconnected": ("linear",),
    "lazylinear": ("linear",),
    # convolution
    "conv": ("conv2d",), "conv1dtranspose": ("conv_transpose1d",),
    "conv2dtranspose": ("conv_transpose2d",), "conv3dtranspose": ("conv_transpose3d",),
    "deconv": ("conv_transpose2d",), "deconv2d": ("conv_transpose2d",),
    "depthwiseconv2d": ("conv2d",),  # with groups equal to the input channels
    # normalisation
    "batchnormalization": ("batchnorm2d", "batchnorm1d", "batchnorm3d"),
    "batchnorm": ("batchnorm2d", "batchnorm1d", "batchnorm3d"), "bn": ("batchnorm2d",),
    "layernormalization": ("layernorm",), "groupnormalization": ("groupnorm",),
    "instancenorm1d": ("instancenorm",), "instancenorm2d": ("instancenorm",),
    "instancenorm3d": ("instancenorm",), "unitnormalization": ("layernorm",),
    "rmsnormalization": ("rmsnorm",),
    # pooling
    "maxpooling1d": ("maxpool1d",), "maxpooling2d": ("maxpool2d",), "maxpooling3d": ("maxpool3d",),
    "maxpool": ("maxpool2d",), "averagepooling1d": ("avgpool1d",),
    "averagepooling2d": ("avgpool2d",), "averagepooling3d": ("avgpool3d",), "avgpool": ("avgpool2d",),
    "globalaveragepooling1d": ("global_avgpool",), "globalaveragepooling2d": ("global_avgpool",),
    "globalaveragepooling3d": ("global_avgpool",), "globalavgpool1d": ("global_avgpool",),
    "globalavgpool2d": ("global_avgpool",), "globalavgpool3d": ("global_avgpool",),
    # activations
    "swish": ("silu",), "activation": ("relu", "gelu", "sigmoid"),
    # regularisation
    "spatialdropout1d": ("dropout",), "spatialdropout2d": ("dropout2d",),
    "stochasticdepth": ("drop_path",),
    # merges, tensors, resizing
    "concatenate": ("concat",), "cat": ("concat",), "sum": ("add",),
    "multiheadattention": ("attention",), "unflatten": ("reshape",),
    "upsampling1d": ("upsample",), "upsampling2d": ("upsample",), "upsampling3d": ("upsample",),
    "zeropadding2d": ("zeropad2d",), "cropping1d": ("crop",), "cropping2d": ("crop",),
    "cropping3d": ("crop",),
}

# module prefixes users copy along with the layer name
_PREFIX = re.compile(r"^(?:(?:torch\.)?nn\.|(?:tf\.)?(?:keras\.)?layers\.|keras\.)", re.IGNORECASE)


def normalise(name: str) -> str:
    """``nn.Conv2d`` -> ``conv2d``; ``Leaky_ReLU`` -> ``leakyrelu``."""
    return _PREFIX.sub("", name).lower().replace("_", "")


def archc_ops_for(name: str, ops) -> list[str]:
    """The archc ops among ``ops`` that the foreign layer name ``name`` stands for; empty
    when ``name`` is not a known foreign spelling (or is already an archc name)."""
    ops = list(ops)
    if name in ops:
        return []
    key = normalise(name)
    by_key = {normalise(o): o for o in ops}
    if key in by_key:
        return [by_key[key]]
    return [o for o in FOREIGN.get(key, ()) if o in ops]

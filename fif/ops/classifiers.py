"""Classifiers as ops, so a pipeline can end in logits (an ensemble of classifiers is a pipeline).

    jpeg(75) -> smallcnn                    # image[1,28,28] -> logits[10]
    mean { smallcnn | lenet | resnet18(width=16) }

The networks are those of `fif.models` (inputs in [0, 1], normalised inside the model).
"""

from __future__ import annotations

from ..kinds import LogitsKind, TensorKind
from ..models.classifiers import build_classifier, check_input
from ..registry import KindError, Param, register_op


def _infer_for(arch: str):
    def infer(inp, args, ctx):
        if not isinstance(inp, TensorKind) or inp.kind != "image":
            raise KindError("E302", f"{arch} classifies images, got {inp}",
                            hint="end the defense with an image (e.g. add an inverse transform or clamp) "
                                 "before the classifier")
        problem = check_input(arch, inp.shape)
        if problem:
            raise KindError("E334", problem, hint="pad or resize the images")
        return LogitsKind(int(args["classes"]))
    return infer


def _build_for(arch: str, has_width: bool):
    def build(args, inp, out):
        width = args["width"] if has_width else None
        return build_classifier(arch, inp.shape, int(args["classes"]), width=width)
    return build


_CLASSES = Param("classes", "int", 10, low=1, doc="number of classes K (output logits[K])")

register_op("smallcnn", _build_for("smallcnn", True), infer=_infer_for("smallcnn"), accepts=("image",),
            learnable=True, family="classifier", params=[
                _CLASSES,
                Param("width", "int", 32, low=1, doc="channels of the first conv (the second has twice as many)"),
            ], doc="""smallcnn(classes=10, width=32): a small CNN, image[C,H,W] -> logits[classes].

    Two 3x3 conv + batch-norm + ReLU + 2x2 max-pool layers (width, 2*width channels), a 128-unit
    hidden layer. Fast on CPU; about 96% on 1,000 held-out MNIST digits after 3 epochs on 4,000.
    Example: dwt -> <LL: downup> -> idwt -> smallcnn""")

register_op("lenet", _build_for("lenet", False), infer=_infer_for("lenet"), accepts=("image",),
            learnable=True, family="classifier", params=[_CLASSES],
            doc="""lenet(classes=10): LeNet-5 with ReLU and max-pooling, image[C,H,W] (H, W >= 12) -> logits[classes].

    conv5(6, padded by 2) -> pool -> conv5(16) -> pool -> 120 -> 84 -> classes.
    LeCun, Bottou, Bengio & Haffner, Gradient-Based Learning Applied to Document Recognition, 1998.
    Example: bitdepth(2) -> lenet""")

register_op("resnet18", _build_for("resnet18", True), infer=_infer_for("resnet18"), accepts=("image",),
            learnable=True, family="classifier", params=[
                _CLASSES,
                Param("width", "int", 64, low=1, doc="channels of the stem; stages have 1, 2, 4, 8 times as many"),
            ], doc="""resnet18(classes=10, width=64): CIFAR-style ResNet-18, image[C,H,W] -> logits[classes].

    3x3 stem without max-pool, four stages of two basic blocks (strides 1, 2, 2, 2), global average
    pool, linear. width=64 is the standard 11M-parameter network.
    He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016.
    Example: jpeg(75) -> resnet18(width=32)""")

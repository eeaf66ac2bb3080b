"""Classifiers as ops, so the model an evaluation attacks is one pipeline that ends in logits.

    bitdepth(2) -> classifier                      # a recipe's classifier, with its trained weights
    mean { classifier(member=1) | jpeg(50) -> classifier(member=2) }    # chain members, averaged
    jpeg(75) -> smallcnn(weights="models/smallcnn.safetensors")         # any saved classifier

`classifier` is the recipe's own classifier (`classifier = smallcnn(...)` in the recipe): member 0
is the recipe's trained classifier (fine-tuned when a `params = classifier` stage tuned it), and
member i the i-th classifier of a `chain` stage; `fif eval` gives each its weights. The
architecture ops (`smallcnn`, `lenet`, `resnet18`) build a network of their own: fresh weights, or
the safetensors file named by `weights=` (read without pickle, relative to the recipe's folder).
Classifiers with given weights are not trained by defense stages.
"""

from __future__ import annotations

from pathlib import Path

from ..kinds import LogitsKind, TensorKind
from ..registry import KindError, Param, register_op

ARCH_OPS = ("smallcnn", "lenet", "resnet18")
CLASSIFIER_OPS = ARCH_OPS + ("classifier",)


def _image_in(name, inp):
    if not isinstance(inp, TensorKind) or inp.kind != "image":
        raise KindError("E302", f"{name} classifies images, got {inp}",
                        hint="end the defense with an image (e.g. add an inverse transform or clamp) "
                             "before the classifier")


def weights_path(value: str, env) -> Path:
    path = Path(value).expanduser()
    base = getattr(env, "base", None)
    return path if path.is_absolute() or base is None else Path(base) / path


def _infer_for(arch: str):
    from ..models.classifiers import check_input

    def infer(inp, args, ctx):
        _image_in(arch, inp)
        problem = check_input(arch, inp.shape)
        if problem:
            raise KindError("E334", problem, hint="pad or resize the images")
        if args.get("weights") is not None and not weights_path(args["weights"], ctx.env).is_file():
            raise KindError("E401", f"no weights file {weights_path(args['weights'], ctx.env)}", param="weights",
                            hint="give the path of a .safetensors file (relative to the recipe's folder)")
        return LogitsKind(int(args["classes"]))
    return infer


def _build_for(arch: str, has_width: bool):
    def build(args, inp, out, env=None):
        from ..models.classifiers import build_classifier
        from ..models.weights import load_weights
        width = args["width"] if has_width else None
        model = build_classifier(arch, inp.shape, int(args["classes"]), width=width)
        if args["weights"] is not None:
            load_weights(model, weights_path(args["weights"], env))
            model.requires_grad_(False)
        return model
    return build


_CLASSES = Param("classes", "int", 10, low=1, high=100_000, doc="number of classes K (output logits[K])")
_WEIGHTS = Param("weights", "str", None, doc="a .safetensors file of this network's weights (default: fresh weights)")


def _has_no_weights(args) -> bool:
    return args.get("weights") is None


register_op("smallcnn", _build_for("smallcnn", True), infer=_infer_for("smallcnn"), accepts=("image",),
            learnable=_has_no_weights, family="classifier", params=[
                _CLASSES,
                Param("width", "int", 32, low=1, high=4096, doc="channels of the first conv (the second has twice as many)"),
                _WEIGHTS,
            ], doc="""smallcnn(classes=10, width=32, weights): a small CNN, image[C,H,W] -> logits[classes].

    Two 3x3 conv + batch-norm + ReLU + 2x2 max-pool layers (width, 2*width channels), a 128-unit
    hidden layer. Fast on CPU; about 96% on 1,000 held-out MNIST digits after 3 epochs on 4,000.
    Example: dwt -> <LL: downup> -> idwt -> smallcnn(weights="smallcnn.safetensors")""")

register_op("lenet", _build_for("lenet", False), infer=_infer_for("lenet"), accepts=("image",),
            learnable=_has_no_weights, family="classifier", params=[_CLASSES, _WEIGHTS],
            doc="""lenet(classes=10, weights): LeNet-5 with ReLU and max-pooling, image[C,H,W] (H, W >= 12) -> logits[classes].

    conv5(6, padded by 2) -> pool -> conv5(16) -> pool -> 120 -> 84 -> classes.
    LeCun, Bottou, Bengio & Haffner, Gradient-Based Learning Applied to Document Recognition, 1998.
    Example: bitdepth(2) -> lenet""")

register_op("resnet18", _build_for("resnet18", True), infer=_infer_for("resnet18"), accepts=("image",),
            learnable=_has_no_weights, family="classifier", params=[
                _CLASSES,
                Param("width", "int", 64, low=1, high=4096, doc="channels of the stem; stages have 1, 2, 4, 8 times as many"),
                _WEIGHTS,
            ], doc="""resnet18(classes=10, width=64, weights): CIFAR-style ResNet-18, image[C,H,W] -> logits[classes].

    3x3 stem without max-pool, four stages of two basic blocks (strides 1, 2, 2, 2), global average
    pool, linear. width=64 is the standard 11M-parameter network.
    He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016.
    Example: jpeg(75) -> resnet18(width=32)""")


def _recipe_classifier(ctx):
    spec = getattr(ctx.env, "classifier", None)
    if spec is None:
        raise KindError("E236", "'classifier' stands for a recipe's classifier, and there is no recipe here",
                        hint='outside a recipe name a network and its weights, e.g. smallcnn(weights="m.safetensors")')
    return spec


def overrides(args) -> dict:
    """The settings a `classifier(...)` call changes from the recipe's classifier."""
    return {k: args[k] for k in OVERRIDES if args.get(k) is not None}


def architecture(args, env) -> tuple[str, int | None]:
    """(arch, width) of a `classifier(...)` call: the recipe's, unless the call names others."""
    arch, width, _ = env.classifier
    if args.get("arch") is not None and args["arch"] != arch:
        arch, width = args["arch"], None
    return arch, args.get("width") if args.get("width") is not None else width


def _classifier_infer(inp, args, ctx):
    from ..models.classifiers import check_input
    _image_in("classifier", inp)
    _, _, classes = _recipe_classifier(ctx)
    if args["member"] and overrides(args):
        raise KindError("E237", "a chain member has the weights its stage trained; it takes no other settings",
                        param="member", hint="drop the settings, or drop member= for another trained classifier")
    arch, width = architecture(args, ctx.env)
    if width is not None and arch == "lenet":
        raise KindError("E221", "lenet has no width", param="width", hint="leave width out")
    problem = check_input(arch, inp.shape)
    if problem:
        raise KindError("E334", problem, hint="pad or resize the images")
    if args.get("adversarial") is not None and args.get("encoded") is not None:
        raise KindError("E238", "adversarial training on an encoding is not supported: PGD would perturb the "
                        "encoded images, not the images", param="encoded",
                        hint="drop adversarial=..., or drop encoded=... and put the encoding in the defense")
    return LogitsKind(int(classes))


def _classifier_build(args, inp, out, env=None):
    from ..models.classifiers import build_classifier
    arch, width = architecture(args, env)
    model = build_classifier(arch, inp.shape, int(out.K), width=width)
    model.requires_grad_(False)
    model.member, model.overrides = int(args["member"]), overrides(args)
    return model


def _override_params():
    from dataclasses import replace
    from ..models.settings import CLASSIFIERS
    common = [replace(p, default=None) for p in CLASSIFIERS["smallcnn"]]
    return [Param("arch", "choice", None, choices=ARCH_OPS, doc="another architecture on the recipe's settings"),
            *common,
            Param("encoded", "pipeline", None,
                  doc="train this classifier on the recipe's images passed through this fixed pipeline "
                      "(an encoding such as thermometer(16)); its first layer takes that pipeline's output")]


_OVERRIDE_PARAMS = _override_params()
OVERRIDES = tuple(p.name for p in _OVERRIDE_PARAMS)

register_op("classifier", _classifier_build, infer=_classifier_infer, accepts=("image",), family="classifier",
            params=[Param("member", "int", 0, low=0, high=10_000,
                          doc="0: the recipe's classifier; i: the i-th classifier of the recipe's chain stage"),
                    *_OVERRIDE_PARAMS],
            doc="""classifier(member=0, arch, width, epochs, lr, batch, optim, seed, adversarial): the recipe's classifier with its trained weights, image -> logits.

    member 0 is the classifier the recipe trains and caches (fine-tuned, when a stage with
    params = classifier tuned it); member i is the i-th classifier of its `chain` stage. Any
    setting given makes another classifier on the recipe's data, trained once and cached: the
    adversarially trained reference row is `classifier(adversarial=pgd(eps=0.3))`, the same
    defense in front of LeNet `bitdepth(2) -> classifier(arch=lenet)`, a classifier trained on
    an encoding `thermometer(16) -> classifier(encoded=thermometer(16))` (Buckman et al. 2018).
    `fif eval` loads the weights; a model is `defense -> classifier` unless the recipe says more.
    model = mean { classifier | bitdepth(4) -> classifier(member=1) | noise(0.1) -> classifier(member=2) }""")

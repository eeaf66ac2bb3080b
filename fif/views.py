"""What a gray-box attacker sees of a model: its classifiers, without the transforms in front.

    model:   mean { jpeg(90) -> classifier(member=1) | jpeg(50) -> classifier(member=2) }
    graybox: mean { classifier(member=1) | classifier(member=2) }

    view, text = classifier_view(model)      # shares the model's classifier weights

Every stage before the first stage that makes logits is dropped; a block that combines logits
(`mean`, `vote`) keeps its combination over its branches' classifier views. For the usual
`defense -> classifier` model the view is the plain classifier.
"""

from __future__ import annotations

from torch import nn

from .build import OpNode, SeqNode, SharedNode
from .kinds import LogitsKind
from .ops.classifiers import CLASSIFIER_OPS
from .registry import get_op
from .run_context import ATTACK


class ClassifierView(nn.Module):
    """A model's classifiers alone. The output is the deployed one; gradients are the attack view's,
    so a combination without a true gradient (`vote`, counting) passes its surrogate's (the mean
    softmax) instead of zero: the gray-box attacker is blind to the transforms, not to the gradient."""

    def __init__(self, node: nn.Module, text: str):
        super().__init__()
        self.node, self.text = node, text

    def forward(self, x):
        return self.node(x, ATTACK)

    def extra_repr(self):
        return self.text


def classifier_view(pipeline) -> ClassifierView:
    """The gray-box attacker's model for `pipeline` (a fif.Pipeline ending in logits)."""
    node = _strip(pipeline.root)
    if node is None:
        raise ValueError(f"{pipeline.source.strip()!r} has no classifier")
    return ClassifierView(node, describe(node))


def _makes_logits(node) -> bool:
    return isinstance(getattr(node, "step", None) and node.step.out, LogitsKind)


def _strip(node):
    if isinstance(node, SharedNode):
        return _strip(node.target) if _makes_logits(node) else None
    if isinstance(node, SeqNode):
        for i, stage in enumerate(node.stages):
            if _makes_logits(stage):
                head = _strip(stage)
                rest = list(node.stages[i + 1:])
                return head if not rest else SeqNode(node.step, [head, *rest])
        return None
    if isinstance(node, OpNode):
        if node.op in CLASSIFIER_OPS:
            return node
        if node.branches and _makes_logits(node):
            branches = [_strip(b) for b in node.branches]
            if any(b is None for b in branches):
                return None
            spec = get_op(node.op)
            block = OpNode(node.step, spec.build(node.step.kwargs, node.step.inp, node.step.out, branches),
                           spec.surrogate)
            block.branches = branches
            return block
    return None


def describe(node) -> str:
    """fif-like text of a classifier view: `mean { classifier(member=1) | classifier(member=2) }`."""
    if isinstance(node, SeqNode):
        return " -> ".join(describe(s) for s in node.stages)
    if isinstance(node, OpNode):
        if node.branches:
            return f"{node.op} {{ " + " | ".join(describe(b) for b in node.branches) + " }"
        args = node.step.kwargs
        if node.op == "classifier":
            given = {k: v for k, v in args.items() if v is not None and (k != "member" or v)}
            return "classifier" + (f"({', '.join(f'{k}={_show(v)}' for k, v in given.items())})" if given else "")
        if args.get("weights"):
            return f'{node.op}(weights="{args["weights"]}")'
        return node.op
    return type(node).__name__


def _show(v) -> str:
    if isinstance(v, tuple) and hasattr(v, "args"):  # a bound call, e.g. pgd(eps=0.3)
        return f"{v.name}(" + ", ".join(f"{k}={_show(x)}" for k, x in dict(v.args).items()) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)

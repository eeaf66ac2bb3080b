"""fif: a small language for "F + inverse F" adversarial defenses, compiled to PyTorch.

    import fif
    defense = fif.compile("dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt",
                          input_shape=(1, 28, 28))

`import fif` does not import torch: parsing, formatting and checking stay fast (`fif fmt` on save);
torch loads when something is built or run.
"""

from .api import compile, format, parse
from .errors import Diagnostic, FifError
from .registry import Param, register_op

__version__ = "0.1.0"

__all__ = ["parse", "format", "compile", "load", "load_recipe", "register_op", "Param", "Pipeline",
           "AttackView", "FifError", "Diagnostic", "Recipe", "__version__"]

_LAZY = {"load": "loading", "Pipeline": "pipeline", "AttackView": "pipeline", "load_recipe": "recipe",
         "Recipe": "recipe"}
_SUBMODULES = ("attacks", "data", "models", "evaluate", "train", "recipe", "registry", "syntax", "ops",
               "compiler", "reports", "views")


def __getattr__(name):
    import importlib
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fif' has no attribute {name!r}")

"""fif: a small language for "F + inverse F" adversarial defenses, compiled to PyTorch.

    import fif
    defense = fif.compile("dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt",
                          input_shape=(1, 28, 28))
"""

from .api import compile, format, parse
from .errors import Diagnostic, FifError
from .pipeline import AttackView, Pipeline, load
from .registry import Param, register_op

__version__ = "0.1.0"

__all__ = ["parse", "format", "compile", "load", "load_recipe", "register_op", "Param", "Pipeline",
           "AttackView", "FifError", "Diagnostic", "Recipe", "__version__"]


def __getattr__(name):
    # Recipes pull in pydantic models; load them on first use.
    if name in ("load_recipe", "Recipe"):
        from . import recipe
        return getattr(recipe, name)
    raise AttributeError(f"module 'fif' has no attribute {name!r}")

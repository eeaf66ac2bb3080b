"""fif: a small language for "F + inverse F" adversarial defenses, compiled to PyTorch.

    import fif
    defense = fif.compile("dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt",
                          input_shape=(1, 28, 28))
"""

from .api import compile, format, parse
from .errors import Diagnostic, FifError
from .loading import load
from .pipeline import AttackView, Pipeline
from .registry import Param, register_op

__version__ = "0.1.0"

__all__ = ["parse", "format", "compile", "load", "load_recipe", "register_op", "Param", "Pipeline",
           "AttackView", "FifError", "Diagnostic", "Recipe", "__version__"]


_SUBMODULES = ("attacks", "data", "models", "evaluate", "train", "recipe", "registry", "syntax", "ops")


def __getattr__(name):
    # Recipes, attacks, data and training load on first use, so `import fif` stays light.
    if name in ("load_recipe", "Recipe"):
        from . import recipe
        return getattr(recipe, name)
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fif' has no attribute {name!r}")

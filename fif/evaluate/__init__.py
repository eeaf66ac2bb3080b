"""Evaluation: attacks x epsilons x threat models over a recipe's models, and the report.

    results = run_eval(fif.load_recipe("recipes/bitdepth.fif")); write_report(results, Path("out"))
"""

__all__ = ["run_eval", "write_report", "masking_warnings", "psnr", "ssim"]

_WHERE = {"run_eval": "runner", "write_report": "report", "masking_warnings": "masking", "psnr": "metrics",
          "ssim": "metrics"}


def __getattr__(name):  # loaded on first use, so `fif --help` does not import torch
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'fif.evaluate' has no attribute {name!r}")

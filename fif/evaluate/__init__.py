"""Evaluation: attacks x epsilons x threat models over a recipe's defenses, and the report.

    results = run_eval(fif.load_recipe("recipes/bitdepth.fif")); write_report(results, Path("out"))
"""

from .masking import masking_warnings
from .metrics import psnr, ssim
from .report import write_report
from .runner import run_eval

__all__ = ["run_eval", "write_report", "masking_warnings", "psnr", "ssim"]

"""Training of a recipe's learnable parts: staged, resumable, reproducible (`fif train`).

    summary = run_training(fif.load_recipe("recipes/tiny.fif"), seed=0)
    path = trained_weights(recipe)          # runs/tiny/train/defense.safetensors, or None

A recipe's `train` section holds stages; see fif.train.stages (params, freeze, chains),
fif.train.inputs (clean, noisy, pipeline, adversarial), fif.train.losses (l1, mse, ce, feature,
rep, min_eps routing), fif.train.optim (optimizers, schedules) and fif.train.run (run directory,
checkpoints, --resume).
"""

__all__ = ["run_training", "trained_weights", "default_run_dir"]


def __getattr__(name):  # loaded on first use, so `fif --help` does not import torch
    if name in __all__:
        from . import run
        return getattr(run, name)
    raise AttributeError(f"module 'fif.train' has no attribute {name!r}")

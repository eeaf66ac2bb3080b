"""`--amp`: bfloat16 autocast for training and evaluation on CUDA; float32 everywhere else.

    fif eval recipes/bitdepth.fif --device cuda --amp

Under autocast only the ops torch lists for it (convolutions, matrix products) run in bfloat16;
losses such as cross-entropy are computed in float32, and the tensors an attack owns (the clean
input, the perturbation, the adversarial example, the gradient with respect to the input) stay
float32, because autocast never changes the dtype of a leaf tensor or of element-wise updates.
bfloat16 needs no loss scaling. On CPU `--amp` is an error (E522): CPU bfloat16 is slower than
float32 on most machines and would make CPU runs, which fif keeps bit-reproducible, depend on it.
"""

from __future__ import annotations

import contextlib

from .errors import FifError, diagnostic


def check_amp(device: str, amp: bool) -> bool:
    """`amp` after checking it fits `device`: E522 for --amp on a CPU device."""
    if amp and not str(device).startswith("cuda"):
        raise FifError(diagnostic("E522", f"--amp (bfloat16 autocast) needs a CUDA device, this run is on '{device}'",
                                  hint="add --device cuda, or leave out --amp (CPU runs are float32)"))
    return bool(amp)


def autocast(device: str, amp: bool):
    """A bfloat16 autocast context on CUDA when `amp`, else a context that changes nothing."""
    if not amp:
        return contextlib.nullcontext()
    import torch
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

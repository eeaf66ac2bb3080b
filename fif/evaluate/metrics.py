"""Image-quality metrics for defended images: PSNR and SSIM, batched, any device.

    psnr(defense(x), x)    # dB, per sample
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per sample; identical images give +inf."""
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(peak ** 2 / mse)


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per sample (Wang et al. 2004: Gaussian window 11, sigma 1.5,
    K1 = 0.01, K2 = 0.03), averaged over channels and valid positions."""
    C = a.shape[1]
    size = min(size, a.shape[-1], a.shape[-2])
    w = _gaussian_window(size, sigma, C, a)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a = F.conv2d(a, w, groups=C)
    mu_b = F.conv2d(b, w, groups=C)
    var_a = F.conv2d(a * a, w, groups=C) - mu_a ** 2
    var_b = F.conv2d(b * b, w, groups=C) - mu_b ** 2
    cov = F.conv2d(a * b, w, groups=C) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def transmission(defended_adv: torch.Tensor, defended: torch.Tensor, x_adv: torch.Tensor,
                 x: torch.Tensor) -> torch.Tensor:
    """How much of a perturbation gets through a defense, per sample:
    ||D(x + eta) - D(x)||_2 / ||eta||_2 (1: all of it, 0: none); NaN where eta = 0."""
    moved = (defended_adv - defended).flatten(1).norm(dim=1)
    eta = (x_adv - x).flatten(1).norm(dim=1)
    return torch.where(eta > 0, moved / eta.clamp(min=1e-12), torch.full_like(eta, float("nan")))

"""Synthetic clips with exactly known sub-pixel motion, shared by the flow and kinematic tests."""

from __future__ import annotations

import torch


def textured_clip(h: int, w: int, shifts: torch.Tensor, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """[1, T, 3, H, W] smooth texture (sum of sinusoids) translated by shifts[t] = (du, dv) px: exact sub-pixel
    motion, frame t+1 = frame t moved by shifts[t+1] - shifts[t]."""
    g = torch.Generator().manual_seed(seed)
    freqs = (torch.rand(3, 6, 2, generator=g, dtype=dtype) * 0.5 + 0.1) * (
        torch.randint(0, 2, (3, 6, 2), generator=g) * 2 - 1
    )
    phase = torch.rand(3, 6, generator=g, dtype=dtype) * 2 * torch.pi
    v, u = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    frames = []
    for du, dv in shifts:
        arg = (
            freqs[..., 0, None, None] * (u - du)
            + freqs[..., 1, None, None] * (v - dv)
            + phase[..., None, None]
        )
        frames.append(0.5 + 0.08 * torch.sin(arg).sum(1))
    return torch.stack(frames).unsqueeze(0)


def accelerating(t: torch.Tensor, p0, v0, a) -> torch.Tensor:
    return torch.stack([p0[i] + v0[i] * t + 0.5 * a[i] * t**2 for i in range(2)], dim=1)

"""`l2`: mean Euclidean distance between generated and ground-truth object centroids.

    l2_distance(pred[B, T, 2], target[B, T, 2], valid[B, T]) -> [B]   pixels, >= 0, lower is better

Means run over frames where `valid` (both tracks defined); NaN for a clip with no such frame.
"""

from __future__ import annotations

from torch import Tensor

from newtonbench.metrics.functional._util import masked_mean


def l2_distance(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    d = (pred - target).square().sum(-1).sqrt()
    return masked_mean(d, valid & d.isfinite(), dim=-1)

"""Every score metric's metadata, declared once (torchmetrics style).

The scorer writes these declarations into summary.json["metrics"], the leaderboard reads them from
there (unit, direction, range) and the rewards read them for their docs. Changing a metric's
definition in a way that changes its numbers bumps its `version`; versions travel into every results
file, and the leaderboard refuses to mix versions.

`higher_is_better` is True / False for scores with a direction, and None for measurements whose
ideal is a `target` value (accel_ratio: 1.0) or that are not scores at all (accel_fit_x / _z: the
fitted acceleration, reported so that a physicist can read "your objects fall at 6.1 m/s^2").

This module imports nothing heavy: the CLI and the leaderboard read it without torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from newtonbench.errors import InvalidValueError
from newtonbench.registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    low: float | None  # range of values; None = unbounded on that side
    high: float | None
    higher_is_better: bool | None
    differentiable: bool  # in the generated frames (the rewards need this)
    version: int
    formula: str  # plain-text definition, copied into summary.json and the README (Scoring, Metrics)
    target: float | None = None  # the ideal value when higher_is_better is None
    pisa: bool = False  # emitted only with --pisa-compatible

    def __post_init__(self):
        if not self.name.isidentifier():
            raise InvalidValueError(f"metric name {self.name!r} is not an identifier")
        if self.version < 1:
            raise InvalidValueError(f"metric {self.name} version={self.version}; allowed: >= 1")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise InvalidValueError(f"metric {self.name} range [{self.low}, {self.high}] is empty")

    @property
    def range(self) -> tuple[float, float]:
        return (-math.inf if self.low is None else self.low, math.inf if self.high is None else self.high)

    def to_json(self) -> dict:
        """The summary.json form (schema.py): unit, higher_is_better, range, version, description."""
        d = asdict(self)
        d["range"] = [self.low, self.high]
        d["description"] = d.pop("formula")
        del d["low"], d["high"]
        return d


METRICS: Registry[MetricInfo] = Registry("metric")


def _declare(info: MetricInfo) -> MetricInfo:
    METRICS.register(info.name, info)
    return info


# Notation: c_k = (u_k, v_k) object-mask centroid in benchmark pixels at benchmark frame k (time
# t_k = k / fps); hats are ground truth; D = sqrt(W^2 + H^2) the image diagonal; Z the motion-plane
# depth; fx, fy the focal lengths. Means run over frames where both tracks are valid. Pixels -> metres
# use Z' = Z / λ, λ = (a_m . a_p) / |a_p|^2 the ground truth's own mask-centroid acceleration per unit of
# its projected centre's, over the fit window (a solid object's silhouette is its near side, and the
# faces it shows change as it moves: its centroid accelerates faster than its centre). Version 2 of the
# metre-based metrics: version 1 used the displacement gain, which left ramp clips 2-3% off.
_declare(MetricInfo(
    "l2", "px", 0.0, None, False, False, 1,
    "mean_k ||c_k - ĉ_k||_2 (mask centroids on the benchmark's frame grid)"))
_declare(MetricInfo(
    "l2_norm", "1", 0.0, None, False, False, 1, "l2 / D, D = image diagonal in pixels"))
_declare(MetricInfo(
    "chamfer", "px", 0.0, None, False, False, 1,
    "mean_k [mean_{p in M_k} min_{q in M^_k} ||p - q|| + mean_{q in M^_k} min_{p in M_k} ||p - q||] "
    "(PISA's symmetric sum, in pixels; frames where either mask is empty are skipped)"))
_declare(MetricInfo(
    "chamfer_norm", "1", 0.0, None, False, False, 1, "chamfer / D, D = image diagonal in pixels"))
_declare(MetricInfo(
    "iou", "1", 0.0, 1.0, True, False, 1,
    "mean_k |M_k ∩ M^_k| / |M_k ∪ M^_k|, a frame where both masks are empty counts 1 (as PISA)"))
_declare(MetricInfo(
    "rmse_v", "m/s", 0.0, None, False, False, 2,
    "sqrt(mean_k ||S (v_k - v^_k)||^2), v_k = (c_{k+1} - c_k) fps, S = diag(Z'/fx, Z'/fy) px -> m"))
_declare(MetricInfo(
    "rmse_a", "m/s^2", 0.0, None, False, False, 2,
    "sqrt(mean_k ||S (a_k - a^_k)||^2), a_k = (c_{k+1} - 2 c_k + c_{k-1}) fps^2, S as rmse_v"))
_declare(MetricInfo(
    "rmse_v_px", "px/s", 0.0, None, False, False, 1, "rmse_v without S: in pixels per second"))
_declare(MetricInfo(
    "rmse_a_px", "px/s^2", 0.0, None, False, False, 1, "rmse_a without S: in pixels per second squared"))
_declare(MetricInfo(
    "accel_fit_x", "m/s^2", None, None, None, False, 2,
    "a_x of the least-squares fit X(t) = X0 + V t + a t^2 / 2 of the generated track in metres "
    "(X = (u - cx) Z' / fx) over the generated frames inside the ground truth's contact-free window"))
_declare(MetricInfo(
    "accel_fit_z", "m/s^2", None, None, None, False, 2,
    "a_z of the same fit, world z up (Z_w = -(v - cy) Z' / fy); -9.81 for a correct free fall"))
_declare(MetricInfo(
    "accel_ratio", "1", 0.0, None, None, False, 2,
    "||(accel_fit_x, accel_fit_z)|| / ||(accel_x, accel_z)|| of the manifest; 1 = right gravity",
    target=1.0))
_declare(MetricInfo(
    "smoothness", "1", 0.0, 1.0, True, False, 1,
    "E_fit / (E_fit + E_res + eps): fit the track piecewise-quadratically over the ground truth's "
    "constant-acceleration segments (split at contacts and force changes), E_fit = sum_k ||Δĉ_k||^2 the "
    "fitted motion's frame-to-frame energy, E_res = sum_k ||Δr_k||^2 that of the residual r = c - ĉ, "
    "eps = (0.05 px)^2 per step; 1 = all motion is smooth Newtonian motion, 0 = jitter or no motion"))
_declare(MetricInfo(
    "consistency", "1", 0.0, 1.0, True, False, 1,
    "exp(-(d_col / 0.1 + d_shape / 1.0 + d_bg / 0.02)): d_col = median_k ||χ_k - χ_0|| of the object's "
    "mean chromaticity RGB/(R+G+B) against the first frame, d_shape = median_k |log(A_k / A_0) - "
    "log(Â_k / Â_0)| its area change beyond the ground truth's, d_bg = mean_k mean |I_k - I_0| over "
    "pixels >= 4 px outside both objects, within the region the objects visit (flicker, drift); 1 = the "
    "object and the background stay the same"))
_declare(MetricInfo(
    "kinematic_residual", "px^2/frame^6", 0.0, None, False, True, 1,
    "mean_t mean_pixels ||φ(t+1) - 2 φ(t) + φ(t-1)||^2 on optical flow φ (px/frame; weight-free "
    "Lucas-Kanade by default, RAFT optional) read along the flow's trajectories and weighted by the "
    "generated object mask, on the benchmark's pixel grid; 0 = constant acceleration (the paper's "
    "Newtonian kinematic constraint; metrics.functional.kinematic)"))
# PISA's exact definitions (vision-x-nyu/pisa-experiments utils/metrics.py), --pisa-compatible only:
# generated frame i is compared with ground-truth frame int(i * fps_gt / fps_pred).
_declare(MetricInfo(
    "pisa_l2", "1", 0.0, None, False, False, 1,
    "mean over frames and the two coordinates of |c - ĉ|, divided by sqrt(2) H (H = image height)",
    pisa=True))
_declare(MetricInfo(
    "pisa_chamfer", "1", 0.0, None, False, False, 1,
    "mean over frames of the symmetric chamfer sum in pixels, divided by sqrt(2) H", pisa=True))
_declare(MetricInfo(
    "pisa_iou", "1", 0.0, 1.0, True, False, 1,
    "mean over frames of mask IoU, 1 where both masks are empty", pisa=True))

#: The results.parquet metric columns, in order (PISA columns only with --pisa-compatible).
METRIC_COLUMNS: tuple[str, ...] = tuple(n for n in METRICS if not METRICS.get(n).pisa)
PISA_COLUMNS: tuple[str, ...] = tuple(n for n in METRICS if METRICS.get(n).pisa)


def metric_info(name: str) -> MetricInfo:
    """The declaration of `name`; UnknownNameError with a did-you-mean otherwise."""
    return METRICS.get(name)


def declarations(names=None) -> dict[str, dict]:
    """{name: json form} for summary.json, in declaration order."""
    return {n: METRICS.get(n).to_json() for n in (names if names is not None else METRICS)}

"""Physics rewards for post-training: adapters over the scorer's kernels.

EVERY REWARD TERM HERE IS A NON-NEGATIVE PENALTY: LOWER IS BETTER, 0 IS PERFECT, AND TRAINING MINIMISES IT.
(The name "reward" follows the paper and VADER / DRaFT; the sign convention is a loss's.)

    reward = build_reward("kinematic=1,mass=0.5")
    out = reward(frames, RewardContext(first_frame=img, background=plate))   # frames [B, T, C, H, W] in [0, 1]
    out.total.mean().backward()                                              # out.terms["kinematic"]: [B]

Terms (registered by name in ``REWARD_TERMS``; the spec is ``name=weight,...``, total = sum of weight x term):

- ``kinematic``: the paper's Newtonian kinematic constraint on optical flow,
  :func:`~newtonbench.metrics.functional.kinematic.kinematic_residual` (px^2/frame^6), over the whole frame
  as in the paper, or weighted by the object's soft mask (``kinematic_masked=True``).
- ``kinematic_track``: the same constraint on the object's soft-mask centroid track,
  :func:`~newtonbench.metrics.functional.kinematic.track_residual` (px^2/frame^6); it follows the object,
  so it is exactly 0 for constant image-plane acceleration.
- ``mass``: mass conservation: the object's appearance, relative to the conditioning frame, held constant
  over time. Weight-free default (``mass_backend="stats"``): squared relative change of the soft mask's
  area plus squared change of its mean colour (dimensionless); ``mass_backend="vjepa2"``: 1 - cosine
  similarity of mask-pooled V-JEPA 2 embeddings (transformers, local weights). Catches vanishing, shrinking,
  growing and recoloured objects.
- ``accel``: squared error of the object's fitted image-plane acceleration against the bench's
  ground-truth clip (``RewardContext.reference``), relative to the true magnitude (dimensionless; 1 for
  a frozen object). The paper's two terms see a frozen clip as perfect (zero flow has zero second
  difference; an unchanged object conserves its appearance): only a term that knows the object must
  accelerate rules freezing out. Use e.g. ``kinematic=1,mass=0.5,accel=1`` with a reference clip.

The object is found by a differentiable soft mask: the probability that a pixel differs from the clean
background plate (``RewardContext.background``), or, without a plate, a two-class colour model (object vs
background) fitted on the conditioning frame and its first-frame object mask (``first_mask``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from newtonbench.errors import InvalidValueError, MissingDependencyError, check_range
from newtonbench.metrics.functional.kinematic import kinematic_residual, soft_centroids, track_residual
from newtonbench.registry import Registry

log = logging.getLogger(__name__)
Tensor = torch.Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------------------
# Data passed in and out


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


@dataclass(frozen=True)
class RewardContext:
    """What the bench knows about each sample of a batch (images in [0, 1], any resolution: they are
    resized to the generated frames' size).

    Attributes:
        first_frame: ``[B, C, H, W]`` the conditioning image.
        first_mask: optional ``[B, H, W]`` object mask of the conditioning image (0/1 or soft).
        background: optional ``[B, C, H, W]`` clean background plate (the scene without the object).
        reference: optional ``[B, T, C, H, W]`` the bench's ground-truth clip (same T and fps as the
            generated frames); needed by the ``accel`` term.
    """

    first_frame: Tensor
    first_mask: Tensor | None = None
    background: Tensor | None = None
    reference: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.first_frame, torch.Tensor) or self.first_frame.ndim != 4:
            raise InvalidValueError(
                f"first_frame must be a tensor [B, C, H, W]; got {_shape(self.first_frame)}"
            )
        b, c = self.first_frame.shape[:2]
        expected = {"first_mask": 3, "background": 4, "reference": 5}
        for name, ndim in expected.items():
            x = getattr(self, name)
            if x is None:
                continue
            if not isinstance(x, torch.Tensor) or x.ndim != ndim or x.shape[0] != b:
                want = {3: "[B, H, W]", 4: "[B, C, H, W]", 5: "[B, T, C, H, W]"}[ndim]
                raise InvalidValueError(f"{name} must be a tensor {want} with B={b}; got {_shape(x)}")
            if ndim >= 4 and x.shape[-3] != c:
                raise InvalidValueError(f"{name} has {x.shape[-3]} channels; first_frame has {c}")

    @property
    def batch_size(self) -> int:
        return self.first_frame.shape[0]


@dataclass(frozen=True)
class RewardOutput:
    """``total`` [B] = sum of weight x term; ``terms`` maps every term's name to its unweighted [B] value.
    All are penalties: lower is better."""

    total: Tensor
    terms: dict[str, Tensor]


@dataclass(frozen=True)
class RewardOptions:
    """Options of the terms (``build_reward(spec, **options)``).

    Attributes:
        flow: flow method of ``kinematic`` (``"lk"`` weight-free, ``"raft"``).
        flow_weights: local RAFT state dict, for ``flow="raft"``.
        flow_max_side: compute flow and residual of ``kinematic`` at this long side (a speed knob; the
            value stays in full-resolution pixels), None = full resolution.
        kinematic_masked: weight the ``kinematic`` residual by the object's soft mask (needs a plate or a
            first mask). Default False: the paper's whole-frame residual. Around a small moving object the
            whole-frame residual is dominated by occlusion edges in the background (measured: 0.24 for an
            exact constant-acceleration 32x32 clip vs 0.39 with a velocity kink); restricted to the object
            it separates them (0.017 vs 1.12). But the mask comes from the generated frames themselves, so
            early in training (noise-like samples) it adds a second, competing gradient path: on the tiny
            test pipelines 5 reward steps lowered the masked term by 5%, the whole-frame one by 30%.
        mass_backend: ``"stats"`` (weight-free) or ``"vjepa2"``.
        vjepa2_path: local folder of a V-JEPA 2 model (``AutoModel.from_pretrained``), for ``"vjepa2"``.
        mask_threshold: RMS colour distance to the background (in [0, 1] intensity units) at which a
            pixel is 50% object.
        mask_softness: width of the soft mask's sigmoid, same units.
        accel_floor: px/frame^2 added (in quadrature) to the true acceleration's magnitude in ``accel``'s
            denominator, so a reference at rest does not divide by zero.
    """

    flow: str = "lk"
    flow_weights: str | None = None
    flow_max_side: int | None = None
    kinematic_masked: bool = False
    mass_backend: str = "stats"
    vjepa2_path: str | None = None
    mask_threshold: float = 0.1
    mask_softness: float = 0.05
    accel_floor: float = 0.05

    def __post_init__(self) -> None:
        if self.mass_backend not in ("stats", "vjepa2"):
            raise InvalidValueError(
                f"mass_backend={self.mass_backend!r} is not known; allowed: stats, vjepa2"
            )
        if self.mass_backend == "vjepa2" and not self.vjepa2_path:
            raise InvalidValueError("mass_backend='vjepa2' needs vjepa2_path=PATH (a local V-JEPA 2 folder)")
        if self.flow == "raft" and not self.flow_weights:
            raise InvalidValueError(
                "flow='raft' needs flow_weights=PATH (a local torchvision RAFT state dict)"
            )
        check_range("mask_threshold", self.mask_threshold, 0.0, 1.0, low_open=True)
        check_range("mask_softness", self.mask_softness, 0.0, 1.0, low_open=True)
        check_range("accel_floor", self.accel_floor, 0.0, low_open=True)
        if self.flow_max_side is not None:
            check_range("flow_max_side", self.flow_max_side, 8)

    def flow_kwargs(self) -> dict:
        kw: dict = {}
        if self.flow == "raft":
            kw["weights"] = self.flow_weights
        if self.flow_max_side is not None:
            kw["max_side"] = self.flow_max_side
        return kw


# ---------------------------------------------------------------------------------------------------------
# The object's soft mask, shared by the object terms


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize [..., H, W] images / masks to size (bilinear), keeping the leading dims."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(-1, 1, *x.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return y.reshape(*lead, *size)


def object_probability(images: Tensor, context: RewardContext, options: RewardOptions) -> Tensor:
    """Differentiable probability that each pixel shows the object.

    Args:
        images: ``[B, T, C, H, W]`` in [0, 1].
        context: with ``background`` (preferred: p = sigmoid((d - threshold) / softness), d the RMS colour
            distance to the plate, shifted and rescaled so that p = 0 where d = 0) or ``first_mask`` (a per-channel Gaussian colour model of object and
            background fitted on the conditioning frame; p = posterior of the object class).

    Returns:
        ``[B, T, H, W]`` in (0, 1).
    """
    h, w = images.shape[-2:]
    dtype, device = images.dtype, images.device
    if context.background is not None:
        plate = _resize(context.background.to(device=device, dtype=dtype), (h, w)).unsqueeze(1)
        # The small constant keeps sqrt differentiable where a pixel equals the plate exactly.
        dist = torch.sqrt(((images - plate) ** 2).mean(2) + 1e-8)
        # Shifted and rescaled so that a pixel equal to the plate is exactly 0: the plain sigmoid's floor,
        # summed over the whole background, would pull every centroid towards the image centre.
        floor = 1.0 / (1.0 + math.exp(options.mask_threshold / options.mask_softness))  # sigmoid(-t / s)
        raw = torch.sigmoid((dist - options.mask_threshold) / options.mask_softness)
        return ((raw - floor) / (1 - floor)).clamp_min(0)
    if context.first_mask is not None:
        first = _resize(context.first_frame.to(device=device, dtype=dtype), (h, w))
        m = _resize(context.first_mask.to(device=device, dtype=dtype), (h, w)).clamp(0, 1).unsqueeze(1)
        stats = []
        for weight in (m, 1.0 - m):
            n = weight.sum((-1, -2)).clamp_min(1.0)
            mean = (weight * first).sum((-1, -2)) / n
            var = (weight * (first - mean[..., None, None]) ** 2).sum((-1, -2)) / n
            # A floor on the spread: flat synthetic colours would otherwise make a knife-edge classifier.
            stats.append((mean, var.clamp_min(0.03**2)))
        (mo, vo), (mb, vb) = stats
        prior = m.mean((-1, -2)).clamp(1e-3, 1 - 1e-3)  # [B, 1]

        def loglik(mean: Tensor, var: Tensor) -> Tensor:
            mean, var = mean[:, None, :, None, None], var[:, None, :, None, None]
            return (-0.5 * (images - mean) ** 2 / var - 0.5 * torch.log(var)).sum(2)

        logit = loglik(mo, vo) - loglik(mb, vb) + torch.log(prior / (1 - prior))[:, :, None, None]
        return torch.sigmoid(logit)
    raise InvalidValueError(
        "the object terms (kinematic_track, mass, accel, kinematic with kinematic_masked) need context.background"
        " or context.first_mask to find the object"
    )


class _Batch:
    """Per-call cache: the soft masks are computed once and shared by every object term."""

    def __init__(self, frames: Tensor, context: RewardContext, options: RewardOptions):
        self.frames, self.context, self.options = frames, context, options
        self._cache: dict[str, Tensor] = {}

    def get(self, key: str, make: Callable[[], Tensor]) -> Tensor:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def prob(self) -> Tensor:
        return self.get("prob", lambda: object_probability(self.frames, self.context, self.options))

    @property
    def first(self) -> Tensor:
        """[B, 1, C, H, W] the conditioning frame at the generated resolution."""
        h, w = self.frames.shape[-2:]
        ff = self.context.first_frame.to(device=self.frames.device, dtype=self.frames.dtype)
        return self.get("first", lambda: _resize(ff, (h, w)).unsqueeze(1))

    @property
    def first_prob(self) -> Tensor:
        """[B, 1, H, W] the soft mask of the conditioning frame, by the same rule as the frames'."""
        return self.get("first_prob", lambda: object_probability(self.first, self.context, self.options))

    @property
    def presence(self) -> Tensor:
        """[B, T] object area relative to the conditioning frame's, clipped to [0, 1], no gradient."""

        def make() -> Tensor:
            with torch.no_grad():
                area0 = self.first_prob.sum((-1, -2)).clamp_min(1.0)  # pixels
                return (self.prob.sum((-1, -2)) / area0).clamp(0, 1)

        return self.get("presence", make)


# ---------------------------------------------------------------------------------------------------------
# Terms


class RewardTerm:
    """A penalty per sample: ``term(batch) -> Tensor[B]``, >= 0, lower is better, differentiable in frames."""

    def __init__(self, options: RewardOptions):
        self.options = options

    def __call__(self, batch: _Batch) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


REWARD_TERMS: Registry[type[RewardTerm]] = Registry("reward term")


@REWARD_TERMS.register("kinematic")
class KinematicTerm(RewardTerm):
    """The paper's constraint on optical flow, mean ||phi(t+1) - 2 phi(t) + phi(t-1)||^2, px^2/frame^6."""

    def __call__(self, batch: _Batch) -> Tensor:
        mask = batch.prob if self.options.kinematic_masked else None
        value = kinematic_residual(batch.frames, mask, flow=self.options.flow, **self.options.flow_kwargs())
        # A clip whose object vanished has no masked pixels: 0 here, the mass term penalises the loss.
        return torch.nan_to_num(value, nan=0.0)


@REWARD_TERMS.register("kinematic_track")
class KinematicTrackTerm(RewardTerm):
    """Third difference of the soft-mask centroid track, weighted by the object's presence; px^2/frame^6."""

    def __call__(self, batch: _Batch) -> Tensor:
        value = track_residual(soft_centroids(batch.prob), batch.presence)
        return torch.nan_to_num(value, nan=0.0)


def _mass_stats(batch: _Batch) -> Tensor:
    prob, first_prob = batch.prob, batch.first_prob
    area = prob.mean((-1, -2))  # [B, T] fraction of the image
    # At least one pixel: a conditioning frame without a visible object must not divide by ~0.
    area0 = first_prob.mean((-1, -2)).clamp_min(1.0 / (prob.shape[-1] * prob.shape[-2]))  # [B, 1]

    def colour(p: Tensor, images: Tensor) -> Tensor:
        return (p.unsqueeze(2) * images).sum((-1, -2)) / (p.sum((-1, -2)).unsqueeze(-1) + 1e-6)

    dc = colour(prob, batch.frames) - colour(first_prob, batch.first)  # [B, T, C]
    per_frame = ((area - area0) / area0) ** 2 + (dc**2).mean(-1)
    return per_frame.mean(1)


_VJEPA_CACHE: dict[tuple[str, str], torch.nn.Module] = {}


def load_vjepa2(path: str | Path, device: torch.device) -> torch.nn.Module:
    """A frozen V-JEPA 2 encoder from a local folder (``AutoModel.from_pretrained``), cached per path."""
    try:
        from transformers import AutoModel
    except ImportError as e:
        raise MissingDependencyError("transformers", "train", "the V-JEPA 2 mass reward") from e
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise InvalidValueError(f"vjepa2_path={str(folder)!r} is not a model folder (no config.json)")
    key = (str(folder.resolve()), str(device))
    if key not in _VJEPA_CACHE:
        log.info("loading V-JEPA 2 from %s", folder)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        if getattr(model.config, "model_type", None) != "vjepa2":
            raise InvalidValueError(
                f"vjepa2_path={str(folder)!r} holds a {model.config.model_type!r} model, not 'vjepa2'"
            )
        model.eval().requires_grad_(False)
        _VJEPA_CACHE[key] = model.to(device)
    return _VJEPA_CACHE[key]


def _vjepa_pooled(model: torch.nn.Module, clip: Tensor, prob: Tensor) -> Tensor:
    """Mask-pooled V-JEPA 2 embeddings: clip [B, T, C, H, W] in [0, 1], prob [B, T, H, W] -> [B, T', D]."""
    cfg = model.config
    b, t, c, h, w = clip.shape
    ts, size = cfg.tubelet_size, cfg.crop_size
    pad = (-t) % ts
    if pad:  # the encoder's tubelets need T divisible by tubelet_size: repeat the last frame
        clip = torch.cat([clip, clip[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
        prob = torch.cat([prob, prob[:, -1:].expand(-1, pad, -1, -1)], 1)
        t += pad
    x = _resize(clip, (size, size))
    mean = torch.tensor(IMAGENET_MEAN[:c], dtype=x.dtype, device=x.device).view(1, 1, c, 1, 1)
    std = torch.tensor(IMAGENET_STD[:c], dtype=x.dtype, device=x.device).view(1, 1, c, 1, 1)
    dtype = next(model.parameters()).dtype
    tokens = model(pixel_values_videos=((x - mean) / std).to(dtype), skip_predictor=True).last_hidden_state
    gp = size // cfg.patch_size
    tokens = tokens.to(clip.dtype).reshape(b, t // ts, gp, gp, -1)
    weight = F.adaptive_avg_pool2d(prob.reshape(b * t, 1, h, w), gp).reshape(b, t // ts, ts, gp, gp).mean(2)
    pooled = (weight.unsqueeze(-1) * tokens).sum((2, 3))
    # Normalised by the full grid, not by the weight: a vanished object pools to ~0, far from the reference.
    return pooled / (gp * gp)


def _mass_vjepa2(batch: _Batch, options: RewardOptions) -> Tensor:
    model = load_vjepa2(options.vjepa2_path, batch.frames.device)
    ts = model.config.tubelet_size
    gen = _vjepa_pooled(model, batch.frames, batch.prob)
    # The conditioning frame as a still tubelet: the appearance every later tubelet is held to.
    ref = _vjepa_pooled(
        model, batch.first.expand(-1, ts, -1, -1, -1), batch.first_prob.expand(-1, ts, -1, -1)
    )
    cos = F.cosine_similarity(gen, ref.expand_as(gen), dim=-1, eps=1e-6)
    return (1.0 - cos).mean(1)


@REWARD_TERMS.register("mass")
class MassTerm(RewardTerm):
    """Object appearance held constant relative to the conditioning frame (dimensionless, lower is better)."""

    def __call__(self, batch: _Batch) -> Tensor:
        if self.options.mass_backend == "vjepa2":
            return _mass_vjepa2(batch, self.options)
        return _mass_stats(batch)


def fit_acceleration(track: Tensor, weight: Tensor | None = None) -> Tensor:
    """Least-squares constant acceleration of a track: [B, T, 2] px (weights [B, T]) -> [B, 2] px/frame^2.

    Fits c(t) = c0 + v t + a t^2 / 2 by weighted least squares in closed form (differentiable in track).
    """
    b, t, _ = track.shape
    s = torch.arange(t, dtype=track.dtype, device=track.device) - (t - 1) / 2.0  # centred: well conditioned
    design = torch.stack((torch.ones_like(s), s, 0.5 * s * s), dim=-1)  # [T, 3]
    wgt = (
        torch.ones(b, t, dtype=track.dtype, device=track.device) if weight is None else weight.to(track.dtype)
    )
    gram = torch.einsum("bt,ti,tj->bij", wgt, design, design) + 1e-9 * torch.eye(
        3, dtype=track.dtype, device=track.device
    )
    rhs = torch.einsum("bt,ti,btk->bik", wgt, design, track)
    coef = torch.linalg.solve(gram, rhs)  # [B, 3, 2]
    return coef[:, 2]


@REWARD_TERMS.register("accel")
class AccelTerm(RewardTerm):
    """||a_gen - a_ref||^2 / (||a_ref||^2 + floor^2) on soft-mask centroid tracks; needs context.reference."""

    def __call__(self, batch: _Batch) -> Tensor:
        ref = batch.context.reference
        if ref is None:
            raise InvalidValueError(
                "reward term 'accel' needs context.reference (the bench's ground-truth clip [B, T, C, H, W])"
            )
        frames = batch.frames
        if ref.shape[1] != frames.shape[1]:
            raise InvalidValueError(
                f"context.reference has T={ref.shape[1]} frames; the generated clip has T={frames.shape[1]}"
            )
        ref = _resize(ref.to(device=frames.device, dtype=frames.dtype), tuple(frames.shape[-2:]))
        with torch.no_grad():
            ref_prob = object_probability(ref, batch.context, self.options)
            area0 = batch.first_prob.sum((-1, -2)).clamp_min(1.0)
            ref_presence = (ref_prob.sum((-1, -2)) / area0).clamp(0, 1)
            a_ref = fit_acceleration(soft_centroids(ref_prob), ref_presence)
        a_gen = fit_acceleration(soft_centroids(batch.prob), batch.presence)
        err = ((a_gen - a_ref) ** 2).sum(-1)
        return err / ((a_ref**2).sum(-1) + self.options.accel_floor**2)


# ---------------------------------------------------------------------------------------------------------
# The weighted sum


def parse_spec(spec: str) -> dict[str, float]:
    """``"kinematic=1,mass=0.5"`` -> {"kinematic": 1.0, "mass": 0.5}; a bare name has weight 1."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidValueError(
            f"reward spec={spec!r} is empty; expected name=weight,... e.g. 'kinematic=1,mass=0.5'"
        )
    weights: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise InvalidValueError(f"reward spec={spec!r} has an empty entry; expected name=weight,...")
        name, sep, raw = part.partition("=")
        name = name.strip()
        REWARD_TERMS.get(name)  # UnknownNameError with a did-you-mean
        if name in weights:
            raise InvalidValueError(f"reward term {name!r} appears twice in spec={spec!r}")
        try:
            weight = float(raw) if sep else 1.0
        except ValueError:
            raise InvalidValueError(
                f"reward weight {raw.strip()!r} of term {name!r} is not a number; allowed: a finite number >= 0"
            ) from None
        if not math.isfinite(weight) or weight < 0:
            raise InvalidValueError(
                f"reward weight {name}={raw.strip()} is out of range; allowed: a finite number >= 0"
            )
        weights[name] = weight
    return weights


@dataclass(frozen=True)
class Reward:
    """A weighted sum of penalty terms. ``reward(frames, context) -> RewardOutput``; lower is better."""

    weights: dict[str, float]
    options: RewardOptions = field(default_factory=RewardOptions)

    def __post_init__(self) -> None:
        if not self.weights:
            raise InvalidValueError("a reward needs at least one term")
        for name in self.weights:
            REWARD_TERMS.get(name)
        object.__setattr__(self, "_terms", {n: REWARD_TERMS.get(n)(self.options) for n in self.weights})

    @property
    def spec(self) -> str:
        return ",".join(f"{n}={w:g}" for n, w in self.weights.items())

    def __call__(self, frames: Tensor, context: RewardContext) -> RewardOutput:
        """Penalties for generated frames ``[B, T, C, H, W]`` in [0, 1] (T >= 4); differentiable in frames.

        Half-precision frames are evaluated in float32 (the result is float32; gradients flow back to the
        half-precision frames)."""
        if not isinstance(frames, torch.Tensor) or frames.ndim != 5 or not frames.is_floating_point():
            raise InvalidValueError(
                f"frames must be a float tensor [B, T, C, H, W] in [0, 1]; got {_shape(frames)}"
            )
        if frames.shape[1] < 4:
            raise InvalidValueError(f"rewards need at least 4 frames; got T={frames.shape[1]}")
        if not isinstance(context, RewardContext):
            raise InvalidValueError(f"context must be a RewardContext; got {type(context).__name__}")
        if context.batch_size != frames.shape[0]:
            raise InvalidValueError(
                f"context has B={context.batch_size} samples; frames have B={frames.shape[0]}"
            )
        if context.first_frame.shape[1] != frames.shape[2]:
            raise InvalidValueError(
                f"context.first_frame has {context.first_frame.shape[1]} channels; frames have {frames.shape[2]}"
            )
        if frames.dtype in (torch.float16, torch.bfloat16):
            # bf16 decodes (training on GPU): the flow's 2x2 solves and the centroid fits need float32.
            frames = frames.float()
        batch = _Batch(frames, context, self.options)
        terms = {name: term(batch) for name, term in self._terms.items()}
        total = sum(self.weights[n] * v for n, v in terms.items())
        return RewardOutput(total=total, terms=terms)


def build_reward(spec: str = "kinematic=1,mass=0.5", **options) -> Reward:
    """Build a reward from ``name=weight,...`` (terms: ``REWARD_TERMS.names()``) and :class:`RewardOptions`.

    The result is a PENALTY: ``reward(frames, context).total`` is >= 0 and lower is better; minimise it.
    Unknown term names raise UnknownNameError (with a did-you-mean); bad weights or options raise
    InvalidValueError naming the value.
    """
    known = {f.name for f in fields(RewardOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidValueError(
            f"unknown reward option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )
    return Reward(parse_spec(spec), RewardOptions(**options))

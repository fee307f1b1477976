"""Find the benchmark's object in every frame of a generated video, without downloaded weights.

What the benchmark knows is used as the prior: the clean background plate of the scene, the object's
first-frame mask and its appearance there. Three extractors:

- ``plate`` (default): foreground = pixels that differ from the clean plate, after undoing each
  frame's global colour / lighting drift (a per-channel gain and offset fitted robustly against the
  plate), gated by the object's first-frame colours (a pixel must look more like the object than
  like the plate, unless it differs from the plate by a lot); the object is the 8-connected
  component (fragments within 2 px joined) with the most pixels surviving a 3x3 erosion.
- ``self``: the same, with the background built from the generated video itself (per-pixel temporal
  median over the frames where the pixel does not look like the object), for models that do not
  keep the conditioning frame's scene exactly. An object that never moves is part of that background
  and is not found: use ``plate`` for such models.
- ``sam2``: SAM 2's video predictor seeded with the first-frame mask (``pip install
  'newtonbench[sam2]'`` and a local checkpoint). Prefer it when generated videos repaint the scene
  (camera motion, strong texture drift) so that no plate applies.

A frame whose object area is below ``min_area_ratio`` of the ground truth's first-frame area counts
as lost (never guessed); the scorer turns too many lost frames into a status.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from newtonbench.metrics.functional._util import dilate, erode
from newtonbench.metrics.functional.centroid import mask_centroids
from torch import Tensor

from newtonbench.errors import InvalidValueError, MissingDependencyError, check_range

log = logging.getLogger(__name__)

EXTRACTORS = ("plate", "self", "sam2")


@dataclass(frozen=True)
class ExtractConfig:
    mode: str = "plate"
    # Foreground: colour distance (L2 over RGB in [0, 1]) to the drift-corrected background above
    # max(threshold, noise_k * robust noise sigma of the frame).
    threshold: float = 0.04
    noise_k: float = 6.0
    # Beyond this distance a pixel is foreground whatever its colour (an object that changed colour).
    strong: float = 0.3
    min_area_ratio: float = 0.2
    min_area_px: int = 3
    palette_size: int = 64
    sam2_checkpoint: str | None = None
    sam2_config: str | None = None

    def __post_init__(self):
        if self.mode not in EXTRACTORS:
            raise InvalidValueError(f"extractor {self.mode!r}; allowed: {', '.join(EXTRACTORS)}")
        check_range("threshold", self.threshold, 0.0, 1.0, low_open=True)
        check_range("noise_k", self.noise_k, 0.0)
        check_range("strong", self.strong, self.threshold, 2.0)
        check_range("min_area_ratio", self.min_area_ratio, 0.0, 1.0)
        check_range("min_area_px", self.min_area_px, 1)
        check_range("palette_size", self.palette_size, 1, 4096)
        if self.mode == "sam2":
            if not self.sam2_checkpoint:
                raise InvalidValueError("extractor 'sam2' needs --sam2-checkpoint PATH (a local .pt file)")
            if not Path(self.sam2_checkpoint).is_file():
                raise InvalidValueError(f"sam2 checkpoint {self.sam2_checkpoint!r} does not exist; allowed: a local file")


@dataclass(frozen=True)
class Extraction:
    masks: Tensor  # bool [N, H, W], the object in each input frame
    centroids: Tensor  # [N, 2] (u, v) px, NaN where not valid
    valid: Tensor  # bool [N]: object found in that frame
    area: Tensor  # [N] pixels


def to_float_frames(frames: np.ndarray | Tensor, size: tuple[int, int], device: torch.device | str = "cpu") -> Tensor:
    """uint8 [N, h, w, 3] -> float [N, 3, H, W] in [0, 1] on the benchmark's pixel grid.

    Any resolution and aspect ratio maps onto the benchmark's image by scaling each axis
    (half-pixel-centre convention, antialiased when shrinking), so the pixel (u, v) of a generated
    frame lands on (u W / w, v H / h) up to the half-pixel offset.
    """
    # Convert in the decoder's [N, H, W, 3] layout and view it as [N, 3, H, W] (channels-last
    # strides): no transposing copy of the clip.
    x = torch.as_tensor(frames).to(device).to(torch.float32).div_(255.0).permute(0, 3, 1, 2)
    h, w = size
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return x


def _drift_fit(frames: Tensor, bg: Tensor, iters: int = 2, stride: int = 4) -> tuple[Tensor, Tensor]:
    """Per-frame, per-channel gain/offset drift: fit frame = g bg + o on background pixels.

    Returns (g, o), each [N, C, 1, 1]. The fit runs on every `stride`-th pixel in each direction
    (thousands of pixels fix two numbers per channel).
    """
    n, c = frames.shape[:2]
    f = frames[..., ::stride, ::stride].reshape(n, c, -1)
    b = bg[..., ::stride, ::stride].reshape(1, c, -1).expand_as(f)
    w = torch.ones_like(f[:, :1])
    g = torch.ones(n, c, 1, dtype=f.dtype, device=f.device)
    o = torch.zeros_like(g)
    for _ in range(iters):
        sw = w.sum(-1, keepdim=True).clamp_min(1)
        mf = (w * f).sum(-1, keepdim=True) / sw
        mb = (w * b).sum(-1, keepdim=True) / sw
        var = (w * (b - mb) ** 2).sum(-1, keepdim=True) / sw
        cov = (w * (b - mb) * (f - mf)).sum(-1, keepdim=True) / sw
        # A flat background cannot separate gain from offset: fit the offset alone there.
        g = torch.where(var > 1e-4, cov / var.clamp_min(1e-4), torch.ones_like(var)).clamp(0.5, 2.0)
        o = mf - g * mb
        d = ((f - o) / g - b).square().sum(1, keepdim=True).sqrt()
        sigma = 1.4826 * d.median(-1, keepdim=True).values
        # The object (and anything else that moved) drops out of the next fit.
        w = (d <= torch.maximum(3 * sigma, torch.full_like(sigma, 0.03))).to(f.dtype)
    return g.unsqueeze(-1), o.unsqueeze(-1)


def _drift_correct(frames: Tensor, bg: Tensor) -> Tensor:
    """Frames mapped into the background's colour space: (frame - o) / g."""
    g, o = _drift_fit(frames, bg)
    return (frames - o).div_(g)


def _object_components(cand: np.ndarray) -> np.ndarray:
    """[N, H, W] bool candidates -> per frame, the 8-connected component of the dilated candidates
    with the most pixels that survive a 3x3 erosion (ties: the largest), as a mask.

    The frames are stacked into one tall image with an empty row between them, so that OpenCV's
    morphology and one connectedComponentsWithStats call handle the whole clip; the separator rows
    are cleared after the dilation, so components never join across frames.
    """
    import cv2

    n, h, w = cand.shape
    tall = np.zeros((n, h + 1, w), np.uint8)
    tall[:, :h] = cand
    flat = tall.reshape(n * (h + 1), w)
    kernel = np.ones((3, 3), np.uint8)
    core = cv2.erode(flat, kernel).astype(bool)
    grown = cv2.dilate(flat, kernel).reshape(n, h + 1, w)
    grown[:, h] = 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown.reshape(n * (h + 1), w), connectivity=8)
    if count <= 1:
        return np.zeros_like(cand)
    area = stats[1:, cv2.CC_STAT_AREA]
    frame = stats[1:, cv2.CC_STAT_TOP] // (h + 1)
    weight = np.bincount(labels[core], minlength=count)[1:]
    order = np.lexsort((-area, -weight, frame))  # by frame, most core pixels first, then largest
    first = np.r_[True, frame[order][1:] != frame[order][:-1]]
    keep = np.zeros(count, bool)
    keep[order[first] + 1] = True
    return keep[labels].reshape(n, h + 1, w)[:, :h]


def _palette(image: Tensor, mask: Tensor, k: int) -> Tensor:
    """Up to k colours of the object ([k, 3]), evenly sampled from its eroded mask."""
    core = erode(mask)
    if int(core.sum()) < 4:
        core = mask
    cols = image[:, core].T  # [M, 3]
    if cols.shape[0] > k:
        cols = cols[torch.linspace(0, cols.shape[0] - 1, k, device=cols.device).long()]
    return cols


def extract(frames: Tensor, first_mask: Tensor, first_frame: Tensor | None = None,
            background: Tensor | None = None, config: ExtractConfig = ExtractConfig()) -> Extraction:
    """Object masks in `frames` (float [N, 3, H, W], benchmark pixel grid, frame 0 = t 0).

    first_mask: bool [H, W], the ground truth's first-frame object mask; first_frame: float
    [3, H, W] the benchmark's first frame; background: float [3, H, W] the clean plate (plate mode).
    """
    if config.mode == "sam2":
        masks = _sam2_masks(frames, first_mask, config)
    else:
        masks = _plate_masks(frames, first_mask, first_frame, background, config)
    area = masks.sum((-2, -1))
    ref = float(first_mask.sum())
    valid = area >= max(config.min_area_px, config.min_area_ratio * ref)
    masks = masks & valid[:, None, None]
    centroids, _ = mask_centroids(masks)
    return Extraction(masks, centroids, valid, area)


def _self_background(frames: Tensor, first_mask: Tensor, first_frame: Tensor | None, colours: int = 16,
                     near: float = 0.12) -> Tensor:
    """The scene without the object, from the generated video itself: per pixel, the temporal
    median over the frames where that pixel does not look like the object (its colour is farther
    than `near` from all of `colours` object colours sampled in the benchmark's first frame: the
    generated one may show the object elsewhere, and its colours there would be the scene's).

    A plain temporal median fails where the object rests for most of the clip (a landed ball):
    the object would become background there, and the falling object's mask would be cut as it
    arrives. Pixels that look like the object in every frame fall back to the plain median.
    """
    n, c, h, w = frames.shape
    source = first_frame.to(frames) if first_frame is not None else frames[0]
    pal = _palette(source, first_mask.to(torch.bool).to(frames.device), colours)
    if pal.shape[0] == 0:
        return frames.median(0).values
    dist = torch.cdist(frames.permute(0, 2, 3, 1).reshape(1, -1, c), pal[None]).amin(-1).reshape(n, 1, h, w)
    masked = frames.masked_fill(dist < near, float("nan"))
    bg = torch.nanmedian(masked, 0).values
    return torch.where(torch.isnan(bg), frames.median(0).values, bg)


def _plate_masks(frames: Tensor, first_mask: Tensor, first_frame: Tensor | None, background: Tensor | None,
                 config: ExtractConfig) -> Tensor:
    if config.mode == "plate":
        if background is None:
            raise InvalidValueError("extractor 'plate' needs the clip's background plate; allowed: --extractor self")
        bg = background.to(frames)
    else:
        bg = _self_background(frames, first_mask, first_frame)
    # diff = (frame - o) / g - bg, the drift-corrected difference, in place: every full-size
    # allocation of a clip costs page faults, which dominated this step.
    g, o = _drift_fit(frames, bg)
    diff = (frames - o).div_(g).sub_(bg)
    d = torch.linalg.vector_norm(diff, dim=1)  # [N, H, W]
    sigma = 1.4826 * d[:, ::4, ::4].flatten(1).median(-1).values
    thr = torch.clamp(config.noise_k * sigma, min=config.threshold)[:, None, None]
    cand = d > thr
    # The object's colours: from the benchmark's first frame (the generated first frame may show the
    # object elsewhere; small colour drift between the two is what `strong` and the gate tolerate).
    fm = first_mask.to(torch.bool).to(frames.device)
    source = first_frame.to(frames) if first_frame is not None else diff[0] + bg
    pal = _palette(source, fm, config.palette_size)
    if pal.shape[0]:
        k, y, x = cand.nonzero(as_tuple=True)
        pix = diff[k, :, y, x] + bg[:, y, x].T  # [M, 3] corrected colours of the candidates
        d_here = d[k, y, x]
        d_obj = torch.cdist(pix, pal).amin(-1) if pix.shape[0] else pix.new_zeros(0)
        keep = (d_obj < d_here) | (d_here > config.strong)
        cand = torch.zeros_like(cand)
        cand[k[keep], y[keep], x[keep]] = True
    # An object that resembles the scene behind it (a yellow ball on a brown floor) breaks into
    # fragments: components are taken on the dilated mask, so fragments within 2 px join. The
    # object is the component with the most pixels that survive a 3x3 erosion: a sharp edge of the
    # scene that the video codec smeared (a 1-px line across the image) has none, however long.
    # Components only where candidates are (a clean video's candidates are the object alone).
    obj = torch.zeros_like(cand)
    rows, cols = cand.any(0).any(1).nonzero().flatten(), cand.any(0).any(0).nonzero().flatten()
    if len(rows):
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        sub = cand[:, y0:y1, x0:x1]
        comp = torch.from_numpy(_object_components(sub.cpu().numpy())).to(frames.device)
        obj[:, y0:y1, x0:x1] = sub & comp
    # Within the region the object visits: keeping only pixels within 2 px of the object's body
    # (its 3x3-eroded core) drops 1-2 px threads that joined the object
    # (a ramp's edge, smeared differently by the codec in video and plate, touches a sliding box);
    # a closing then fills 1-px holes and notches where the object's texture matches the scene.
    rows, cols = obj.any(0).any(1).nonzero().flatten(), obj.any(0).any(0).nonzero().flatten()
    if len(rows):
        h, w = obj.shape[-2:]
        y0, y1 = max(0, int(rows[0]) - 2), min(h, int(rows[-1]) + 3)
        x0, x1 = max(0, int(cols[0]) - 2), min(w, int(cols[-1]) + 3)
        roi = obj[:, y0:y1, x0:x1]
        opened = dilate(erode(roi), 5) & roi  # pixels within 2 px of the object's body
        obj[:, y0:y1, x0:x1] = erode(dilate(opened)) | opened
    return obj


def _sam2_masks(frames: Tensor, first_mask: Tensor, config: ExtractConfig) -> Tensor:
    """SAM 2 video predictor seeded with the ground truth's first-frame mask (local weights only)."""
    try:
        from sam2.build_sam import build_sam2_video_predictor
    except ImportError:
        raise MissingDependencyError("sam2", "sam2", "the SAM 2 extractor") from None
    import cv2

    device = frames.device
    cfg = config.sam2_config or "configs/sam2.1/sam2.1_hiera_l.yaml"
    predictor = build_sam2_video_predictor(cfg, config.sam2_checkpoint, device=device)
    n = frames.shape[0]
    out = torch.zeros(n, *frames.shape[-2:], dtype=torch.bool, device=device)
    with tempfile.TemporaryDirectory(prefix="newtonbench-sam2-") as tmp:
        # SAM 2's predictor reads a folder of JPEG frames named by index.
        rgb = (frames.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        for i in range(n):
            cv2.imwrite(str(Path(tmp) / f"{i:05d}.jpg"), cv2.cvtColor(rgb[i], cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
        with torch.inference_mode():
            state = predictor.init_state(video_path=tmp)
            predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=first_mask.to(torch.bool).cpu())
            for idx, _, logits in predictor.propagate_in_video(state):
                out[idx] = (logits[0, 0] > 0).to(device)
    return out

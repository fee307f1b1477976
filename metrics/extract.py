"""Find the benchmark's object in every frame of a generated video, without downloaded weights.

What the benchmark knows is used as the prior: the clean background plate of the scene, the object's
first-frame mask and its appearance there. Three extractors:

- ``plate`` (default): foreground = pixels that differ from the clean plate, after undoing each
  frame's global colour / lighting drift (a per-channel gain and offset fitted robustly against the
  plate), gated by the object's first-frame colours (a pixel must look more like the object than
  like the plate, unless it differs from the plate by a lot); the object is the 8-connected
  component (fragments within 2 px joined) with the most pixels surviving a 3x3 erosion. A
  global colour transform beyond per-channel gains and offsets (swapped channels, saturation)
  is undone first, on the plate, which is also blurred to match frames softer than it; frames
  far noisier than video codecs make them (a GIF dithered onto a fixed palette) are low-passed
  first, with the plate.
- ``self``: the same, with the background built from the generated video itself (per pixel, the
  mean of a run of frames over which its colour holds still: the last inside the object's
  first-frame region, the earliest elsewhere; see `_self_background`), for models that do not keep
  the conditioning frame's scene exactly. Where the object never left its first footprint (a frozen
  object), the scene behind it is filled in from the scene around it, so it is still found.
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
from torch import Tensor

from newtonbench.errors import InvalidValueError, MissingDependencyError, check_range
from newtonbench.metrics import extract_kernels
from newtonbench.metrics.functional._util import (
    as_float,
    channels_last,
    dilate,
    mask_bytes,
    value_unit,
)
from newtonbench.metrics.functional.mask_kernels import centroids, moments

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
    # Frames noisier than this (their median robust noise level sigma) are low-passed, with the
    # plate, by a Gaussian of `smooth_px` before the foreground test (see `_plate_masks`).
    smooth_above: float = 0.02
    smooth_px: float = 1.0
    # A plate-to-video colour transform beyond per-channel gain and offset is undone when it moves
    # the plate's colours by more than this (RMS; see `_colour_map`).
    colour_map_above: float = 0.012
    # The plate is softened to match frames whose edges a 0.7-px blur of it predicts this many
    # times better than itself (see `_softness`).
    soft_ratio: float = 0.5
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
        check_range("smooth_above", self.smooth_above, 0.0, low_open=True)
        check_range("smooth_px", self.smooth_px, 0.0, 8.0, low_open=True)
        check_range("colour_map_above", self.colour_map_above, 0.0)
        check_range("soft_ratio", self.soft_ratio, 0.0, 1.0)
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
    """The object in each input frame, kept as one window per frame (the masks are small next to
    the frame: `masks` or `crop` place them on the image when asked)."""

    windows: np.ndarray  # uint8 [N, a, b] (0/1): the object inside frame k's window, empty where not valid
    y0: np.ndarray  # int64 [N]: the windows' top-left corners
    x0: np.ndarray
    size: tuple[int, int]  # the frames' (H, W)
    centroids: Tensor  # [N, 2] (u, v) px, NaN where not valid
    valid: Tensor  # bool [N]: object found in that frame
    area: Tensor  # [N] pixels
    boxes: Tensor  # long [N, 4]: (y0, y1, x0, x1) of each mask, (0, 0, 0, 0) when empty

    def crop(self, region: tuple[int, int, int, int] | None = None, frames=None) -> Tensor:
        """bool [len(frames), y1 - y0, x1 - x0]: the masks of `frames` (indices; default all) on
        `region` (y0, y1, x0, x1) of the image (default the whole image), on the extraction's device."""
        h, w = self.size
        return place_masks(self.windows, self.y0, self.x0, region or (0, h, 0, w), frames).to(self.valid.device)

    @property
    def masks(self) -> Tensor:
        """bool [N, H, W]: the object in each input frame."""
        return self.crop()


def place_masks(windows: np.ndarray, y0, x0, region: tuple[int, int, int, int], frames=None) -> Tensor:
    """Masks kept in windows (uint8 0/1 [N, a, b], frame k's window at (y0[k], x0[k]); a corner
    shared by every frame may be given as one number) placed on `region` (y0, y1, x0, x1) of the
    image for the frames `frames` (indices; default all): bool [len(frames), y1 - y0, x1 - x0] on
    the CPU. The extractor's per-frame windows and the ground truth's box over all frames are both
    placed this way. One slice copy per frame of the window's overlap with the region (measured:
    faster than a compiled loop over the pixels)."""
    n, a, b = windows.shape
    picks = range(n) if frames is None else np.asarray(torch.as_tensor(frames).cpu(), np.int64).tolist()
    y0, x0 = (np.broadcast_to(np.asarray(c, np.int64), (n,)).tolist() for c in (y0, x0))
    ry0, ry1, rx0, rx1 = region
    out = np.zeros((len(picks), ry1 - ry0, rx1 - rx0), np.uint8)
    for i, k in enumerate(picks):
        ya, yb, xa, xb = max(y0[k], ry0), min(y0[k] + a, ry1), max(x0[k], rx0), min(x0[k] + b, rx1)
        if ya < yb and xa < xb:
            out[i, ya - ry0:yb - ry0, xa - rx0:xb - rx0] = windows[k, ya - y0[k]:yb - y0[k], xa - x0[k]:xb - x0[k]]
    return torch.from_numpy(out.view(np.bool_))


def _drift_fit(frames: Tensor, bg: Tensor, iters: int = 2, samples: int = 2048) -> tuple[Tensor, Tensor, Tensor]:
    """Per-frame, per-channel gain/offset drift, frame = g bg + o fitted on background pixels, and
    the frames' robust noise level after the correction (1.4826 x the median corrected colour
    distance to the background over the same pixels).

    Returns g, o ([N, C, 1, 1]) and sigma ([N]), float32 on the CPU. The fit reads every k-th row
    and column, k the largest stride that keeps at least `samples` pixels (2,704 at 256x256; every
    pixel of a small image): a thousand pixels fix two numbers per channel, and a median, to well
    under the threshold's resolution. Iteratively reweighted: the object (and anything else that
    moved) drops out of the next pass (see `extract_kernels.drift_fit`).
    """
    n, c, h, w = frames.shape
    g, o, sigma = extract_kernels.drift_fit(channels_last(frames), channels_last(bg), value_unit(frames),
                                            _grid_stride(h, w, samples), iters, 0.03)
    g, o = (torch.from_numpy(v).to(torch.float32).reshape(n, c, 1, 1) for v in (g, o))
    return g, o, torch.from_numpy(sigma).to(torch.float32)


def _grid_stride(h: int, w: int, samples: int) -> int:
    """The largest stride k that keeps at least `samples` pixels of an h x w image on the grid of
    every k-th row and column (1 for a small image): the drift fit's grid, and the colour map's."""
    return max(1, int((h * w / samples) ** 0.5))


def _u8_image(image: Tensor) -> np.ndarray:
    """An image [3, H, W] (uint8, or float in [0, 1]) as OpenCV takes it: uint8 [H, W, 3], C-contiguous."""
    x = channels_last(image)
    return np.ascontiguousarray(x if x.dtype == np.uint8 else (np.clip(x, 0, 1) * 255).round().astype(np.uint8))


def _grid(image: Tensor, stride: int, which: list[int] | None = None) -> np.ndarray:
    """The colours of an image [3, H, W], or of frames `which` of [N, 3, H, W], on the grid of every
    `stride`-th row and column (as the drift fit samples): float64 [M, 3] or [len(which), M, 3] in
    [0, 1], contiguous (as `extract_kernels.colour_fit` takes them). Sampled from a channels-last
    view of the images as they are: no copy, no conversion of the rest."""
    x = channels_last(image)
    x = x[::stride, ::stride] if which is None else x[which, ::stride, ::stride]
    return np.ascontiguousarray(x.reshape(*x.shape[:-3], -1, 3) / value_unit(image), np.float64)


def _cross_channel(frames: Tensor, plate: Tensor, gain, offset, samples: int = 2048) -> float:
    """How far the colours of the clip's middle frame are from the per-channel gains and offsets
    that the drift fit found for it (`gain`, `offset` [3]): the RMS difference, over a grid of
    about `samples` pixels, between the colours that its robust full affine colour map
    (`extract_kernels.colour_fit`, two passes, as the drift fit) and those predict from the
    plate. 0.2 ms a clip on one thread."""
    stride = _grid_stride(*frames.shape[-2:], samples)
    b = _grid(plate, stride)
    d = extract_kernels.colour_fit(_grid(frames, stride, [frames.shape[0] // 2])[0], b, 2, 0.03)
    d[[0, 1, 2], [0, 1, 2]] -= np.asarray(gain, np.float64).reshape(3)
    d[3] -= np.asarray(offset, np.float64).reshape(3)
    return float(np.sqrt(np.square(b @ d[:3] + d[3]).sum(1).mean()))


def _colour_map(frames: Tensor, plate: Tensor, gain, offset, above: float, samples: int = 2048):
    """The one affine colour transform (3x3 and an offset) from the plate to the clip's colours,
    as a function of an image [3, H, W] (`_mapped`), fitted robustly on the first, middle and last
    frames at once; None where, on the middle frame, it is within `above` (RMS) of the
    per-channel gain and offset (`gain`, `offset` [3]) that the drift fit found, and undoes,
    there (`_cross_channel`).

    Measured (`_cross_channel`, 10-40 clips each): at most 0.007 on the bench's own clips, 0.011
    on re-encodes at 832x480 or 1080p, 0.004 on VP9 and adaptive-palette GIFs, 0.008 on dithered
    GIFs, 0.013 and 0.021 at H.264 CRF 30 and 40; with swapped channels median 0.041 (up to
    0.14), grey 0.020, half saturation 0.010, 1.5x saturation 0.009."""
    if _cross_channel(frames, plate, gain, offset, samples) <= above:
        return None
    n = frames.shape[0]
    stride = _grid_stride(*frames.shape[-2:], samples)
    f = _grid(frames, stride, sorted({0, n // 2, n - 1}))
    full = extract_kernels.colour_fit(f.reshape(-1, 3), np.tile(_grid(plate, stride), (len(f), 1)), 3, 0.03)
    return lambda image: _mapped(image, full)


def _mapped(image: Tensor, full: np.ndarray) -> Tensor:
    """image [3, H, W] through the affine colour map `full` ([4, 3]: y = [x, 1] @ full), float32 in [0, 1]."""
    y = channels_last(as_float(image, torch.float32)).astype(np.float64) @ full[:3] + full[3]
    return torch.from_numpy(np.clip(y, 0.0, 1.0).astype(np.float32)).movedim(-1, -3)


def _in_scene_colours(image: Tensor, scene: Tensor, away: np.ndarray, above: float, samples: int = 2048):
    """`self`'s `_colour_map`: the affine colour map that takes the benchmark's first frame `image`
    [3, H, W] into the colours of `scene` [3, H, W] (the background `self` builds from the video),
    as a function of an image (`_mapped`), fitted robustly on a grid of their pixels outside
    `away` (bool [H, W]: the object's first-frame mask, grown) by `extract_kernels.colour_fit`;
    None where, on those pixels, its colours are within `above` (RMS) of the per-channel affine
    map closest to them (least squares: no drift is fitted between the two images). At most
    0.0064 on the bench's own clips, median 0.031 with channels swapped. (With the object's pixels
    kept, the bench's own clips gave a median of 0.021: the object spoils the test.)"""
    stride = _grid_stride(*away.shape, samples)
    keep = ~away[::stride, ::stride].reshape(-1)
    b, f = _grid(image, stride)[keep], _grid(scene, stride)[keep]
    full = extract_kernels.colour_fit(f, b, 3, 0.03)
    y = b @ full[:3] + full[3]
    db, dy = b - b.mean(0), y - y.mean(0)
    per = y.mean(0) + db * ((db * dy).sum(0) / np.maximum((db * db).sum(0), 1e-12))
    if float(np.sqrt(np.square(y - per).sum(1).mean())) <= above:
        return None
    return lambda x: _mapped(x, full)


def _match_to_video(softness, colour_map, apply) -> None:
    """The order in which both extractors take the benchmark's sharp, true-colour images to a
    video's softness and colours. `softness()` measures the blur (px, 0: none; `_softness`),
    `colour_map()` the colour transform (a function of an image, or None), and `apply(fn)`
    transforms the images with `fn` (and refits what depends on them).

    Softness first: a blur shifts the robust 3x3 colour fit the colour test reads away from the
    per-channel one, so on soft clips in the scene's own colours it fired (45 clips blurred by
    1.5, 2, 2.5, 3 px, `plate`: 4, 9, 15, 19 times), and the map it took made things worse. In
    this order it fires 0, 0, 0, 2 times, and l2 over 2 px: 0, 2, 1, 3 -> 0 (mean 0.40, 0.56,
    1.15, 1.03 -> 0.40, 0.48, 0.59, 0.68 px; a ramp clip at 2.5 px: 22 -> 0.64); desaturated and
    blurred by 2 px: 3 -> 0. Under a colour transform the per-channel drift predicts the images'
    edges no better blurred than sharp, so where a map is taken and no blur was found, the
    softness is measured again in the video's colours (the map and a blur commute: both are
    linear): with channels swapped and a 1.5-px blur, 3 of 45 clips over 2 px without that, none
    with it."""
    soft = softness()
    if soft:
        apply(lambda x: _smooth(x, soft))
    mapped = colour_map()
    if mapped is not None:
        apply(mapped)
        if not soft and (soft := softness()):
            apply(lambda x: _smooth(x, soft))


def _first_frame_as_video(first_frame: Tensor, scene: Tensor, first_mask: Tensor, config: ExtractConfig) -> Tensor:
    """`self`: the benchmark's first frame, whose object colours the gate looks for, taken to the
    video's softness and colours as `plate` takes its plate (`_match_to_video`), against the
    background `scene` [3, H, W] built from the video (in its colours and sharpness), away from
    the object (`first_mask` grown by 2 px), with no drift between the two.

    Measured on 45 clips with perfect motion, l2 over 2 px: blurred by 1, 1.5, 2, 2.5, 3 px: 1, 4,
    4, 5, 6 -> 0, 0, 0, 0, 1; channels swapped 3 -> 0, swapped and blurred by 1.5 px 7 -> 0; grey
    23 -> 13; half saturation 9 -> 8, and blurred by 2 px 15 -> 1; the clips as they are unchanged."""
    away = dilate(first_mask, 5).numpy()
    one, zero = np.ones(3), np.zeros(3)
    image = first_frame

    def apply(fn):
        nonlocal image
        image = fn(image)

    _match_to_video(lambda: _softness(scene[None], image, one, zero, ratio=config.soft_ratio, ignore=away),
                    lambda: _in_scene_colours(image, scene, away, config.colour_map_above), apply)
    return image


_BLURS = (0.0, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8)  # px: the Gaussians a plate may be softened by


def _softness(frames: Tensor, plate: Tensor, gain, offset, ratio: float = 0.5,
              samples: int = 2048, edge: int = 8, ignore: np.ndarray | None = None) -> float:
    """How much softer than the plate the clip's middle frame is: the sigma (px, one of `_BLURS`)
    of the Gaussian that, applied to the plate, best predicts the frame at the plate's edges (up
    to `samples` pixels, evenly taken from those whose grey level steps by more than `edge` within
    their 2x2 block: OpenCV's morphological gradient), by the median squared colour error with the
    frame's drift (`gain`, `offset` [3]: frame = gain plate + offset) applied to the plate.
    0 where the plate blurred by 0.7 px does not predict them `ratio` times better than the plate
    itself (measured, that error's ratio: 2-5000 on the bench's own clips, and one at 0.39; at
    most 0.22 for frames blurred by 1 px, 0.42 by 1.5 px, 0.58 by 2.5; a 0.5-px blur mostly
    stays above it, and matters little), or where the plate has under 50 edge pixels (nothing
    for softness to change). Otherwise the best sigma from 0.7 up the ladder, or down, while the
    error falls. 0.27 ms a clip on one thread."""
    import cv2

    n = frames.shape[0]
    pl = _u8_image(plate)
    step = cv2.morphologyEx(cv2.cvtColor(pl, cv2.COLOR_RGB2GRAY), cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8))
    at = np.flatnonzero((step > edge) & (True if ignore is None else ~ignore))
    if len(at) < 50:
        return 0.0
    at = at[:: max(1, len(at) // samples)]
    f = channels_last(frames)[n // 2].reshape(-1, 3)[at].astype(np.float64) / value_unit(frames)
    gain, offset = (np.asarray(x, np.float64).reshape(3) for x in (gain, offset))

    def error(s: float) -> float:
        q = (cv2.GaussianBlur(pl, (0, 0), s) if s else pl).reshape(-1, 3)[at].astype(np.float64) / 255
        return float(np.median(np.square(f - (q * gain + offset)).sum(1)))

    sharp = error(0.0)
    best, best_err = 0.7, error(0.7)
    if best_err >= ratio * sharp:
        return 0.0
    i = _BLURS.index(best)
    for j in (range(i + 1, len(_BLURS)), range(i - 1, 0, -1)):
        for k in j:
            e = error(_BLURS[k])
            if e >= best_err:
                break
            best, best_err = _BLURS[k], e
        if best != 0.7:
            break
    return best


def _palette(image: Tensor, mask: Tensor, k: int) -> Tensor:
    """Up to k colours of the object ([k, 3], float in [0, 1]), evenly sampled in raster order from
    its 3x3-eroded mask (the whole mask where the erosion leaves fewer than 4 pixels)."""
    import cv2

    m = mask_bytes(mask)[0]
    # OpenCV's erosion counts outside the image as set, as `erode` does: one call on bytes instead
    # of a dozen tensor ops
    core = cv2.erode(m, np.ones((3, 3), np.uint8))
    if np.count_nonzero(core) < 4:
        core = m
    cols = channels_last(image)[core.view(np.bool_)]  # [M, 3], raster order
    if len(cols) > k:
        cols = cols[torch.linspace(0, len(cols) - 1, k).long().numpy()]
    return as_float(torch.from_numpy(np.ascontiguousarray(cols)))


def extract(frames: Tensor, first_mask: Tensor, first_frame: Tensor | None = None,
            background: Tensor | None = None, config: ExtractConfig = ExtractConfig()) -> Extraction:
    """Object masks in `frames` ([N, 3, H, W] on the benchmark pixel grid, frame 0 = t 0: float in
    [0, 1], or uint8 as `bench_grid_frames` returns it, converted only where read).

    first_mask: bool [H, W], the ground truth's first-frame object mask; first_frame: [3, H, W]
    the benchmark's first frame; background: [3, H, W] the clean plate (plate mode). Images are
    float in [0, 1], or uint8.
    """
    n, _, h, w = frames.shape
    if config.mode == "sam2":
        win, y0, x0 = mask_bytes(_sam2_masks(as_float(frames), first_mask, config)), [0] * n, [0] * n
    else:
        # The object's pixels in one window per frame (top-left corners y0, x0): areas and
        # centroids are read there, not over the whole frame. On the CPU, whatever the frames'
        # device: the work is compiled per-pixel loops, beside the decoder that made the frames.
        cpu = [None if x is None else x.cpu() for x in (frames, first_mask, first_frame, background)]
        win, y0, x0 = _plate_masks(*cpu, config)
    min_area = max(config.min_area_px, config.min_area_ratio * float(first_mask.sum()))
    y0, x0 = np.asarray(y0, np.int64), np.asarray(x0, np.int64)
    out = _measure_windows(win, y0, x0, float(min_area))
    centroids, valid, area, boxes = (torch.from_numpy(x).to(frames.device) for x in out)
    return Extraction(win, y0, x0, (h, w), centroids, valid, area, boxes)


def _measure_windows(win: np.ndarray, y0: np.ndarray, x0: np.ndarray, min_area: float):
    """The object masks in their windows (uint8 [N, a, b], frame k's at (y0[k], x0[k])) ->
    centroids float32 [N, 2] (u, v), valid [N], area [N], boxes [N, 4], in image coordinates, from
    the masks' compiled moments (one pass over each window's box, `mask_kernels.moments`).

    A frame is valid when its area >= min_area; an invalid frame's window is cleared in place (its
    centroid NaN, its box zeros). Centroids are the integer sums over the area in float32, plus the
    window's offset, as `mask_centroids`."""
    mom = moments(win)  # (area, sum x, sum y, y0, y1, x0, x1) per window
    area = mom[:, 0]
    valid = area >= min_area
    win[~valid] = 0
    cent = centroids(mom, np.float32)[0] + np.stack([x0, y0], 1).astype(np.float32)
    cent[~valid] = np.nan
    boxes = np.where(valid[:, None], mom[:, 3:] + np.stack([y0, y0, x0, x0], 1), 0)
    return cent, valid, area, boxes


def _self_background(frames: Tensor, first_mask: Tensor, stable: float = 0.06, min_run: int = 3,
                     hidden_share: float = 0.75) -> Tensor:
    """The scene without the object, from the generated video itself.

    Per pixel, the frames fall into runs over which its colour holds still (each frame within
    `stable` of the one before, after removing each frame's mean colour, so that global flicker
    does not break runs). The background is the mean of one run that counts:

    - inside the object's first-frame region (the benchmark's first mask, grown by 2 px), the
      last run of at least `min_run` frames: the object sits there at the start and moves away
      (slowly, on a ramp);
    - elsewhere, the earliest run of at least `min_run` frames or the clip's opening run: the
      scene is there before the object arrives, and an object that lands stays until the end (a
      temporal median would take it for the scene).

    Pixels without such a run (local flicker) take the plain temporal median. Pixels of the object's
    first-frame mask whose run starts at frame 0 never changed; when they are at least
    `hidden_share` of the mask, the object never left its first footprint (an object that never
    moves, the failure the benchmark exists to catch, or a plain one that creeps by less than a
    quarter of its size): the video shows nothing of the scene behind them, so they are filled in
    from the scene around them (OpenCV's Telea inpainting) instead of taking the object's own
    colour. With fewer, the object left, and its unchanged pixels are parts coloured like the scene
    behind them: their runs are kept. An object that moves by less than its size but more than a
    quarter of it keeps the footprint it never leaves in the background: `plate` is exact in that
    case.
    """
    # Per pixel, a scan over its frames: one compiled loop over the clip, on the frames as decoded
    # (as whole-frame torch ops on float frames it took 33 ms a 256x256x32 clip on one thread,
    # against 3 ms; 80 clips with the `self` extractor scored in 0.76-0.81 s instead of 2.8-2.9 s).
    fm = first_mask.to(torch.bool)
    region = dilate(fm, 5).contiguous().numpy()
    bg, opening, none = extract_kernels.self_background(channels_last(frames), region, value_unit(frames),
                                                        stable, min_run)
    bg = torch.from_numpy(bg).permute(2, 0, 1)  # a view of the kernel's [H, W, 3]
    opening, none = torch.from_numpy(opening), torch.from_numpy(none)
    hidden = fm & opening & ~none
    # Unchanged is not always unseen: where the object's colour matches the scene behind it, a pixel
    # stays still as the object leaves, and its run is mostly scene. An object that never left
    # its first footprint leaves (almost) all of it unchanged: then those pixels are filled in.
    if int(hidden.sum()) >= hidden_share * int(fm.sum()) > 0:
        bg = _fill_in(bg, hidden)
    return bg


def _smooth(images: Tensor, sigma: float) -> Tensor:
    """CPU images [..., 3, H, W] (uint8, or float) low-passed one by one by a Gaussian of `sigma` px
    (OpenCV's, edges reflected), of the same type, as channels-first views of [..., H, W, 3]."""
    import cv2

    x = channels_last(images)
    flat = x.reshape(-1, *x.shape[-3:])
    out = np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in flat]).reshape(x.shape)
    return torch.from_numpy(out).movedim(-1, -3)


def _fill_in(image: Tensor, hole: Tensor, radius: int = 3) -> Tensor:
    """image [3, H, W] in [0, 1] with the pixels of `hole` [H, W] filled in from the pixels around
    them by OpenCV's Telea inpainting (8-bit, as OpenCV inpaints colour images; the other pixels
    keep their values)."""
    import cv2

    filled = cv2.inpaint(_u8_image(image.cpu()), hole.to(torch.uint8).cpu().numpy(), radius, cv2.INPAINT_TELEA)
    fill = torch.from_numpy(filled).to(image.device).permute(2, 0, 1).to(image.dtype).div_(255.0)
    return torch.where(hole, fill, image)


def bench_grid_frames(frames: np.ndarray | Tensor, size: tuple[int, int],
                      device: torch.device | str = "cpu") -> Tensor:
    """Decoded frames [N, h, w, 3] (uint8, or float in [0, 1]) -> [N, 3, H, W] on the benchmark's
    pixel grid, of the same type: a channels-last view of the decoder's array, so no copy at the
    benchmark's size, and the extractor converts to float only the pixels it reads.

    Any resolution and aspect ratio maps onto the benchmark's image by scaling each axis
    (half-pixel-centre convention, antialiased when shrinking), so the pixel (u, v) of a generated
    frame lands on (u W / w, v H / h) up to the half-pixel offset. uint8 frames are scaled in
    uint8, on the CPU, by torch's own uint8 kernel for the same filter: at 832x480 -> 256x256 it
    took 7 ms a clip of 32 frames against 134 ms through float32 (four times the decoder's
    bytes), within one grey level of it.
    """
    x = torch.as_tensor(frames).permute(0, 3, 1, 2)
    h, w = size
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        if x.is_floating_point():
            x = x.clamp_(0, 1)
    return x.to(device)


class _Gate:
    """The foreground test of the plate extractor, evaluated on any per-frame sub-grid of the
    frames: drift-corrected colour distance to the background above the frame's threshold, and
    (with an object palette) closer to one of the object's colours than to the background, unless
    far from it. The drift correction (f - o) / g is one multiply-add with per-frame, per-channel
    constants; the test is one compiled loop over the pixels read (`extract_kernels.foreground`),
    in the decoder's layout. Results are bool NumPy arrays, as the kernels after it take them."""

    def __init__(self, frames: Tensor, bg: Tensor, g: Tensor, o: Tensor, thr: Tensor, pal: Tensor, strong: float):
        self.n = n = frames.shape[0]
        self.frames = channels_last(frames)  # [N, H, W, 3], uint8 (from bench_grid_frames) or float32
        self.bg = channels_last(bg)  # [H, W, 3] float32
        g, o = g.reshape(n, -1), o.reshape(n, -1)
        self.scale = (1.0 / (g * value_unit(frames))).to(torch.float32).numpy()
        self.shift = (-o / g).to(torch.float32).numpy()
        self.thr2 = thr.square().reshape(n).to(torch.float32).numpy()
        self.pal = pal.to(torch.float32).contiguous().numpy()
        self.strong2 = np.float32(strong * strong)

    def _tiles(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """bool [N, a, b]: foreground at rows rows[k] [a] and columns cols[k] [b] of frame k."""
        return extract_kernels.foreground(self.frames, self.bg, self.scale, self.shift, self.thr2, self.pal,
                                          self.strong2, np.ascontiguousarray(rows, np.int64),
                                          np.ascontiguousarray(cols, np.int64))

    def lattice(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """bool [N, a, b]: foreground at rows ys [a] and columns xs [b] of every frame."""
        n = self.n
        return self._tiles(np.broadcast_to(ys, (n, len(ys))), np.broadcast_to(xs, (n, len(xs))))

    def windows(self, y0, x0, side_y: int, side_x: int) -> np.ndarray:
        """bool [N, side_y, side_x]: foreground in a window per frame starting at (y0[k], x0[k])."""
        rows = np.asarray(y0)[:, None] + np.arange(side_y)
        cols = np.asarray(x0)[:, None] + np.arange(side_x)
        return self._tiles(rows, cols)

    def confirm(self, hits: np.ndarray, ly: np.ndarray, lx: np.ndarray) -> np.ndarray:
        """Drops the lattice hits (at rows ly, columns lx) without a 3x3 block of foreground pixels
        in their 5x5 neighbourhood, in place; returns the boxes of the rest (`extract_kernels.confirm_hits`)."""
        return extract_kernels.confirm_hits(self.frames, self.bg, self.scale, self.shift, self.thr2, hits,
                                            np.ascontiguousarray(ly, np.int64), np.ascontiguousarray(lx, np.int64))


# Below this first-frame object area the whole frame is searched at full resolution: a coarse
# lattice could step over a tiny object.
_ROI_MIN_AREA = 64


def _windows(lo: np.ndarray, hi: np.ndarray, side: int, size: int) -> np.ndarray:
    """Start of a window of `side` pixels per frame centred on [lo, hi), inside [0, size)."""
    centre = (lo + hi) // 2
    return np.clip(centre - side // 2, 0, size - side)


def _candidates(gate: _Gate, n: int, shape: tuple[int, int], small: bool):
    """The gate's foreground pixels in one window per frame that holds every candidate component
    that can be the object: (cand bool [N, a, b], y0, x0) with y0[k], x0[k] the top-left corner of
    frame k's window.

    The object is the component with the most pixels that survive a 3x3 erosion, so it holds a 3x3
    block of candidates (2x2 or 2x3 at the image's edges): a lattice of every 3rd row and column
    (plus the last ones) hits every such component. The gate runs on that lattice over the whole
    frame (1/9 of the pixels), then at full resolution in a window per frame around that frame's
    hits (one size for all frames), grown until no candidate lies within 3 px of a window's edge
    inside the image: fragments within 2 px join, so a component crossing the edge would show
    there. Only components without a single 3x3 block of pixels, which the object never is when
    it has one, can be missed.
    """
    h, w = shape
    if small:
        return gate.windows([0] * n, [0] * n, h, w), [0] * n, [0] * n
    # every 3rd row and column, and the last ones
    ly, lx = (np.r_[np.arange(0, s - 1, 3), s - 1] for s in (h, w))
    hits = gate.lattice(ly, lx)
    # Keep only the hits that may belong to a 3x3 block of candidates: a codec-smeared 1-px edge
    # of the scene along a lattice row is dropped (keeping too many only costs time). Hits inside
    # or next to a large blob of hits are kept unchecked (see `extract_kernels.confirm_hits`).
    box = gate.confirm(hits, ly, lx)  # [N, 4] in lattice rows and columns
    found = box[:, 1] > 0
    if not found.any():
        return np.zeros((n, 0, 0), bool), [0] * n, [0] * n
    first_y, last_y = ly[box[:, 0]], ly[(box[:, 1] - 1).clip(0)] + 1
    first_x, last_x = lx[box[:, 2]], lx[(box[:, 3] - 1).clip(0)] + 1
    margin, r = 8, 5
    side_y = min(h, int((last_y - first_y)[found].max()) + 2 * margin)
    side_x = min(w, int((last_x - first_x)[found].max()) + 2 * margin)
    while True:
        y0 = _windows(first_y, last_y, side_y, h)
        x0 = _windows(first_x, last_x, side_x, w)
        cand = gate.windows(y0, x0, side_y, side_x)
        cand[~found] = False
        top, bottom, left, right = extract_kernels.core_near_edges(cand, r).T
        grow_y = bool(((y0 > 0) & top).any() or ((y0 + side_y < h) & bottom).any())
        grow_x = bool(((x0 > 0) & left).any() or ((x0 + side_x < w) & right).any())
        if not (grow_y or grow_x):
            return cand, y0.tolist(), x0.tolist()
        side_y = min(h, side_y + 32) if grow_y else side_y
        side_x = min(w, side_x + 32) if grow_x else side_x


def _plate_masks(frames: Tensor, first_mask: Tensor, first_frame: Tensor | None, background: Tensor | None,
                 config: ExtractConfig) -> tuple[np.ndarray, list[int], list[int]]:
    """frames: float [N, 3, H, W] in [0, 1], or uint8 (see `bench_grid_frames`), and the other
    images, on the CPU (`extract` moves them there). Returns the object masks in one window per
    frame, uint8 (0/1) [N, a, b], and the windows' top-left corners y0, x0."""
    n, _, h, w = frames.shape
    plate = config.mode == "plate"
    if plate and background is None:
        raise InvalidValueError("extractor 'plate' needs the clip's background plate; allowed: --extractor self")

    def fit():
        bg = as_float(background, torch.float32) if plate else _self_background(frames, first_mask)
        # The drift, and the frames' robust noise level over the fit's pixels with that drift
        # corrected (the fit's last pass computes exactly that).
        return (bg, *_drift_fit(frames, bg))

    bg, g, o, sigma = fit()
    if plate:
        mid = n // 2  # the frame both tests read, with its drift

        def apply(fn):
            nonlocal background, first_frame, bg, g, o, sigma
            background, first_frame = (None if x is None else fn(x) for x in (background, first_frame))
            bg, g, o, sigma = fit()

        # Frames softer than the plate (a model's output often is: generated at a lower
        # resolution, decoded by a smoothing VAE): the plate's sharp edges then differ from the
        # frames along their length, in bands wide enough to pass for the object. Measured on 40
        # of the bench's clips blurred by 1, 1.5, 2 and 2.5 px, l2 over 2 px: 1, 9, 15 and 16 -> 0;
        # the clips as they are: one of 80 changed, 0.39 -> 0.13 px. A global colour transform
        # that per-channel gains and offsets cannot undo (channels swapped, saturation changed,
        # grey), on 40 clips with perfect motion, l2 over 2 px: swapped channels 10 -> 0, half
        # saturation 6 -> 3, grey 15 -> 6 (where the object's grey matches the scene's, nothing can
        # tell them apart); the clips as they are unchanged. The plate and the first frame are
        # taken to both (`self` takes its first frame: `_first_frame_as_video`).
        _match_to_video(lambda: _softness(frames, background, g[mid], o[mid], ratio=config.soft_ratio),
                        lambda: _colour_map(frames, background, g[mid], o[mid], config.colour_map_above), apply)
    if float(sigma.median()) > config.smooth_above:
        # Dithered frames (a GIF on a fixed 256-colour palette: sigma 0.06-0.15, against at most
        # 0.01 for H.264 and VP9 at common qualities, or PIL's adaptive-palette GIFs): each pixel's
        # colour is noise around the object's or the scene's, and 6 sigma is above `strong`, so
        # neither the threshold nor the object's colours can tell them apart. A Gaussian low-pass
        # of the frames, the plate and the first frame (whose colours the gate matches) brings
        # the colours back; the masks' edges soften by about `smooth_px`. On 20 such GIFs (832x480,
        # free fall and horizontal throws) 13 were scored (`self`: 7), with l2 up to 7 px; with
        # the low-pass 20 (both modes), l2 under 1 px. At the benchmark's 256x256, none of 20 was
        # found before; after, all 20, l2 0.26 px (median).
        frames, background, first_frame = (None if x is None else _smooth(x, config.smooth_px)
                                           for x in (frames, background, first_frame))
        bg, g, o, sigma = fit()
    thr = torch.clamp(config.noise_k * sigma, min=config.threshold)
    # The object's colours: from the benchmark's first frame (the generated first frame may show the
    # object elsewhere; small colour drift between the two is what `strong` and the gate tolerate).
    fm = first_mask.to(torch.bool)
    # (`self`: taken first to the video's softness and colours, which its background already has.)
    if first_frame is None:
        source = (as_float(frames[:1]) - o[:1]).div_(g[:1])[0]
    elif not plate:
        source = _first_frame_as_video(first_frame, bg, fm, config)
    else:
        source = first_frame
    pal = _palette(source, fm, config.palette_size)
    gate = _Gate(frames, bg, g, o, thr, pal, config.strong)
    cand, y0, x0 = _candidates(gate, n, (h, w), int(fm.sum()) < _ROI_MIN_AREA)
    win = cand.view(np.uint8)
    if not win.any():
        return win, y0, x0
    # An object that resembles the scene behind it (a yellow ball on a brown floor) breaks into
    # fragments: components are taken on the dilated mask, so fragments within 2 px join. The
    # object is the component with the most pixels that survive a 3x3 erosion: a sharp edge of the
    # scene that the video codec smeared (a 1-px line across the image) has none, however long.
    extract_kernels.object_components(win)
    # Keeping only pixels within 2 px of the object's body (its 3x3-eroded core) drops 1-2 px
    # threads that joined the object (a ramp's edge, smeared differently by the codec in video and
    # plate, touches a sliding box); a closing then fills 1-px holes and notches where the object's
    # texture matches the scene. In the windows, as in the whole frame: no candidate lies within
    # 3 px of a window edge that is not the image's. One compiled loop per frame, in place.
    opened = extract_kernels.open_close(win)
    # A thread the opening removed may have been all that joined a second blob (a patch of codec
    # noise with a body of its own) to the object: the object is chosen again where the opening
    # removed pixels, by the same rule. (Without this, a 20-px blob 75 px away stayed in a sliding
    # box's mask for 20 frames of a clip and moved its centroid by 3 px.)
    if opened.any():
        sub = np.ascontiguousarray(win[opened])
        extract_kernels.object_components(sub)
        win[opened] = sub
    return win, y0, x0


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

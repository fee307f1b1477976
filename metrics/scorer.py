"""`newtonbench score`: measure a folder of generated videos against a NewtonBench dataset.

    score(ScoreConfig(...), progress=True) -> ScoreResult   (writes RESULTS/results.parquet, summary.json)

Per clip: decode (worker threads; PyAV releases the GIL), scale onto the benchmark's pixel grid,
extract the object (metrics.extract), put the track onto the benchmark's frame times
(metrics.resample), then the metric kernels run batched over clips. Only one window of clips is in
memory at a time, so memory is flat in the number of clips. A clip that cannot be scored gets a
status (schema.STATUSES) and null metrics; the run goes on.
"""

from __future__ import annotations

import collections
import datetime as _dt
import itertools
import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import newtonbench
from newtonbench import schema
from newtonbench.atomic import atomic_path, write_json
from newtonbench.errors import DeviceUnavailableError, InvalidValueError, NewtonBenchError, check_range
from newtonbench.metrics import info
from newtonbench.metrics.extract import ExtractConfig, as_float, bench_grid_frames, extract, place_masks
from newtonbench.metrics.functional.chamfer import chamfer_distance
from newtonbench.metrics.functional.consistency import consistency
from newtonbench.metrics.functional.iou import mask_iou
from newtonbench.metrics.functional.l2 import l2_distance
from newtonbench.metrics.functional.mask_kernels import centroids, moments
from newtonbench.metrics.functional.motion import (
    accel_ratio,
    acceleration_rmse,
    fit_acceleration,
    pixel_accel_to_world,
    velocity_rmse,
)
from newtonbench.metrics.functional.pisa import pisa_chamfer, pisa_frame_indices, pisa_iou, pisa_l2
from newtonbench.metrics.functional.smoothness import smoothness
from newtonbench.metrics.resample import coverage, interpolate_track, nearest_frames

log = logging.getLogger(__name__)

FLOWS = ("lk", "raft", "none")
DEVICES = ("auto", "cpu", "cuda")


class NoMatchError(NewtonBenchError):
    """No video in VIDEOS matches a selected benchmark clip."""


@dataclass(frozen=True)
class ScoreConfig:
    videos: str
    bench: str
    out: str
    model: str
    card: dict | None = None
    device: str = "auto"
    batch_size: int = 32
    workers: int = 0  # decode + extraction threads; 0 = default_workers()
    primitives: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = None
    distributions: tuple[str, ...] | None = None
    extractor: ExtractConfig = field(default_factory=ExtractConfig)
    flow: str = "lk"
    raft_weights: str | None = None
    fps: float | None = None  # the model's frame rate, over the files' own timing (see read_video)
    pisa_compatible: bool = False
    max_lost_fraction: float = 0.5
    bootstrap: int = 1000
    seed: int = 0
    strict: bool = False

    def __post_init__(self):
        if not self.model or not str(self.model).strip():
            raise InvalidValueError("model name is empty; allowed: --model NAME or a card with a name")
        if self.device not in DEVICES:
            raise InvalidValueError(f"device {self.device!r}; allowed: {', '.join(DEVICES)}")
        if self.flow not in FLOWS:
            raise InvalidValueError(f"flow {self.flow!r}; allowed: {', '.join(FLOWS)}")
        check_range("batch_size", self.batch_size, 1, 4096)
        check_range("workers", self.workers, 0, 256)
        check_range("max_lost_fraction", self.max_lost_fraction, 0.0, 1.0)
        check_range("bootstrap", self.bootstrap, 0, 1_000_000)
        if self.fps is not None:
            check_range("fps", self.fps, 0.0, 1000.0, low_open=True)
        for name, values, allowed in (("primitive", self.primitives, schema.PRIMITIVES),
                                      ("split", self.splits, schema.SPLITS),
                                      ("distribution", self.distributions, schema.DISTRIBUTIONS)):
            for v in values or ():
                if v not in allowed:
                    raise InvalidValueError(f"{name} {v!r}; allowed: {', '.join(allowed)}")
        if not Path(self.videos).is_dir():
            raise InvalidValueError(f"videos folder {self.videos!r} does not exist; allowed: a folder of videos")

    def to_json(self) -> dict:
        d = asdict(self)
        d["extractor"] = asdict(self.extractor)
        return d


@dataclass
class ScoreResult:
    results: object  # pandas.DataFrame, one row per clip
    summary: dict
    out: Path
    unmatched: list[str]

    @property
    def n_failed(self) -> int:
        return int((self.results["status"] != "ok").sum())


def default_workers() -> int:
    """Decode + extraction threads: one per CPU core (up to 16). Measured on 2 cores: a third
    thread only adds contention (6% more CPU per clip, the same wall time)."""
    return min(16, os.cpu_count() or 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("device 'cuda' asked for but torch sees no CUDA GPU; allowed here: cpu, auto")
    return torch.device(name)


# --- per-clip loading (worker threads) -------------------------------------------------------------

@dataclass
class _Loaded:
    clip: dict
    status: str = "ok"
    detail: str = ""
    frames: np.ndarray | None = None  # uint8 [N, h, w, 3]
    times: np.ndarray | None = None
    fps: float = 0.0
    gt_masks: np.ndarray | None = None  # uint8 [T, y1 - y0, x1 - x0]: inside gt_box (Dataset.mask_box)
    gt_box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (y0, y1, x0, x1): the object over all frames
    background: np.ndarray | None = None
    first_frame: np.ndarray | None = None
    traj: dict | None = None


def _load(ds, clip: dict, need_plate: bool) -> _Loaded:
    """The clip's ground truth; `_decode` adds the frames."""
    item = _Loaded(clip)
    cid = clip["clip_id"]
    item.traj = ds.trajectory_arrays(cid, ("t", "u", "v", "visible", "in_contact", "ax", "az"))
    item.gt_masks, item.gt_box = ds.mask_box(cid)
    item.first_frame = ds.first_frame(cid)
    if need_plate:
        item.background = ds.background(cid)
    return item


def _bench_span(last: float, fps: float) -> float:
    """Seconds from a video's first frame within which its frames can meet the benchmark's
    times (the last at `last`): up to one benchmark frame after the last."""
    return float(last) + 1.0 / fps - 1e-9


def _decode(item: _Loaded, path: Path, rate: float | None = None) -> None:
    from newtonbench.video import VideoReadError, read_video

    fps = float(item.clip["fps"])
    t = item.traj["t"]
    size = int(item.clip["height"]), int(item.clip["width"])

    def on_grid(frames: np.ndarray) -> np.ndarray:
        # onto the benchmark's grid as they are decoded, a few at a time: a clip is held at that
        # size only (at 1080p, 200 MB less a worker); frames already at it come back as they are
        return bench_grid_frames(frames, size).permute(0, 2, 3, 1).numpy()

    try:
        # One decoder thread: the clips are decoded in parallel by the scorer's worker threads
        # (FFmpeg's frame threads on top only wait and fight them for the cores). Only the
        # benchmark's span is decoded, the frames `_prepare` keeps: a model's 5 s video of a
        # 2 s clip costs 2 s of decoding.
        video = read_video(path, fps_hint=fps, threads=1, until=_bench_span(t[-1] - t[0], fps), each=on_grid,
                           fps=rate)
    except VideoReadError as e:
        item.status, item.detail = "unreadable", str(e)
        return
    item.frames, item.times, item.fps = video.frames, video.times, video.fps


def _load_and_prepare(ds, jobs: list[tuple[dict, Path]], need_plate: bool, cfg: ScoreConfig, device):
    """Worker-thread job: decode and extract a few clips (`jobs`: each clip and its video). torch,
    OpenCV, PyAV and the compiled kernels release the GIL, so clips run in parallel across workers.

    The clips' ground truth is read first, all together, then each clip is decoded and prepared:
    file reading and PNG decoding run faster back to back than between two clips' pixel work
    (measured on one thread: 1.5 -> 1.1 ms a clip in runs of 8), and the ground truth is small.

    Returns each clip and what the batched metrics need (or the status): the decoded frames and
    the ground truth's images die here, not in a finished future waiting in the look-ahead (which
    held up to 2 x batch-size clips' frames, ~100 MB, and made every clip's buffers fresh memory)."""
    items = [_load(ds, clip, need_plate) for clip, _ in jobs]
    results = []
    for i, (clip, path) in enumerate(jobs):
        item, items[i] = items[i], None
        _decode(item, path, cfg.fps)
        if item.status != "ok":
            results.append((clip, (item.status, item.detail)))
            continue
        out = _prepare(item, cfg.extractor, device, cfg.pisa_compatible, cfg.max_lost_fraction, cfg.flow != "none")
        if isinstance(out, _Prepared) and cfg.flow != "none":
            # The flow is the costliest step: run it here, in parallel across clips, and keep only
            # the number (the cropped frames are freed).
            out.kinematic = _clip_residual(out, cfg.flow, cfg.raft_weights)
            out.flow_frames = out.flow_masks = None
        results.append((clip, out))
    return results


# --- per-clip preparation (worker threads, torch) ----------------------------------------------------

@dataclass
class _Prepared:
    clip: dict
    bench_times: torch.Tensor  # [T]
    present: torch.Tensor  # bool [T]
    pred_c: torch.Tensor  # [T, 2] interpolated centroids
    pred_ok: torch.Tensor  # bool [T]
    mask_ok: torch.Tensor  # bool [T]
    gt_c: torch.Tensor
    gt_ok: torch.Tensor
    size: tuple[int, int]  # the benchmark's (H, W)
    segments: torch.Tensor  # long [T]
    fit_t: torch.Tensor  # [M] generated-frame times inside the fit window
    fit_c: torch.Tensor  # [M, 2]
    fit_ok: torch.Tensor  # bool [M]
    depth_eff: float = 1.0  # metres: the depth at which the mask centroid moves like the object
    video_fps: float = 0.0  # the generated video's nominal frame rate
    pisa: dict | None = None
    flow_frames: torch.Tensor | None = None  # [T', 3, h', w'] covered frames, cropped for the flow
    flow_masks: torch.Tensor | None = None
    kinematic: float | None = None  # the residual, once computed (in the worker thread)
    mask_metrics: dict | None = None  # chamfer, iou, consistency ([1] tensors), computed in the worker


def _segments_and_window(traj: dict, clip: dict) -> tuple[np.ndarray, np.ndarray]:
    """Constant-force segments (run-length ids) and the fit window (longest contact-free run of
    frames under the manifest's analytic acceleration)."""
    contact = traj["in_contact"].astype(bool)
    ax, az = traj["ax"].astype(float), traj["az"].astype(float)
    key = np.stack([contact.astype(float), np.round(np.nan_to_num(ax), 4), np.round(np.nan_to_num(az), 4)], 1)
    change = np.r_[False, (key[1:] != key[:-1]).any(1)]
    segments = np.cumsum(change)
    tx, tz = float(clip.get("accel_x") or 0.0), float(clip.get("accel_z") or 0.0)
    tol = 1e-6 + 1e-3 * math.hypot(tx, tz)
    free = ~contact & traj["visible"].astype(bool)
    if np.isfinite(ax).all() and np.isfinite(az).all():
        free &= (np.abs(ax - tx) <= tol) & (np.abs(az - tz) <= tol)
    # the longest run of free frames (the first of equally long ones)
    edges = np.flatnonzero(np.diff(np.r_[0, free.astype(np.int8), 0]))
    window = np.zeros_like(free)
    if len(edges):
        starts, ends = edges[0::2], edges[1::2]
        k = int(np.argmax(ends - starts))
        window[starts[k]:ends[k]] = True
    return segments, window


def _silhouette_gain(traj: dict, gt_c: np.ndarray, gt_ok: np.ndarray, window: np.ndarray) -> float:
    """How much faster the ground truth's mask centroid accelerates in the image than the
    projection of the object's centre, over the fit window: λ = (a_m · a_p) / |a_p|² for the
    least-squares constant accelerations a_m of the mask centroid and a_p of the projected centre.

    A solid object's silhouette is its near side, at depth Z - (its half depth), so it moves by
    fx / (Z - d/2) per metre, not fx / Z; and as it crosses the view, the faces it shows change, which
    bends its centroid's path (a box sliding down a ramp: up to 7.5% more acceleration than its
    centre). Pixels -> metres use Z / λ, which makes the ground truth's own mask track give its true
    acceleration: a generated video is measured by the same instrument as its ground truth.
    Where the window holds too little accelerated motion to tell (under 4 px, or under 8 frames),
    λ is the displacement gain (m_k - m̄) = λ (p_k - p̄); under 2 px of motion, 1.
    """
    p = np.stack([traj["u"], traj["v"]], 1).astype(np.float64)
    m = gt_c
    # Over the fit window only: after contacts objects tumble, and rotation moves a silhouette's
    # centroid against the centre.
    ok = gt_ok & window & np.isfinite(p).all(1)
    if ok.sum() < 3:
        return 1.0
    t = traj["t"].astype(np.float64)[ok]
    if ok.sum() >= 8:
        # the least-squares parabola through both tracks at once (p0 + v t + a t²/2: a = 2 c2),
        # as the metric fits it; NumPy's polyfit on a few dozen numbers (the tensor version of the
        # fit took ~4x longer)
        c2 = np.polynomial.polynomial.polyfit(t - t.mean(), np.concatenate([p[ok], m[ok]], 1), 2)[2]
        a_p, a_m = 2.0 * c2[:2], 2.0 * c2[2:]
        if 0.5 * float(np.hypot(*a_p)) * float(np.ptp(t)) ** 2 >= 4.0:
            return float(np.clip((a_m @ a_p) / (a_p @ a_p), 0.8, 1.25))
    dp = p[ok] - p[ok].mean(0)
    dm = m[ok] - m[ok].mean(0)
    spread = float((dp**2).sum())
    if spread < 4.0 * ok.sum():  # under 2 px of motion: no evidence, keep the pinhole depth
        return 1.0
    return float(np.clip((dm * dp).sum() / spread, 0.8, 1.25))


def _prepare(item: _Loaded, extract_cfg: ExtractConfig, device: torch.device, pisa: bool,
             max_lost_fraction: float = 0.5, flow: bool = False) -> _Prepared | tuple[str, str]:
    clip = item.clip
    h, w = int(clip["height"]), int(clip["width"])
    fps = float(clip["fps"])
    # The clip's timeline and tracks are kept in NumPy (a few dozen numbers: see metrics.resample);
    # the per-pixel work runs on tensors, and what the batched metrics read is handed over as tensors.
    t_gt = item.traj["t"].astype(np.float64)
    bench_times = t_gt - t_gt[0]
    n_bench = len(t_gt)
    times = np.asarray(item.times, np.float64)
    # Generated frames beyond the benchmark's span carry nothing to compare; dropping them first
    # also bounds the work for long videos.
    n_keep = int((times < _bench_span(bench_times[-1], fps)).sum())
    present = coverage(times[:n_keep], bench_times, fps) if n_keep else np.zeros(n_bench, bool)
    if n_keep < 3 or int(present.sum()) < 3:
        return "too_few_frames", f"{n_keep} generated frames cover {int(present.sum())} of {n_bench} benchmark times"
    times = times[:n_keep]
    frames = bench_grid_frames(item.frames[:n_keep], (h, w), device)  # uint8, as decoded
    # The ground truth's masks inside the object's box over all frames (uint8 0/1, viewed as bool):
    # every use below reads only that box, or places it where needed (first the first mask on the
    # whole image), as the extractor's windows are placed.
    gy0, gy1, gx0, _ = item.gt_box
    gt_moments = moments(np.ascontiguousarray(item.gt_masks))  # per frame: area, sums, box (mask_kernels)
    first_mask = place_masks(item.gt_masks, gy0, gx0, (0, h, 0, w), [0])[0].to(device)
    # uint8, as the frames: the extractor converts what it reads
    first_frame = bench_grid_frames(item.first_frame[None], (h, w), device)[0]
    bg = bench_grid_frames(item.background[None], (h, w), device)[0] if item.background is not None else None
    ex = extract(frames, first_mask, first_frame, bg, extract_cfg)
    found_c, found, found_boxes = (x.cpu().numpy() for x in (ex.centroids, ex.valid, ex.boxes))
    if not found[0]:
        return "object_not_found", f"object area {int(ex.area[0])} px in the first frame, ground truth {int(gt_moments[0, 0])} px"

    pred_c, pred_ok = interpolate_track(times, found_c, found, bench_times, fps)
    near = nearest_frames(times, bench_times)
    mask_ok = found[near] & present
    gt_c, gt_ok = centroids(gt_moments)  # float64, as mask_centroids(.., torch.float64) divides
    gt_c = gt_c + [gx0, gy0]  # from the box's pixels to the image's
    segments, window = _segments_and_window(item.traj, clip)
    depth_eff = float(clip["motion_plane_depth_m"]) / _silhouette_gain(item.traj, gt_c, gt_ok, window)
    idx = np.flatnonzero(window)
    if len(idx):
        t_a, t_b = float(t_gt[idx[0]] - t_gt[0]), float(t_gt[idx[-1]] - t_gt[0])
        eps = 1e-3 / fps
        sel = (times >= t_a - eps) & (times <= t_b + eps)
    else:
        sel = np.zeros(n_keep, bool)
    # Lost = too few found frames to fit the trajectory: counted inside the fit window (an object
    # that flies out of view after it, as under weaker gravity, is still measured), else over all
    # benchmark times where the ground truth shows the object.
    n_fit = int(sel.sum())
    if n_fit:
        n_found, total, where = int(found[sel].sum()), n_fit, "generated frames of the fit window"
    else:
        considered = present & gt_ok
        n_found, total, where = int((pred_ok & considered).sum()), int(considered.sum()), "benchmark times"
    if n_found < max(min(3, total), (1.0 - max_lost_fraction) * total):
        return "object_lost", f"object found in {n_found} of {total} {where}"
    # Every mask metric reads only the region the two objects visit: crop it once (8 px margin),
    # so the per-pixel work scales with the object, not with the frame.
    # The union of both objects' boxes: the generated masks' per-frame boxes (of the frames the
    # benchmark times pick) and the ground truth's box.
    pred_boxes = found_boxes[near[present]]
    pred_boxes = pred_boxes[pred_boxes[:, 1] > pred_boxes[:, 0]]
    boxes = np.concatenate([pred_boxes, [item.gt_box]]) if gy1 > gy0 else pred_boxes
    y0, y1, x0, x1 = _box_region(boxes, (h, w), margin=8, min_side=32)
    # the picked frames' masks on the crop, straight from the extractor's windows (never a
    # full-size mask); uncovered times cleared in place
    pred_masks = ex.crop((y0, y1, x0, x1), near)
    if not present.all():
        pred_masks[torch.from_numpy(~present).to(device)] = False

    def tensor(x):
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)

    prepared = _Prepared(
        clip=clip, bench_times=tensor(bench_times), present=tensor(present), pred_c=tensor(pred_c),
        pred_ok=tensor(pred_ok), mask_ok=tensor(mask_ok), gt_c=tensor(gt_c), gt_ok=tensor(gt_ok),
        size=(h, w), segments=tensor(segments),
        fit_t=tensor(times[sel]), fit_c=tensor(found_c[sel].astype(np.float64)), fit_ok=tensor(found[sel]),
        depth_eff=depth_eff, video_fps=item.fps,
    )
    if flow and int(present.sum()) >= 4 and len(pred_boxes):
        # The residual is weighted by the object mask: only flow on the object counts. A crop around
        # the object's whole track (16 px margin, >= 128 px a side so the pyramid still follows fast
        # motion) gave the same residual to 0.1% as the full frame, in half the time.
        fy0, fy1, fx0, fx1 = _box_region(pred_boxes, (h, w))
        prepared.flow_frames = as_float(frames[..., fy0:fy1, fx0:fx1][tensor(near[present])])
        prepared.flow_masks = ex.crop((fy0, fy1, fx0, fx1), near[present])
    if pisa:
        pred_idx, gt_idx = pisa_frame_indices(len(item.times), n_bench, item.fps, fps)
        pred_idx = pred_idx[pred_idx < n_keep].to(device)
        gt_idx = gt_idx[: len(pred_idx)].to(device)
        pc = ex.centroids[pred_idx].to(torch.float64)
        # PISA's definitions read whole frames, but the chamfer distance is translation invariant
        # and the IoU counts mask pixels: on the region both objects visit in the frames PISA
        # pairs, with a 2-px ring (a mask pixel's boundary test reads its neighbours), they are the
        # whole frame's, and the chamfer keeps PISA's normalisation by the image's height.
        # (On whole frames: 2.6 ms a clip on one thread, 0.8 of them placing masks.)
        boxes = np.concatenate([found_boxes[pred_idx.cpu().numpy()], [item.gt_box]])
        boxes = boxes[boxes[:, 1] > boxes[:, 0]]
        region = _box_region(boxes, (h, w), margin=2, min_side=1) if len(boxes) else (0, 1, 0, 1)  # or both empty
        pm, gm = ex.crop(region, pred_idx), place_masks(item.gt_masks, gy0, gx0, region, gt_idx).to(device)
        prepared.pisa = {
            "l2": pisa_l2(pc[None], prepared.gt_c[gt_idx][None], (ex.valid[pred_idx] & prepared.gt_ok[gt_idx])[None], h),
            "chamfer": pisa_chamfer(pm[None], gm[None], height=h),
            "iou": pisa_iou(pm[None], gm[None]),
        }
    # The mask metrics read only this clip's crop: computed here, in the worker thread, so that the
    # clips' kernels run in parallel (in the main thread they were most of its time and the run
    # waited on them). The frames' crop is not kept. It stays as the extractor got the frames
    # (uint8: the consistency kernel converts only the pixels it reads), and is gathered as
    # [T, h, w, 3] rows of the decoder's layout (15x faster than indexing the channels-first
    # view); crop first, then pick frames: never a full-size copy of the clip.
    crop = frames.permute(0, 2, 3, 1)[:, y0:y1, x0:x1].index_select(0, tensor(near)).permute(0, 3, 1, 2)
    gt_masks = place_masks(item.gt_masks, gy0, gx0, (y0, y1, x0, x1)).to(device)
    gt_area = torch.from_numpy(gt_moments[:, 0]).to(device)  # the crop holds the whole box: the same counts
    prepared.mask_metrics = _mask_metrics(pred_masks, gt_masks, crop, prepared.present, prepared.mask_ok, gt_area)
    return prepared


def _mask_metrics(pred_masks, gt_masks, frames, present, mask_ok, gt_area) -> dict:
    """chamfer, iou and consistency of one clip: its masks ([T, h, w]) and frames ([T, 3, h, w]) on
    one crop, at the benchmark's times, and the ground truth's areas [T]."""
    pm, gm, pr = pred_masks[None], gt_masks[None], present[None]
    return {"chamfer": chamfer_distance(pm, gm, pr), "iou": mask_iou(pm, gm, pr),
            "consistency": consistency(frames[None], pm, mask_ok[None], gt_area[None], pr)}


# --- batched metrics ----------------------------------------------------------------------------

def _stack(items, attr):
    return torch.stack([getattr(p, attr) for p in items])


def _box_region(boxes: np.ndarray, size: tuple[int, int], margin: int = 16,
                min_side: int = 128) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the union of `boxes` [K, 4] (y0, y1, x0, x1), grown as `_crop_range` grows
    each axis, inside the image of `size` (H, W)."""
    (h, w), lo, hi = size, boxes.min(0), boxes.max(0)
    return (*_crop_range(int(lo[0]), int(hi[1]), h, margin, min_side),
            *_crop_range(int(lo[2]), int(hi[3]), w, margin, min_side))


def _crop_range(lo: int, hi: int, size: int, margin: int = 16, min_side: int = 128) -> tuple[int, int]:
    """[lo, hi) grown by `margin` and to at least `min_side` pixels, inside [0, size)."""
    lo, hi = max(0, lo - margin), min(size, hi + margin)
    side = min(size, max(hi - lo, min_side))
    lo = max(0, min(lo - (side - (hi - lo)) // 2, size - side))
    return lo, lo + side


def _clip_residual(p: _Prepared, flow: str, raft_weights: str | None) -> float:
    """The paper's kinematic residual on one clip's covered frames, on its object crop."""
    from newtonbench.metrics.functional.kinematic import kinematic_residual

    if p.flow_frames is None:
        return math.nan
    kw = {"weights": raft_weights} if flow == "raft" and raft_weights else {}
    with torch.no_grad():
        r = kinematic_residual(p.flow_frames[None], p.flow_masks[None].to(p.flow_frames.dtype), flow=flow, **kw)
    return float(r[0])


def _flow_residual(batch: list[_Prepared], flow: str, raft_weights: str | None) -> list[float]:
    out = []
    for p in batch:  # one clip at a time: every clip has its own crop
        if p.kinematic is None:
            p.kinematic = _clip_residual(p, flow, raft_weights)
            p.flow_frames = p.flow_masks = None
        out.append(p.kinematic)
    return out


def _compute(batch: list[_Prepared], cfg: ScoreConfig) -> list[dict]:
    """Metric kernels over a batch of clips of one benchmark shape (T, H, W)."""
    dev = batch[0].pred_c.device
    clips = [p.clip for p in batch]
    h, w = batch[0].size
    diag = math.hypot(h, w)
    fps = torch.tensor([float(c["fps"]) for c in clips], dtype=torch.float64, device=dev)
    depth = torch.tensor([p.depth_eff for p in batch], dtype=torch.float64, device=dev)
    fx = torch.tensor([float(c["fx"]) for c in clips], dtype=torch.float64, device=dev)
    fy = torch.tensor([float(c["fy"]) for c in clips], dtype=torch.float64, device=dev)
    scale = torch.stack([depth / fx, depth / fy], -1)
    true = torch.tensor([[float(c.get("accel_x") or 0.0), float(c.get("accel_z") or 0.0)] for c in clips],
                        dtype=torch.float64, device=dev)

    pred_c, pred_ok = _stack(batch, "pred_c"), _stack(batch, "pred_ok")
    gt_c, gt_ok = _stack(batch, "gt_c"), _stack(batch, "gt_ok")
    both = pred_ok & gt_ok
    m: dict[str, torch.Tensor] = {}
    m["l2"] = l2_distance(pred_c, gt_c, both)
    m["l2_norm"] = m["l2"] / diag
    # Mask metrics clip by clip: each clip has its own crop (the kernels take B = 1 happily).
    per_clip = collections.defaultdict(list)
    for p in batch:
        for k, v in p.mask_metrics.items():
            per_clip[k].append(v)
    for k, v in per_clip.items():
        m[k] = torch.cat([x.to(dev, torch.float64) for x in v])
    m["chamfer_norm"] = m["chamfer"] / diag
    m["rmse_v_px"] = velocity_rmse(pred_c, gt_c, both, fps)
    m["rmse_a_px"] = acceleration_rmse(pred_c, gt_c, both, fps)
    m["rmse_v"] = velocity_rmse(pred_c, gt_c, both, fps, scale)
    m["rmse_a"] = acceleration_rmse(pred_c, gt_c, both, fps, scale)
    # The fit runs on the generated frames' own times (no resampling error), padded to one length.
    n_fit = max(1, max(len(p.fit_t) for p in batch))
    ft = torch.zeros(len(batch), n_fit, dtype=torch.float64, device=dev)
    fc = torch.zeros(len(batch), n_fit, 2, dtype=torch.float64, device=dev)
    fw = torch.zeros(len(batch), n_fit, dtype=torch.float64, device=dev)
    for i, p in enumerate(batch):  # padding per clip: lengths differ with each video's fps
        k = len(p.fit_t)
        ft[i, :k], fc[i, :k], fw[i, :k] = p.fit_t, torch.nan_to_num(p.fit_c), p.fit_ok.to(torch.float64)
    world = pixel_accel_to_world(fit_acceleration(ft, fc, fw), depth, fx, fy)
    m["accel_fit_x"], m["accel_fit_z"] = world[:, 0], world[:, 1]
    m["accel_ratio"] = accel_ratio(world, true)
    m["smoothness"] = smoothness(pred_c, pred_ok, _stack(batch, "segments"))
    values = {k: v.detach().to("cpu", torch.float64).tolist() for k, v in m.items()}
    values["kinematic_residual"] = (_flow_residual(batch, cfg.flow, cfg.raft_weights) if cfg.flow != "none"
                                    else [math.nan] * len(batch))
    rows = []
    for i, p in enumerate(batch):
        row = {name: values[name][i] for name in info.METRIC_COLUMNS}
        if cfg.pisa_compatible and p.pisa is not None:
            for k in ("l2", "chamfer", "iou"):
                row[f"pisa_{k}"] = float(p.pisa[k].item())
        rows.append(row)
    return rows


# --- the run --------------------------------------------------------------------------------------

def _row(clip: dict, cfg: ScoreConfig, status: str, detail: str, metrics: dict | None) -> dict:
    columns = info.METRIC_COLUMNS + (info.PISA_COLUMNS if cfg.pisa_compatible else ())
    row = {"model": cfg.model, "clip_id": clip["clip_id"], "primitive": clip["primitive"], "split": clip["split"],
           "distribution": clip["distribution"], "status": status, "status_detail": detail}
    for c in columns:
        v = None if metrics is None else metrics.get(c)
        row[c] = None if v is None or not math.isfinite(v) else float(v)
    row["accel_true_x"] = float(clip.get("accel_x") or 0.0)
    row["accel_true_z"] = float(clip.get("accel_z") or 0.0)
    return row


def _run_sizes(n: int, workers: int, longest: int = 8):
    """Clips per job for n clips: up to `longest` (see `_load_and_prepare`), shrinking as the work
    runs out (a quarter of each worker's share of what is left; guided self-scheduling), so that
    the last jobs are single clips and no core waits long on another's last run."""
    while n > 0:
        size = max(1, min(longest, n // (4 * workers)))
        yield size
        n -= size


def _clip_rows(ds, ids: list[str], chunk: int = 4096):
    """The manifest rows of `ids`, in order, fetched a chunk at a time: one pandas call per chunk
    (`Dataset.clips`, 0.04 ms a clip against 0.1 one at a time), and never every row of a
    60,000-clip run at once."""
    for start in range(0, len(ids), chunk):
        yield from ds.clips(ids[start:start + chunk])


def _run_clips(ds, cfg, device, wanted, videos, need_plate, workers, window, rows, batch, flush, progress):
    """Decode and extract the clips that have a video in `workers` threads, a few clips a job, with
    a bounded look-ahead; batch the rest. Clips without a video get their status here."""
    from tqdm.auto import tqdm

    have = [cid for cid in wanted if cid in videos]
    missing = [cid for cid in wanted if cid not in videos]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nb-score") as pool, \
            tqdm(total=len(wanted), desc=f"score {cfg.model}", unit="clip", disable=not progress) as bar:
        for clip in _clip_rows(ds, missing):
            rows.append(_row(clip, cfg, "missing_video", "no file with this clip id as its stem", None))
        bar.update(len(missing))
        pending: collections.deque[Future] = collections.deque()
        todo, sizes = _clip_rows(ds, have), _run_sizes(len(have), workers)

        def submit():
            size = next(sizes, None)
            if size is None:
                return False
            jobs = [(clip, videos[clip["clip_id"]]) for clip in itertools.islice(todo, size)]
            pending.append((size, pool.submit(_load_and_prepare, ds, jobs, need_plate, cfg, device)))
            return True

        # A bounded look-ahead keeps decoding ahead of the kernels without holding every clip.
        while sum(n for n, _ in pending) < window and submit():
            pass
        while pending:
            done = pending.popleft()[1].result()
            submit()
            for clip, out in done:
                if isinstance(out, _Prepared):
                    batch.append(out)
                    if len(batch) >= cfg.batch_size:
                        flush()
                else:
                    rows.append(_row(clip, cfg, out[0], out[1], None))
            bar.update(len(done))
        flush()


def score(cfg: ScoreConfig, progress: bool = True) -> ScoreResult:
    """Score every selected clip; write RESULTS/results.parquet and summary.json atomically."""
    import pandas as pd

    from newtonbench.dataset import open_dataset
    from newtonbench.video import find_videos

    ds = open_dataset(cfg.bench)
    device = resolve_device(cfg.device)
    selection = ds.select(cfg.primitives, cfg.splits, cfg.distributions)
    if len(selection) == 0:
        raise InvalidValueError(
            f"no clip of {cfg.bench} matches primitives={cfg.primitives} splits={cfg.splits} "
            f"distributions={cfg.distributions}")
    videos = find_videos(cfg.videos)
    known = set(ds.manifest["clip_id"])
    unmatched = sorted(s for s in videos if s not in known)
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (f" ... ({len(unmatched)} in all)" if len(unmatched) > 10 else "")
        log.warning("%d file(s) in %s match no clip of the benchmark: %s", len(unmatched), cfg.videos, shown)
    wanted = list(selection["clip_id"])
    if not any(c in videos for c in wanted):
        raise NoMatchError(
            f"no video in {cfg.videos} is named after a selected clip (file stem = clip id, e.g. {wanted[0]}.mp4)")
    need_plate = cfg.extractor.mode == "plate"

    rows: list[dict] = []
    batch: list[_Prepared] = []
    rates: collections.Counter = collections.Counter()  # (video fps, benchmark fps) of the scored clips

    def flush():
        if not batch:
            return
        rates.update((round(p.video_fps, 2), float(p.clip["fps"])) for p in batch)
        groups: dict[tuple, list[_Prepared]] = collections.defaultdict(list)
        for p in batch:
            groups[len(p.bench_times)].append(p)
        for members in groups.values():
            for p, metrics in zip(members, _compute(members, cfg)):
                rows.append(_row(p.clip, cfg, "ok", "", metrics))
        batch.clear()

    workers = cfg.workers or default_workers()
    window = max(2 * workers, 2 * cfg.batch_size)
    # The clips run in parallel, one per worker thread: the libraries' own thread pools would only
    # fight them for the cores. Measured on 2 cores: torch's intra-op threads, on a CPU, made the
    # run 1.6x slower; OpenCV's (then running the extractor's morphology; now its PNG decoding and
    # erosions) cost ~3% more CPU time (median of 8 paired runs; 6 of 8 pairs), the same wall time.
    # Both restored afterwards.
    import cv2

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    cv2.setNumThreads(1)
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        _run_clips(ds, cfg, device, wanted, videos, need_plate, workers, window, rows, batch, flush, progress)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)

    results = pd.DataFrame(rows).sort_values("clip_id", kind="stable").reset_index(drop=True)
    summary = summarize(results, cfg, ds, device, rates)
    if cfg.fps is None:
        _warn_frame_rates(rates)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_results(results, out / "results.parquet", cfg.pisa_compatible)
    write_json(out / "summary.json", summary)
    return ScoreResult(results, summary, out, unmatched)


def _warn_frame_rates(rates: collections.Counter) -> None:
    """A warning where scored videos play at another rate than their clips: right for a model that
    renders at its own rate (the times are resampled), wrong where the file stores another rate
    than the frames were made at, which scales every acceleration by the square of the ratio."""
    off = {key: n for key, n in rates.items() if abs(key[0] / key[1] - 1.0) > 0.01}
    if not off:
        return
    seen = ", ".join(f"{v:g} fps x{n}" for (v, _), n in sorted(off.items(), key=lambda kv: -kv[1])[:5])
    bench = "/".join(f"{b:g}" for b in sorted({b for _, b in off}))
    log.warning(
        "%d of %d scored videos play at a frame rate other than their clip's %s fps (%s): their frame times "
        "come from the files. If the model made its frames at the benchmark's rate and the file stores another "
        "(a GIF keeps whole-centisecond delays, so 16 fps is stored as 16.67), pass --fps: a wrong rate scales "
        "accel_ratio by its square", sum(off.values()), sum(rates.values()), bench, seen)


def score_arrays(ds, clip_id: str, frames: np.ndarray, fps: float, cfg: ScoreConfig | None = None,
                 device: str | torch.device = "cpu") -> dict:
    """Score one clip given its generated frames in memory (uint8 [N, h, w, 3] at `fps`): the same
    path as `score` without files. Returns the results row (status, status_detail, metric columns).

    For notebooks, rewards checks and tests that build videos on the fly.
    """
    cfg = cfg or ScoreConfig(videos=".", bench=str(ds.root), out=".", model="arrays")
    clip = ds.clip(clip_id)
    item = _load(ds, clip, cfg.extractor.mode == "plate")
    item.frames = np.asarray(frames)
    item.times = np.arange(len(frames)) / float(fps)
    item.fps = float(fps)
    out = _prepare(item, cfg.extractor, torch.device(device), cfg.pisa_compatible, cfg.max_lost_fraction,
                   cfg.flow != "none")
    if isinstance(out, tuple):
        return _row(clip, cfg, out[0], out[1], None)
    return _row(clip, cfg, "ok", "", _compute([out], cfg)[0])


def write_results(results, path: Path, pisa: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [(c, pa.string()) for c in schema.RESULTS_ID_COLUMNS]
    fields += [(c, pa.float64()) for c in info.METRIC_COLUMNS + (info.PISA_COLUMNS if pisa else ())]
    fields += [(c, pa.float64()) for c in schema.RESULTS_TRUTH_COLUMNS]
    s = pa.schema(fields)
    table = pa.Table.from_pandas(results[[f[0] for f in fields]], schema=s, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# --- summary ------------------------------------------------------------------------------------

def bootstrap_ci(values: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95):
    """Percentile bootstrap CI of the mean; (nan, nan) for fewer than 2 values or n_boot = 0."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or n_boot == 0:
        return math.nan, math.nan
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _aggregate(df, columns, n_boot: int, seed_key: list[int]) -> dict:
    ok = df[df["status"] == "ok"]
    out = {"n": len(df), "n_ok": len(ok), "coverage": (len(ok) / len(df)) if len(df) else None, "metrics": {}}
    for j, c in enumerate(columns):
        vals = ok[c].dropna().to_numpy(dtype=np.float64) if c in ok else np.zeros(0)
        # One generator per (group, metric): the CI does not depend on which groups were selected.
        rng = np.random.default_rng(seed_key + [j])
        lo, hi = bootstrap_ci(vals, n_boot, rng)
        out["metrics"][c] = {"mean": float(vals.mean()) if len(vals) else None,
                             "ci_low": None if math.isnan(lo) else lo, "ci_high": None if math.isnan(hi) else hi,
                             "n": len(vals)}
    return out


def summarize(results, cfg: ScoreConfig, ds, device, rates: collections.Counter | None = None) -> dict:
    """summary.json (layout in schema.py); `rates` counts the scored clips by (video fps, benchmark fps)."""
    columns = info.METRIC_COLUMNS + (info.PISA_COLUMNS if cfg.pisa_compatible else ())
    groups = []
    for (prim, dist), df in results.groupby(["primitive", "distribution"], sort=True):
        key = [cfg.seed, schema.PRIMITIVES.index(prim) if prim in schema.PRIMITIVES else 99,
               schema.DISTRIBUTIONS.index(dist) if dist in schema.DISTRIBUTIONS else 99]
        groups.append({"primitive": prim, "distribution": dist, **_aggregate(df, columns, cfg.bootstrap, key)})
    counts = {s: int((results["status"] == s).sum()) for s in schema.STATUSES}
    manifest = ds.manifest
    prim_versions = {}
    if "primitive_version" in manifest:
        for p, v in manifest.groupby("primitive")["primitive_version"].first().items():
            prim_versions[p] = int(v)
    card = cfg.card
    return {
        "format_version": schema.RESULTS_FORMAT_VERSION,
        "newtonbench_version": newtonbench.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": {"name": cfg.model, "card": card},
        "benchmark": {"path": str(Path(cfg.bench).resolve()), "manifest_sha256": ds.manifest_sha256,
                      "dataset_format_version": str(ds.info.get("format_version")),
                      "newtonbench_version": ds.info.get("newtonbench_version"),
                      "primitive_versions": prim_versions},
        "metrics": info.declarations(columns),
        "status_counts": counts,
        "video_frame_rates": [{"video_fps": v, "benchmark_fps": b, "n": n} for (v, b), n in sorted((rates or {}).items())],
        "statuses": dict(schema.STATUSES),
        "groups": groups,
        "overall": _aggregate(results, columns, cfg.bootstrap, [cfg.seed, 100, 100]),
        "config": cfg.to_json(),
        "seed": cfg.seed,
        "device": str(device),
        "package_versions": _package_versions(),
    }


def _package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("torch", "numpy", "av", "opencv-python-headless", "pyarrow", "pandas"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out

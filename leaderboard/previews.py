"""Short looping previews of example clips for the page: small animated WebP files beside index.html.

Animated WebP (PyAV's libwebp_anim encoder) plays in every current browser through a plain <img>, loops by
itself, needs no codec licence and no script, and is several times smaller than a GIF of the same clip.
The videos are found through the paths the score run recorded (summary.json "config", "benchmark"): they
are only shown, never measured.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from newtonbench.atomic import atomic_path
from newtonbench.errors import InvalidValueError, NewtonBenchError
from newtonbench.schema import parse_clip_id

log = logging.getLogger(__name__)

MAX_SIDE = 128  # px: a preview is a thumbnail, the numbers are in the table
MAX_FRAMES = 48


def slug(name: str) -> str:
    """A file-system-safe, unique folder name for a model (its name may hold any character)."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "model"
    return f"{base}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def encode_preview(video: Path, out: Path, fps_hint: float | None = None, max_side: int = MAX_SIDE) -> Path:
    """Decode `video` (any format newtonbench reads) and write a looping animated WebP thumbnail to `out`."""
    import av
    import cv2

    from newtonbench.video import read_video

    clip = read_video(video, fps_hint=fps_hint)
    frames = clip.frames
    step = max(1, int(np.ceil(len(frames) / MAX_FRAMES)))
    frames = frames[::step]
    h, w = frames.shape[1:3]
    scale = min(1.0, max_side / max(h, w))
    # Even sizes: the encoder works in 4:2:0.
    nw, nh = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    rate = Fraction(clip.fps / step).limit_denominator(1000) if clip.fps > 0 else Fraction(8)
    with atomic_path(out, suffix=".webp") as tmp, av.open(str(tmp), mode="w", format="webp") as container:
        stream = container.add_stream("libwebp_anim", rate=rate)
        stream.width, stream.height, stream.pix_fmt = nw, nh, "yuv420p"
        stream.options = {"loop": "0", "quality": "75"}
        for f in frames:
            small = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA) if (nw, nh) != (w, h) else f
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def _listing(videos_dir: Path) -> dict[str, Path]:
    from newtonbench.video import find_videos

    return find_videos(videos_dir) if videos_dir.is_dir() else {}


def _bench(path):
    """The benchmark the runs were scored on, through the dataset API; None (with a warning) if gone."""
    if not path:
        return None
    try:
        from newtonbench.dataset import open_dataset

        return open_dataset(path)
    except (NewtonBenchError, ImportError) as e:
        log.warning("no ground-truth previews: benchmark %s cannot be opened (%s)", path, e)
        return None


def _videos_dir(run) -> Path | None:
    config = run.summary.get("config") or {}
    for key in ("videos", "videos_dir", "VIDEOS"):
        if config.get(key):
            return Path(config[key])
    return None


def _well_formed(cid: str) -> bool:
    try:
        parse_clip_id(cid)
    except InvalidValueError:
        return False
    return True


def pick_clips(lb, runs, per_primitive: int) -> list[dict]:
    """Example clips: per primitive, the first clip ids (ID before OOD) scored "ok" for the most models."""
    import pandas as pd

    frames = [r.results[["clip_id", "primitive", "distribution", "status", "split"]].assign(model=r.model) for r in runs]
    df = pd.concat(frames, ignore_index=True)
    # Clip ids become file names: only well-formed ones (no path separators, no '..') are used.
    df = df[df["clip_id"].astype(str).map(_well_formed)]
    if lb.split != "all":
        df = df[df["split"] == lb.split]
    ok = df[df["status"] == "ok"].groupby(["primitive", "distribution", "clip_id"])["model"].nunique()
    ok = ok.rename("n_ok").reset_index()
    ok["dist_order"] = ok["distribution"].map({d: i for i, d in enumerate(lb.distributions)})
    picked = []
    for p in lb.primitives:
        sub = ok[ok["primitive"] == p].sort_values(["n_ok", "dist_order", "clip_id"], ascending=[False, True, True])
        for row in sub.head(per_primitive).itertuples():
            picked.append({"clip_id": row.clip_id, "primitive": p, "distribution": row.distribution})
    return picked


def make_previews(lb, runs, site: Path, per_primitive: int = 1, progress: bool = True) -> list[dict]:
    """Write previews under SITE/previews/ and return, per example clip, the relative paths of its
    ground-truth and per-model previews (None where the video is not available)."""
    from tqdm import tqdm

    if per_primitive <= 0:
        return []
    examples = pick_clips(lb, runs, per_primitive)
    bench = _bench(lb.benchmark.get("path"))
    folders = {m.name: [d for r in runs if r.model == m.name and (d := _videos_dir(r))] for m in lb.models}
    listings = {d: _listing(d) for ds in folders.values() for d in ds}  # one directory scan per folder
    # Under each preview, what the scorer said about that clip (first run of the model that has it).
    verdicts: dict[tuple[str, str], str] = {}
    for r in runs:
        cols = [c for c in ("clip_id", "status", "accel_ratio") if c in r.results]
        for row in r.results[cols].itertuples(index=False):
            if (r.model, row.clip_id) not in verdicts:
                ratio = getattr(row, "accel_ratio", None)
                ok = row.status == "ok" and ratio is not None and math.isfinite(ratio)
                verdicts[(r.model, row.clip_id)] = f"a / a_true = {ratio:.2f}" if ok else str(row.status)
    jobs = []
    for ex in examples:
        cid = ex["clip_id"]
        ex["truth"] = None
        ex["models"] = [None] * len(lb.models)
        ex["verdicts"] = [verdicts.get((m.name, cid), "") for m in lb.models]
        if bench is not None:
            src = bench.video_path(cid)
            if src.exists():
                jobs.append((ex, None, src, site / "previews" / "ground-truth" / f"{cid}.webp"))
        for i, m in enumerate(lb.models):
            # Any of the model's runs whose videos are still where the scorer read them.
            src = next((listings[d][cid] for d in folders[m.name] if cid in listings[d]), None)
            if src is not None:
                jobs.append((ex, i, src, site / "previews" / slug(m.name) / f"{cid}.webp"))
    fps = None
    if bench is not None and len(bench.manifest):
        fps = float(bench.manifest["fps"].iloc[0])
    for ex, i, src, dst in tqdm(jobs, desc="previews", unit="clip", disable=not progress):
        try:
            encode_preview(src, dst, fps_hint=fps)
        except NewtonBenchError as e:  # an unreadable video: no preview, the table already has its status
            log.warning("no preview for %s: %s", src, e)
            continue
        rel = dst.relative_to(site).as_posix()
        if i is None:
            ex["truth"] = rel
        else:
            ex["models"][i] = rel
    return examples

"""The dataset writer: specs -> simulation -> rendering -> DATA/ (DESIGN.md, "Dataset on disk").

Resumable and worker-count independent:
- each clip draws from its own Generator (sampling.clip_rng), so its content is fixed by
  (seed, primitive, split, distribution, index) alone;
- each clip's files are written atomically, its manifest row and trajectory rows last, as a JSON
  shard under DATA/.shards/ that marks the clip finished; a rerun skips finished clips;
- the tables are consolidated from the shards at the end, sorted by clip_id, streamed in batches
  (memory stays flat in the number of clips), and dataset.json is written last.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import newtonbench
from newtonbench import atomic
from newtonbench.camera import Camera
from newtonbench.dataset import encode_masks
from newtonbench.errors import InvalidValueError, check_range
from newtonbench.schema import (
    DATASET_FORMAT_VERSION,
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_NUM_FRAMES,
    DEFAULT_WIDTH,
    DISTRIBUTIONS,
    GRAVITY,
    MANIFEST_SCHEMA,
    PRIMITIVES,
    SPLITS,
    TRAJECTORY_SCHEMA,
    clip_id,
)

log = logging.getLogger(__name__)

SHARDS = ".shards"
BATCH_CLIPS = 512  # clips per parquet write while consolidating
PRESETS = {
    # NewtonBench-60K (arXiv 2512.00425): per primitive 10,000 train and 2,000 test clips; the test
    # split holds ID and OOD halves.
    "newtonbench-60k": {("train", "id"): 10_000, ("test", "id"): 1_000, ("test", "ood"): 1_000},
}
# Columns beyond MANIFEST_SCHEMA: how the clip looks and was made (readers may ignore them).
EXTRA_MANIFEST = [("colour", "string"), ("object_texture", "string"), ("floor_texture", "string"),
                  ("backdrop_texture", "string"), ("hfov_deg", "float64"), ("renderer", "string"),
                  ("stop_time_s", "float64")]


@dataclass(frozen=True)
class GenerateConfig:
    out: Path
    primitives: tuple[str, ...] = PRIMITIVES
    splits: tuple[str, ...] = SPLITS
    distributions: tuple[str, ...] = DISTRIBUTIONS
    num_clips: int = 8  # per (primitive, split, distribution) group
    seed: int = 0
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    fps: float = float(DEFAULT_FPS)
    num_frames: int = DEFAULT_NUM_FRAMES
    workers: int = 1
    renderer: str = "tiny"
    gravity: float = GRAVITY
    object_name: str | None = None  # force one object for every clip (tests, demos); None = the pools
    preset: str | None = None
    counts: dict = field(default_factory=dict)  # (split, distribution) -> clips; filled from preset

    def __post_init__(self):
        from newtonbench.generators.objects import check_object
        from newtonbench.generators.primitives.base import get_primitive

        object.__setattr__(self, "out", Path(self.out))
        for p in self.primitives:
            get_primitive(p)  # unknown names: UnknownNameError with a suggestion
        for s in self.splits:
            if s not in SPLITS:
                raise InvalidValueError(f"split {s!r} is unknown; allowed: {', '.join(SPLITS)}")
        for d in self.distributions:
            if d not in DISTRIBUTIONS:
                raise InvalidValueError(f"distribution {d!r} is unknown; allowed: {', '.join(DISTRIBUTIONS)}")
        if self.splits == ("train",) and self.distributions == ("ood",):
            raise InvalidValueError("split 'train' with distribution 'ood' is empty: OOD clips exist only in the "
                                    "test split; allowed: --split test or --distribution id")
        check_range("num_clips", self.num_clips, 1, 999_999)
        check_range("width", self.width, 2, 8192)
        check_range("height", self.height, 2, 8192)
        if self.width % 2 or self.height % 2:
            raise InvalidValueError(f"resolution {self.width}x{self.height}; allowed: even width and height (H.264)")
        check_range("fps", self.fps, 0.0, 1000.0, low_open=True)
        check_range("num_frames", self.num_frames, 3, 100_000)
        check_range("workers", self.workers, 1, 1024)
        check_range("gravity", self.gravity, 0.0, 100.0, low_open=True)
        check_range("seed", self.seed, 0, 2**63 - 1)
        if self.renderer not in ("tiny", "egl"):
            raise InvalidValueError(f"renderer {self.renderer!r} is unknown; allowed: tiny, egl")
        if self.object_name is not None:
            check_object(self.object_name)
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise InvalidValueError(f"preset {self.preset!r} is unknown; allowed: {', '.join(PRESETS)}")
            object.__setattr__(self, "counts", dict(PRESETS[self.preset]))

    def groups(self) -> list[tuple[str, str, str, int]]:
        """(primitive, split, distribution, number of clips); OOD clips exist only in the test split."""
        out = []
        for prim in self.primitives:
            for split in self.splits:
                for dist in self.distributions:
                    if split == "train" and dist == "ood":
                        continue
                    n = self.counts.get((split, dist), 0 if self.counts else self.num_clips)
                    if n:
                        out.append((prim, split, dist, n))
        return out

    def tasks(self) -> list[tuple[str, str, str, int]]:
        return [(p, s, d, i) for p, s, d, n in self.groups() for i in range(n)]

    def fingerprint(self, primitive: str) -> dict:
        """What a clip's content depends on besides its id: a shard made under another one is redone."""
        from newtonbench.generators.primitives.base import get_primitive

        return {"seed": self.seed, "width": self.width, "height": self.height, "fps": self.fps,
                "num_frames": self.num_frames, "renderer": self.renderer, "gravity": self.gravity,
                "object_name": self.object_name, "primitive_version": get_primitive(primitive).version}

    def to_json(self) -> dict:
        # Neither the folder nor the worker count changes the data: leave them out, so that the
        # same dataset made anywhere, with any --workers, has the same dataset.json.
        d = dataclasses.asdict(self)
        d.pop("out")
        d.pop("workers")
        d["counts"] = {f"{s}-{t}": n for (s, t), n in self.counts.items()}
        return d


# --- one clip, in memory --------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    clip_id: str
    spec: object
    scene: object
    camera: Camera
    trajectory: object  # primitives.base.Trajectory
    frames: np.ndarray  # uint8 [T, H, W, 3]
    masks: np.ndarray  # uint8 [T, H, W]
    background: np.ndarray  # uint8 [H, W, 3]
    manifest_row: dict
    trajectory_rows: dict  # column -> list


def build_clip(config: GenerateConfig, primitive: str, split: str, distribution: str, index: int,
               renderer=None, timings: dict | None = None) -> Clip:
    """Sample, simulate, place the camera, render: everything about one clip, nothing written.
    `timings`, if given, accumulates seconds spent in "sim" and "render"."""
    import time

    from newtonbench.generators.objects import get_object
    from newtonbench.generators.primitives.base import get_primitive
    from newtonbench.generators.renderers import get_renderer
    from newtonbench.generators.renderers.base import radius
    from newtonbench.generators.sampling import clip_rng, sample_spec
    from newtonbench.generators.scenes import describe, place_camera, sample_scene

    cid = clip_id(primitive, split, distribution, index)
    prim = get_primitive(primitive)
    rng = clip_rng(config.seed, primitive, split, distribution, index)
    spec = sample_spec(primitive, split, distribution, rng, seed=config.seed, gravity=config.gravity, fps=config.fps,
                       num_frames=config.num_frames, aspect=config.width / config.height,
                       object_name=config.object_name)
    scene = sample_scene(rng, split)
    # The camera comes from the nominal-gravity path, so a counterfactual --gravity shows the very
    # same scene and first frame as the real clip of the same seed.
    t0 = time.perf_counter()
    nominal = spec if spec.gravity == GRAVITY else dataclasses.replace(spec, gravity=GRAVITY)
    traj_nominal = prim.simulate(nominal)
    traj = traj_nominal if nominal is spec else prim.simulate(spec)
    camera = place_camera(scene, traj_nominal.position, radius(spec), config.width, config.height)
    t1 = time.perf_counter()
    rendered = (renderer or get_renderer(config.renderer)).render(spec, traj, scene, camera)
    if timings is not None:
        timings["sim"] = timings.get("sim", 0.0) + t1 - t0
        timings["render"] = timings.get("render", 0.0) + time.perf_counter() - t1

    uv = camera.project(traj.position)
    visible = rendered.masks.reshape(len(rendered.masks), -1).any(axis=1)
    surface = "wall" if prim.use == "ramp" else "floor"
    prompt = describe(scene, get_object(spec.object).noun, spec.object_size_m, prim.phrase(spec), surface)
    params = prim.manifest_params(spec)
    a0 = traj.accel[0]
    row = {
        "clip_id": cid, "primitive": primitive, "primitive_version": prim.version, "split": split,
        "distribution": distribution, "seed": int(config.seed), "fps": float(spec.fps),
        "num_frames": int(spec.num_frames), "width": camera.width, "height": camera.height,
        "video": f"videos/{cid}.mp4", "first_frame": f"first_frames/{cid}.png", "mask": f"masks/{cid}.npz",
        "background": f"backgrounds/{cid}.png", "prompt": prompt, "gravity": float(spec.gravity),
        "object": spec.object, "object_size_m": float(spec.object_size_m), "mass_kg": float(spec.mass_kg),
        **{k: (None if v is None else float(v)) for k, v in params.items()},
        "accel_x": float(a0[0]), "accel_z": float(a0[2]),
        "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy,
        "world_to_camera": [float(v) for v in camera.world_to_camera],
        "motion_plane_depth_m": float(camera.to_camera(np.array([0.0, 0.0, 0.0]))[2]),
        "colour": scene.colour_name, "object_texture": scene.object_texture.family,
        "floor_texture": scene.floor_texture.family, "backdrop_texture": scene.backdrop_texture.family,
        "hfov_deg": float(scene.hfov_deg), "renderer": config.renderer,
        "stop_time_s": float(prim.stop_time(spec)) if hasattr(prim, "stop_time") else None,
    }
    n = traj.num_frames
    rows = {
        "clip_id": [cid] * n, "frame": list(range(n)), "t": traj.t.tolist(),
        "x": traj.position[:, 0].tolist(), "y": traj.position[:, 1].tolist(), "z": traj.position[:, 2].tolist(),
        "vx": traj.velocity[:, 0].tolist(), "vy": traj.velocity[:, 1].tolist(), "vz": traj.velocity[:, 2].tolist(),
        "ax": traj.accel[:, 0].tolist(), "az": traj.accel[:, 2].tolist(),
        "u": uv[:, 0].tolist(), "v": uv[:, 1].tolist(),
        "visible": visible.tolist(), "in_contact": traj.in_contact.tolist(),
    }
    return Clip(cid, spec, scene, camera, traj, rendered.frames, rendered.masks, rendered.background, row, rows)


# --- writing ----------------------------------------------------------------------------------------

_RENDERER = None  # one renderer per worker process


def clip_paths(root: Path, cid: str) -> dict[str, Path]:
    return {
        "video": root / "videos" / f"{cid}.mp4",
        "first_frame": root / "first_frames" / f"{cid}.png",
        "background": root / "backgrounds" / f"{cid}.png",
        "mask": root / "masks" / f"{cid}.npz",
        "shard": root / SHARDS / f"{cid}.json",
    }


def is_done(config: GenerateConfig, cid: str, primitive: str) -> bool:
    paths = clip_paths(config.out, cid)
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        shard = json.loads(paths["shard"].read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return shard.get("fingerprint") == json.loads(json.dumps(config.fingerprint(primitive)))


def _png_bytes(rgb: np.ndarray) -> bytes:
    """Lossless PNG, written for fast reading: the scorer decodes two per clip. zlib level 1 with
    the "up" row filter (where this OpenCV has the option): measured on the bench's 256x256 first
    frames and plates against OpenCV's default settings, 2.1x faster to decode (0.23 vs 0.49 ms) and
    27% smaller (7.4 vs 10.2 KB), about the same time to encode (~0.5 ms)."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:  # pragma: no cover - encoding a uint8 array cannot fail short of memory
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_clip(config: GenerateConfig, clip: Clip, timings: dict | None = None) -> None:
    """Write one clip's files; `timings`, if given, accumulates "encode" (H.264) and "write" (the rest)."""
    import time

    from newtonbench.video import write_video

    paths = clip_paths(config.out, clip.clip_id)
    t0 = time.perf_counter()
    write_video(paths["video"], clip.frames, fps=config.fps)
    t1 = time.perf_counter()
    atomic.write_bytes(paths["first_frame"], _png_bytes(clip.frames[0]))
    atomic.write_bytes(paths["background"], _png_bytes(clip.background))
    atomic.write_bytes(paths["mask"], encode_masks(clip.masks))
    # The shard goes last: its presence marks the clip finished.
    shard = {"fingerprint": config.fingerprint(clip.manifest_row["primitive"]), "manifest": clip.manifest_row,
             "trajectory": clip.trajectory_rows}
    atomic.write_text(paths["shard"], json.dumps(shard))
    if timings is not None:
        timings["encode"] = timings.get("encode", 0.0) + t1 - t0
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - t1


def _work(args) -> str:
    global _RENDERER
    config, task = args
    from newtonbench.generators.renderers import get_renderer

    if _RENDERER is None or _RENDERER.name != config.renderer:
        _RENDERER = get_renderer(config.renderer)
    clip = build_clip(config, *task, renderer=_RENDERER)
    write_clip(config, clip)
    return clip.clip_id


def check_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidValueError(f"--out {str(out)!r} is a file; allowed: a folder (new or existing)")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidValueError(f"--out {str(out)!r} is not writable (no write permission on {str(probe)!r})")


def generate(config: GenerateConfig, progress: bool = True) -> Path:
    """Generate (or finish) the dataset described by `config`; returns its folder."""
    from tqdm.auto import tqdm

    from newtonbench.generators.renderers import get_renderer

    check_output_dir(config.out)
    get_renderer(config.renderer)  # fail before anything is written if it cannot run here
    config.out.mkdir(parents=True, exist_ok=True)
    for sub in ("videos", "first_frames", "backgrounds", "masks", SHARDS):
        (config.out / sub).mkdir(exist_ok=True)
    atomic.remove_stale_temps(config.out)

    tasks = config.tasks()
    todo = [t for t in tasks if not is_done(config, clip_id(*t), t[0])]
    log.info("%d clips, %d already finished, %d to make", len(tasks), len(tasks) - len(todo), len(todo))
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="generate", unit="clip", disable=not progress)
    try:
        if config.workers == 1 or len(todo) <= 1:
            for t in todo:
                _work((config, t))
                bar.update()
        else:
            import multiprocessing as mp

            # spawn, not fork: the parent may hold torch or pybullet state that must not be copied.
            with mp.get_context("spawn").Pool(config.workers) as pool:
                for _ in pool.imap_unordered(_work, [(config, t) for t in todo], chunksize=1):
                    bar.update()
    finally:
        bar.close()
    consolidate(config, [clip_id(*t) for t in tasks])
    return config.out


def _arrow_schema(base, extra: Iterable[tuple[str, str]] = ()):
    import pyarrow as pa

    return pa.schema(list(base) + [pa.field(n, getattr(pa, t)()) for n, t in extra])


def consolidate(config: GenerateConfig, clip_ids: list[str]) -> None:
    """Shards -> manifest.parquet, trajectories.parquet (sorted by clip_id), then dataset.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = config.out
    mschema = _arrow_schema(MANIFEST_SCHEMA, EXTRA_MANIFEST)
    tschema = _arrow_schema(TRAJECTORY_SCHEMA)
    counts: dict[str, int] = {}
    ids = sorted(clip_ids)
    with (atomic.atomic_path(root / "manifest.parquet") as mtmp,
          atomic.atomic_path(root / "trajectories.parquet") as ttmp,
          pq.ParquetWriter(mtmp, mschema) as mw, pq.ParquetWriter(ttmp, tschema) as tw):
        for start in range(0, len(ids), BATCH_CLIPS):
            mrows, tcols = [], {n: [] for n in tschema.names}
            for cid in ids[start:start + BATCH_CLIPS]:
                shard = json.loads((root / SHARDS / f"{cid}.json").read_text())
                mrows.append(shard["manifest"])
                for n in tschema.names:
                    tcols[n].extend(shard["trajectory"][n])
                m = shard["manifest"]
                key = f"{m['primitive']}/{m['split']}/{m['distribution']}"
                counts[key] = counts.get(key, 0) + 1
            mw.write_table(pa.Table.from_pylist(mrows, schema=mschema))
            tw.write_table(pa.Table.from_pydict(tcols, schema=tschema))
    atomic.write_json(root / "dataset.json", dataset_info(config, counts, len(ids)))


def dataset_info(config: GenerateConfig, counts: dict, total: int) -> dict:
    from newtonbench.generators.objects import pool
    from newtonbench.generators.primitives.base import get_primitive
    from newtonbench.generators.scenes import BACKDROP_TEXTURES, FLOOR_TEXTURES, OBJECT_TEXTURES

    prims = {}
    for name in config.primitives:
        prim = get_primitive(name)
        prims[name] = {"version": prim.version, "description": prim.description,
                       "ranges": {d: {k: [r.low, r.high] for k, r in rs.items()} for d, rs in prim.ranges.items()}}
    return {
        "format_version": DATASET_FORMAT_VERSION,
        "newtonbench_version": newtonbench.__version__,
        "generator": "newtonbench.generators",
        "config": config.to_json(),
        "gravity": config.gravity,
        "num_clips": total,
        "counts": dict(sorted(counts.items())),
        "primitives": prims,
        "objects": {s: {u: pool(s, u) for u in ("flight", "ramp")} for s in SPLITS},
        "textures": {"object": OBJECT_TEXTURES, "floor": FLOOR_TEXTURES, "backdrop": BACKDROP_TEXTURES},
        "masks": ("masks/<clip_id>.npz, key 'packed': np.packbits of the uint8 [T, H, W] masks (1 = visible object "
                  "pixel) along W, key 'width': W"),
        "conventions": "world metres, z up, motion plane y = 0; camera OpenCV pinhole, world_to_camera row-major",
    }

"""The data contracts between stages (DESIGN.md): clip ids, dataset tables, score results.

Every stage reads only what the stage before wrote, so these column lists are the interface.
Writers add columns freely; readers rely only on the columns listed here.
"""

from __future__ import annotations

import re

import pyarrow as pa

from newtonbench.errors import InvalidValueError

# 3: masks bit-packed inside the object's box over all frames (dataset.encode_masks). Still read:
# format 2 (bit-packed over the whole frame) and format 1 (one byte per mask pixel).
DATASET_FORMAT_VERSION = "3"
READABLE_FORMAT_VERSIONS = ("1", "2", "3")
RESULTS_FORMAT_VERSION = "1"

PRIMITIVES = ("free_fall", "horizontal_throw", "parabolic_throw", "ramp_down", "ramp_up")
SPLITS = ("train", "test")
DISTRIBUTIONS = ("id", "ood")

DEFAULT_WIDTH = 256
DEFAULT_HEIGHT = 256
DEFAULT_FPS = 16
DEFAULT_NUM_FRAMES = 32
GRAVITY = 9.81

# Status of a scored clip. "ok" is the only status with metric values; every other one has nulls.
STATUSES = {
    "ok": "scored",
    "missing_video": "no video in VIDEOS has this clip's id as its file stem",
    "unreadable": "the file exists but cannot be decoded (corrupt, truncated, not a video)",
    "too_few_frames": "fewer than 3 frames fall on the benchmark's time grid (no acceleration)",
    "object_not_found": "the object cannot be found in the first frame",
    "object_lost": "the object is lost in too many frames to fit a trajectory",
}

_CLIP_ID = re.compile(r"^(?P<primitive>[a-z_]+)-(?P<split>train|test)-(?P<distribution>id|ood)-(?P<index>\d{6})$")


def clip_id(primitive: str, split: str, distribution: str, index: int) -> str:
    """`<primitive>-<split>-<distribution>-<index:06d>`, e.g. `free_fall-test-id-000042`."""
    if split not in SPLITS or distribution not in DISTRIBUTIONS or not 0 <= index < 1_000_000:
        raise InvalidValueError(f"clip id parts {primitive!r}, {split!r}, {distribution!r}, {index!r} are invalid")
    return f"{primitive}-{split}-{distribution}-{index:06d}"


def parse_clip_id(cid: str) -> dict:
    m = _CLIP_ID.match(cid)
    if not m:
        raise InvalidValueError(f"clip id {cid!r} is malformed; allowed: <primitive>-<split>-<distribution>-<6 digits>")
    d = m.groupdict()
    d["index"] = int(d["index"])
    return d


# --- DATA/manifest.parquet: one row per clip ---------------------------------------------------
MANIFEST_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("primitive", pa.string()),
        ("primitive_version", pa.int32()),
        ("split", pa.string()),
        ("distribution", pa.string()),
        ("seed", pa.int64()),
        ("fps", pa.float64()),
        ("num_frames", pa.int32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("video", pa.string()),  # relative to DATA/
        ("first_frame", pa.string()),
        ("mask", pa.string()),
        ("background", pa.string()),  # clean background plate (PNG), the scene without the object
        ("prompt", pa.string()),
        ("gravity", pa.float64()),
        ("object", pa.string()),
        ("object_size_m", pa.float64()),
        ("mass_kg", pa.float64()),
        ("height_m", pa.float64()),
        ("speed_mps", pa.float64()),
        ("launch_angle_deg", pa.float64()),
        ("ramp_angle_deg", pa.float64()),
        ("friction", pa.float64()),
        ("accel_x", pa.float64()),  # analytic world acceleration in the motion plane (m/s^2),
        ("accel_z", pa.float64()),  # valid between contacts; for ramp_up the first (upward) phase
        ("fx", pa.float64()),
        ("fy", pa.float64()),
        ("cx", pa.float64()),
        ("cy", pa.float64()),
        ("world_to_camera", pa.list_(pa.float64(), 16)),
        ("motion_plane_depth_m", pa.float64()),
    ]
)

# --- DATA/trajectories.parquet: one row per (clip, frame) ---------------------------------------
TRAJECTORY_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("frame", pa.int32()),
        ("t", pa.float64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("z", pa.float64()),
        ("vx", pa.float64()),
        ("vy", pa.float64()),
        ("vz", pa.float64()),
        ("ax", pa.float64()),  # analytic acceleration in force at this frame (m/s^2)
        ("az", pa.float64()),
        ("u", pa.float64()),
        ("v", pa.float64()),
        ("visible", pa.bool_()),
        ("in_contact", pa.bool_()),
    ]
)

# --- RESULTS/results.parquet: one row per clip ---------------------------------------------------
# Identity columns, then one column per metric (names from metrics' declarations), then the truth
# the leaderboard plots against (accel_true_*). Metric columns are null unless status == "ok".
RESULTS_ID_COLUMNS = ("model", "clip_id", "primitive", "split", "distribution", "status", "status_detail")
RESULTS_TRUTH_COLUMNS = ("accel_true_x", "accel_true_z")

# RESULTS/summary.json keys (lm-evaluation-harness style, self-describing):
# {
#   "format_version": "1", "newtonbench_version": "...", "created": ISO time,
#   "model": {"name": ..., "card": {...} | null},
#   "benchmark": {"path": ..., "manifest_sha256": ..., "dataset_format_version": ..., "primitive_versions": {...}},
#   "metrics": {name: {"unit", "higher_is_better", "range", "version", "description"}},
#   "status_counts": {status: n},
#   "video_frame_rates": [{"video_fps", "benchmark_fps", "n"}]  (scored clips by nominal rate, 0.01 fps),
#   "groups": [{"primitive", "distribution", "n", "n_ok", "coverage",
#               "metrics": {name: {"mean", "ci_low", "ci_high", "n"}}}],
#   "overall": {"n", "n_ok", "coverage", "metrics": {...same...}},
#   "config": {...every score option...}, "seed": int, "package_versions": {...}
# }

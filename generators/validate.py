"""`newtonbench validate DIR`: is this dataset complete, readable and physically right?

Checks, per clip: the manifest and trajectory schemas; counts against dataset.json; every file
present and decodable at the right size and length; (u, v) equal to the projection of (x, y, z)
through the stored camera (0.5 px); `visible` equal to the mask having pixels; the stored analytic
acceleration equal to the primitive's law recomputed from the manifest's parameters; and physics: a
quadratic fit of x(t) and z(t) over every run of at least MIN_RUN frames without contact and with
one analytic acceleration must match that acceleration within 1%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from newtonbench.errors import DatasetError

ACCEL_RTOL = 0.01
ACCEL_ATOL = 1e-3  # m/s^2, for phases at rest (analytic acceleration 0)
UV_TOL_PX = 0.5
MIN_RUN = 4


@dataclass
class ClipCheck:
    clip_id: str
    group: str
    problems: list[str] = field(default_factory=list)
    accel_rel_err: float = float("nan")
    uv_err_px: float = float("nan")

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Report:
    root: Path
    dataset_problems: list[str]
    clips: list[ClipCheck]

    @property
    def ok(self) -> bool:
        return not self.dataset_problems and all(c.ok for c in self.clips)

    def table(self) -> str:
        groups: dict[str, list[ClipCheck]] = {}
        for c in self.clips:
            groups.setdefault(c.group, []).append(c)
        head = f"{'group':<34} {'clips':>6} {'ok':>6} {'max |Δa|/a':>11} {'max uv px':>10}  status"
        lines = [head, "-" * len(head)]
        for g in sorted(groups):
            cs = groups[g]
            n_ok = sum(c.ok for c in cs)
            acc = np.nanmax([c.accel_rel_err for c in cs]) if any(np.isfinite(c.accel_rel_err) for c in cs) else np.nan
            uv = np.nanmax([c.uv_err_px for c in cs]) if any(np.isfinite(c.uv_err_px) for c in cs) else np.nan
            status = "ok" if n_ok == len(cs) else "FAIL"
            lines.append(f"{g:<34} {len(cs):>6} {n_ok:>6} {acc:>11.2e} {uv:>10.2e}  {status}")
        for p in self.dataset_problems:
            lines.append(f"dataset: {p}")
        bad = [c for c in self.clips if not c.ok]
        for c in bad[:20]:
            lines.append(f"{c.clip_id}: {'; '.join(c.problems)}")
        if len(bad) > 20:
            lines.append(f"... and {len(bad) - 20} more failing clips")
        lines.append(f"{'PASSED' if self.ok else 'FAILED'}: {sum(c.ok for c in self.clips)}/{len(self.clips)} clips ok")
        return "\n".join(lines)


def fit_accel(t: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Least-squares constant acceleration of positions [N, D] at times t [N]: 2 x the t^2 coefficient."""
    t = t - t[0]
    a = np.stack([np.ones_like(t), t, t**2], axis=1)
    coef, *_ = np.linalg.lstsq(a, pos, rcond=None)
    return 2.0 * coef[2]


def free_runs(in_contact: np.ndarray, accel: np.ndarray, min_len: int = MIN_RUN) -> list[slice]:
    """Maximal runs of frames with no contact and one analytic acceleration, at least min_len long."""
    runs, i, n = [], 0, len(in_contact)
    while i < n:
        if in_contact[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not in_contact[j + 1] and np.array_equal(accel[j + 1], accel[i]):
            j += 1
        if j - i + 1 >= min_len:
            runs.append(slice(i, j + 1))
        i = j + 1
    return runs


def first_phase_law(row) -> np.ndarray | None:
    """The primitive's analytic acceleration (x, z) at t = 0, recomputed from the manifest's own
    parameters (gravity, ramp angle, friction), independently of the generator's code."""
    import math

    g = float(row.gravity)
    if row.primitive in ("free_fall", "horizontal_throw", "parabolic_throw"):
        return np.array([0.0, -g])
    if row.primitive in ("ramp_down", "ramp_up"):
        th, mu = math.radians(float(row.ramp_angle_deg)), float(row.friction)
        sign = -1.0 if row.primitive == "ramp_down" else 1.0
        return -g * (math.sin(th) + sign * mu * math.cos(th)) * np.array([math.cos(th), math.sin(th)])
    return None


def check_physics(traj) -> tuple[float, list[str]]:
    """Worst relative acceleration error over the clip's free runs, and problems found."""
    t = traj["t"].to_numpy()
    pos = traj[["x", "z"]].to_numpy()
    acc = traj[["ax", "az"]].to_numpy()
    contact = traj["in_contact"].to_numpy().astype(bool)
    worst, problems = 0.0, []
    runs = free_runs(contact, acc)
    if not runs:
        return float("nan"), [f"no run of {MIN_RUN}+ contact-free frames to check the law on"]
    for r in runs:
        fitted, truth = fit_accel(t[r], pos[r]), acc[r][0]
        err = float(np.linalg.norm(fitted - truth))
        rel = err / max(float(np.linalg.norm(truth)), 1e-12)
        if float(np.linalg.norm(truth)) > 0:
            worst = max(worst, rel)
        if err > ACCEL_RTOL * float(np.linalg.norm(truth)) + ACCEL_ATOL:
            problems.append(f"frames {r.start}-{r.stop - 1}: fitted a=({fitted[0]:.4f}, {fitted[1]:.4f}) m/s^2, "
                            f"law ({truth[0]:.4f}, {truth[1]:.4f})")
    return worst, problems


def validate(root: str | Path, check_files: bool = True, progress: bool = False) -> Report:
    from tqdm.auto import tqdm

    from newtonbench.dataset import open_dataset
    from newtonbench.video import VideoReadError, read_video

    root = Path(root)
    ds = open_dataset(root)  # schema and format version; DatasetError if they are wrong
    problems: list[str] = []
    man = ds.manifest
    if man["clip_id"].duplicated().any():
        problems.append(f"duplicate clip ids: {sorted(man.loc[man['clip_id'].duplicated(), 'clip_id'])[:5]}")
    if int(ds.info.get("num_clips", -1)) != len(man):
        problems.append(f"dataset.json says {ds.info.get('num_clips')} clips, manifest has {len(man)}")
    counts = man.groupby(["primitive", "split", "distribution"]).size()
    have = {f"{p}/{s}/{d}": int(n) for (p, s, d), n in counts.items()}
    if have != {k: int(v) for k, v in ds.info.get("counts", {}).items()}:
        problems.append(f"counts per group {have} differ from dataset.json {ds.info.get('counts')}")
    extra = set(ds.trajectories["clip_id"].unique()) - set(man["clip_id"])
    if extra:
        problems.append(f"{len(extra)} trajectory clips are not in the manifest, e.g. {min(extra)}")

    checks = []
    for row in tqdm(man.itertuples(index=False), total=len(man), desc="validate", unit="clip", disable=not progress):
        cid = row.clip_id
        c = ClipCheck(cid, f"{row.primitive}/{row.split}/{row.distribution}")
        checks.append(c)
        try:
            traj = ds.trajectory(cid)
        except DatasetError as e:
            c.problems.append(str(e))
            continue
        n, h, w = int(row.num_frames), int(row.height), int(row.width)
        if len(traj) != n or not np.array_equal(traj["frame"].to_numpy(), np.arange(n)):
            c.problems.append(f"trajectory has frames {traj['frame'].tolist()[:3]}... ({len(traj)}), expected 0..{n - 1}")
            continue
        cam = ds.camera(cid)
        uv = cam.project(traj[["x", "y", "z"]].to_numpy())
        c.uv_err_px = float(np.abs(uv - traj[["u", "v"]].to_numpy()).max())
        if not c.uv_err_px <= UV_TOL_PX:
            c.problems.append(f"stored (u, v) is {c.uv_err_px:.3f} px from the projection of (x, y, z)")
        c.accel_rel_err, phys = check_physics(traj)
        c.problems += phys
        law = first_phase_law(row)
        stored = np.array([row.accel_x, row.accel_z, traj["ax"].iloc[0], traj["az"].iloc[0]], dtype=float)
        if law is None:
            c.problems.append(f"unknown primitive {row.primitive!r}: no law to check against")
        elif not np.allclose(stored, np.r_[law, law], rtol=1e-9, atol=1e-12):
            c.problems.append(f"stored acceleration {stored[:2].round(4).tolist()} is not the law of {row.primitive} "
                              f"with the manifest's parameters, {law.round(4).tolist()}")
        if not check_files:
            continue
        try:
            video = read_video(ds.video_path(cid), fps_hint=float(row.fps))
            if video.frames.shape[:3] != (n, h, w):
                c.problems.append(f"video is {video.frames.shape[:3]}, expected ({n}, {h}, {w})")
        except VideoReadError as e:
            c.problems.append(str(e))
        for name, getter in (("first frame", ds.first_frame), ("background", ds.background)):
            try:
                img = getter(cid)
                if img.shape != (h, w, 3):
                    c.problems.append(f"{name} is {img.shape}, expected ({h}, {w}, 3)")
            except DatasetError as e:
                c.problems.append(str(e))
        try:
            masks = ds.masks(cid)
            if masks.shape != (n, h, w):
                c.problems.append(f"masks are {masks.shape}, expected ({n}, {h}, {w})")
            elif not np.array_equal(masks.reshape(n, -1).any(1), traj["visible"].to_numpy()):
                c.problems.append("`visible` disagrees with the masks")
        except DatasetError as e:
            c.problems.append(str(e))
    return Report(root, problems, checks)

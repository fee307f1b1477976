"""Drawing a clip's Spec: per-clip random state, ID/OOD parameters, object, size, mass.

Every clip has its own Generator seeded from (seed, primitive, split, distribution, index), so a
clip's content depends on nothing else: not on the number of workers, not on the order clips run
in, not on which other clips are generated alongside it.

The object's size is not drawn in metres but relative to the view: the camera backs off until the
whole path is in view (scenes.place_camera), so a fixed size in metres shrinks to a few pixels on
the long paths of OOD throws and falls. A clip draws instead the fraction of the view's width its
silhouette spans (APPARENT_SIZE), and the size in metres follows from the framed extent of its path
(`fit_object_size`). `object_size_m` stays the object's true size: the physics and the renderer use it.
"""

from __future__ import annotations

import math

import numpy as np

from newtonbench.errors import InvalidValueError
from newtonbench.generators.objects import body_extents, check_object, get_object, pool, silhouette_fraction
from newtonbench.generators.primitives.base import Range, Spec, get_primitive
from newtonbench.schema import DISTRIBUTIONS, GRAVITY, PRIMITIVES, SPLITS

# The object's silhouette (equivalent diameter, 2 sqrt(area / pi)) over the view's width, at the
# widest frame margin and field of view: a narrower one only makes it larger. Mask-based scoring
# (IoU, chamfer, centroid tracking) needs at least 1/16 of the width (16 px at 256). The low end,
# 0.085 (22 px at 256), leaves room for what the analytic sizing does not see: PyBullet draws a
# capsule about 5% smaller in area than its true outline, and an object that tips over or rolls
# after landing widens the framed path by up to about 10% (measured: every frame of every clip
# spans at least 0.84x its drawn fraction).
APPARENT_SIZE = Range(0.085, 0.11)
# Sanity limits on the size that follows; the lower one also keeps Bullet's collision margins small
# next to the object. The upper one never binds at the documented ranges and clip lengths.
OBJECT_SIZE_LIMITS_M = (0.1, 5.0)
MASS_KG = Range(0.1, 2.0)
# Bound on the draws made to find a flight object that starts above the floor (see sample_spec).
MAX_DRAWS = 1000


def clip_rng(seed: int, primitive: str, split: str, distribution: str, index: int) -> np.random.Generator:
    key = [int(seed), PRIMITIVES.index(primitive), SPLITS.index(split), DISTRIBUTIONS.index(distribution), int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def fit_object_size(primitive: str, params: dict, object_name: str, fraction: float, *, fps: float,
                    num_frames: int, aspect: float = 1.0) -> float:
    """The size (largest extent, metres) at which the object's silhouette spans `fraction` of the
    view's width, the view being the one scenes.place_camera frames around the path at the widest
    frame margin: width = margin * max(path x extent + 2 r, (path z extent + 2 r) * aspect, min),
    r the object's bounding radius. Both sides grow with the size; the solution is in closed form
    per term, the largest one wins. The path is the primitive's analytic one at g = 9.81
    (`framing_path`), so a counterfactual gravity keeps the size; it depends on the size only
    through where a flight lands (a larger object lands earlier), which a few fixed-point steps settle.
    """
    from newtonbench.generators.scenes import FRAME_MARGIN, HFOV_DEG, MIN_VIEW_HALF_WIDTH_M

    prim = get_primitive(primitive)
    unit = body_extents(get_object(object_name), 1.0)
    k = silhouette_fraction(object_name)  # equivalent diameter / size
    rho = float(np.linalg.norm(unit) / 2)  # bounding radius / size
    m = FRAME_MARGIN[1]
    # The camera stands back by r more than the framed width needs (its near side is r closer),
    # which widens the view in the motion plane by 2 r tan(hfov / 2): at most this much.
    tan_half = math.tan(math.radians(HFOV_DEG[1]) / 2)
    t = np.arange(num_frames) / fps
    lo, hi = OBJECT_SIZE_LIMITS_M

    def solve(extent: float, scale: float) -> float:
        # k s = fraction * (m * (extent + 2 rho s) * scale + 2 rho s tan_half), for s. The guard only
        # matters for very wide images, where the object's own bounding box fixes the view height.
        denom = max(k - 2 * fraction * rho * (m * scale + tan_half), 0.25 * k)
        return fraction * m * extent * scale / denom

    size = lo
    for _ in range(50):
        path = prim.framing_path(params, unit[2] / 2 * size, t)
        ex, ez = np.ptp(path[:, 0]), np.ptp(path[:, 2])
        new = max(solve(ex, 1.0), solve(ez, aspect), solve(2 * MIN_VIEW_HALF_WIDTH_M, 1.0))
        new = min(max(new, lo), hi)
        if abs(new - size) <= 1e-9:
            break
        size = new
    return float(new)


def sample_spec(primitive: str, split: str, distribution: str, rng: np.random.Generator, *, seed: int,
                gravity: float = GRAVITY, fps: float = 16.0, num_frames: int = 32, aspect: float = 1.0,
                object_name: str | None = None) -> Spec:
    """Draw a Spec. `object_name` forces the object (the draw is still made, so that every other
    draw is the same as without it; the size, which follows the object's shape, is not); otherwise
    it comes from the split's pool for the primitive. `aspect` is the image's width / height.

    A flight object must start above the floor; a large one on a long path from a low launch
    height would not (it cannot be made smaller without shrinking below APPARENT_SIZE): such
    draws are redrawn whole, from the same generator, so the result stays deterministic."""
    prim = get_primitive(primitive)
    names = pool(split, prim.use)
    if object_name is not None:
        obj = check_object(object_name)
        if obj.use != prim.use:
            allowed = ", ".join(n for n in _all_names() if get_object(n).use == prim.use)
            raise InvalidValueError(f"object {object_name!r} cannot be used for {primitive}; allowed: {allowed}")
    for _ in range(MAX_DRAWS):
        params = prim.sample_params(rng, distribution)
        drawn = names[int(rng.integers(len(names)))]
        if object_name is not None:
            drawn = object_name
        fraction = APPARENT_SIZE.draw(rng)
        mass = MASS_KG.draw(rng)
        size = fit_object_size(primitive, params, drawn, fraction, fps=fps, num_frames=num_frames, aspect=aspect)
        half_height = body_extents(get_object(drawn), size)[2] / 2
        if "height_m" not in params or half_height + 0.01 <= params["height_m"]:
            return prim.spec_cls(seed=seed, object=drawn, object_size_m=size, mass_kg=mass, gravity=gravity,
                                 fps=fps, num_frames=num_frames, **params)
    raise RuntimeError(f"no {primitive} draw in {MAX_DRAWS} fits its object above the floor")  # pragma: no cover


def _all_names() -> list[str]:
    from newtonbench.generators.objects import OBJECTS

    return OBJECTS.names()

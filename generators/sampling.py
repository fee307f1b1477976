"""Drawing a clip's Spec: per-clip random state, ID/OOD parameters, object, size, mass.

Every clip has its own Generator seeded from (seed, primitive, split, distribution, index), so a
clip's content depends on nothing else: not on the number of workers, not on the order clips run
in, not on which other clips are generated alongside it.
"""

from __future__ import annotations

import numpy as np
from newtonbench.generators.objects import check_object, get_object, pool
from newtonbench.generators.primitives.base import Range, Spec, get_primitive

from newtonbench.errors import InvalidValueError
from newtonbench.schema import DISTRIBUTIONS, GRAVITY, PRIMITIVES, SPLITS

OBJECT_SIZE_M = Range(0.15, 0.35)
MASS_KG = Range(0.1, 2.0)


def clip_rng(seed: int, primitive: str, split: str, distribution: str, index: int) -> np.random.Generator:
    key = [int(seed), PRIMITIVES.index(primitive), SPLITS.index(split), DISTRIBUTIONS.index(distribution), int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def sample_spec(primitive: str, split: str, distribution: str, rng: np.random.Generator, *, seed: int,
                gravity: float = GRAVITY, fps: float = 16.0, num_frames: int = 32,
                object_name: str | None = None) -> Spec:
    """Draw a Spec. `object_name` forces the object (the draw is still made, so that every other
    value is the same as without it); otherwise it comes from the split's pool for the primitive."""
    prim = get_primitive(primitive)
    params = prim.sample_params(rng, distribution)
    names = pool(split, prim.use)
    drawn = names[int(rng.integers(len(names)))]
    if object_name is not None:
        obj = check_object(object_name)
        if obj.use != prim.use:
            allowed = ", ".join(n for n in _all_names() if get_object(n).use == prim.use)
            raise InvalidValueError(f"object {object_name!r} cannot be used for {primitive}; allowed: {allowed}")
        drawn = object_name
    size = OBJECT_SIZE_M.draw(rng)
    mass = MASS_KG.draw(rng)
    return prim.spec_cls(seed=seed, object=drawn, object_size_m=size, mass_kg=mass, gravity=gravity, fps=fps,
                         num_frames=num_frames, **params)


def _all_names() -> list[str]:
    from newtonbench.generators.objects import OBJECTS

    return OBJECTS.names()

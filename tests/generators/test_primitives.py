"""Every primitive, both distributions: the simulated ground truth obeys its closed-form law."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from newtonbench.errors import InvalidValueError, UnknownNameError
from newtonbench.generators.primitives.base import PRIMITIVES, get_primitive, primitive_names
from newtonbench.generators.sampling import clip_rng, sample_spec
from newtonbench.generators.validate import fit_accel, free_runs
from newtonbench.schema import PRIMITIVES as SCHEMA_PRIMITIVES

CASES = [(p, d) for p in SCHEMA_PRIMITIVES for d in ("id", "ood")]


def _spec(primitive, distribution, index=0, **kw):
    prim = get_primitive(primitive)
    obj = "sphere" if prim.use == "flight" else "crate"
    rng = clip_rng(7, primitive, "test", distribution, index)
    return sample_spec(primitive, "test", distribution, rng, seed=7, object_name=obj, **kw)


def _law(spec) -> np.ndarray:
    """The closed-form acceleration (x, z) of the first phase, written out independently."""
    g = spec.gravity
    if spec.__class__.__name__ in ("FreeFallSpec", "HorizontalThrowSpec", "ParabolicThrowSpec"):
        return np.array([0.0, -g])
    th = math.radians(spec.ramp_angle_deg)
    sign = -1.0 if spec.__class__.__name__ == "RampDownSpec" else 1.0
    mag = g * (math.sin(th) + sign * spec.friction * math.cos(th))
    return -mag * np.array([math.cos(th), math.sin(th)])


def test_registry_matches_schema_and_suggests():
    assert primitive_names() == list(SCHEMA_PRIMITIVES)
    assert len(PRIMITIVES) == 5
    with pytest.raises(UnknownNameError, match="did you mean 'free_fall'"):
        get_primitive("fre_fall")


@pytest.mark.parametrize("primitive,distribution", CASES)
def test_fitted_acceleration_matches_law_within_1_percent(primitive, distribution):
    spec = _spec(primitive, distribution)
    traj = get_primitive(primitive).simulate(spec)
    law = _law(spec)
    pos = traj.position[:, [0, 2]]
    acc = traj.accel[:, [0, 2]]
    runs = free_runs(traj.in_contact, acc)
    assert runs, "no contact-free run to fit"
    first = runs[0]
    assert first.start == 0 and first.stop - first.start >= 4
    fitted = fit_accel(traj.t[first], pos[first])
    assert np.linalg.norm(fitted - law) <= 0.01 * np.linalg.norm(law), (fitted, law)
    np.testing.assert_allclose(acc[0], law, rtol=1e-12)


@pytest.mark.parametrize("primitive,distribution", CASES)
def test_sampled_parameters_lie_in_their_documented_ranges(primitive, distribution):
    prim = get_primitive(primitive)
    for i in range(5):
        spec = _spec(primitive, distribution, index=i)
        for name, r in prim.ranges[distribution].items():
            assert r.low <= getattr(spec, name) <= r.high, (name, getattr(spec, name), r)


def test_ood_shifts_height_speed_friction_beyond_id():
    def beyond(p, k):
        rid, rood = get_primitive(p).ranges["id"][k], get_primitive(p).ranges["ood"][k]
        return rood.low > rid.high or rood.high < rid.low

    for p in ("free_fall", "horizontal_throw", "parabolic_throw"):
        assert beyond(p, "height_m")
    for p in ("horizontal_throw", "parabolic_throw", "ramp_up"):
        assert beyond(p, "speed_mps")
    for p in ("ramp_down", "ramp_up"):
        assert beyond(p, "friction")


def test_free_fall_lands_at_the_analytic_time():
    spec = dataclasses.replace(_spec("free_fall", "id"), height_m=1.5, object_size_m=0.2)
    traj = get_primitive("free_fall").simulate(spec)
    t_land = math.sqrt(2 * (1.5 - 0.1) / spec.gravity)  # centre falls height - radius
    first_contact = int(np.argmax(traj.in_contact))
    assert traj.in_contact[first_contact] and not traj.in_contact[:first_contact].any()
    assert first_contact == math.ceil(t_land * spec.fps)
    # Before landing the height is Bullet's semi-implicit Euler sum, h - g dt^2 k (k + 1) / 2 after k
    # steps = h - g t (t + dt) / 2: the closed form plus a term linear in t (so the fit is exact).
    t = traj.t[:first_contact]
    np.testing.assert_allclose(traj.position[:first_contact, 2], 1.5 - 0.5 * spec.gravity * t * (t + spec.dt),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("primitive", ["ramp_down", "ramp_up"])
def test_ramp_objects_slide_without_rotating_and_stay_on_the_ramp(primitive):
    for obj in ("block", "can", "drum", "slab"):
        spec = dataclasses.replace(_spec(primitive, "id"), object=obj)
        traj = get_primitive(primitive).simulate(spec)
        np.testing.assert_allclose(traj.orientation, np.repeat(traj.orientation[:1], len(traj.t), 0), atol=1e-9)
        ramp = traj.ramp
        # Distance from the ramp's centre plane stays constant: the object never leaves the surface.
        off = (traj.position - np.asarray(ramp.centre)) @ ramp.normal
        assert np.ptp(off) < 1e-3
        along = (traj.position - np.asarray(ramp.centre)) @ ramp.up_slope
        assert np.all(np.abs(along) < ramp.half_extents[0])
        assert not traj.in_contact.any()


def test_ramp_up_slides_back_after_stopping():
    spec = dataclasses.replace(_spec("ramp_up", "id"), ramp_angle_deg=30.0, friction=0.2, speed_mps=2.0)
    prim = get_primitive("ramp_up")
    traj = prim.simulate(spec)
    s = (traj.position - traj.position[0]) @ traj.ramp.up_slope
    t_stop = prim.stop_time(spec)
    th = math.radians(30.0)
    np.testing.assert_allclose(t_stop, 2.0 / (9.81 * (math.sin(th) + 0.2 * math.cos(th))))
    after = traj.t > t_stop
    a_down = fit_accel(traj.t[after], s[after, None])[0]
    assert a_down == pytest.approx(-9.81 * (math.sin(th) - 0.2 * math.cos(th)), rel=0.01)
    # ax flips sign at the stop (up-slope deceleration, then down-slope acceleration: both point down).
    assert traj.accel[0, 0] < 0 and traj.accel[-1, 0] < 0 and traj.accel[0, 0] != traj.accel[-1, 0]


def test_gravity_override_changes_only_g():
    nominal = _spec("parabolic_throw", "id")
    moon = _spec("parabolic_throw", "id", gravity=1.62)
    assert dataclasses.replace(moon, gravity=nominal.gravity) == nominal
    traj = get_primitive("parabolic_throw").simulate(moon)
    r = free_runs(traj.in_contact, traj.accel[:, [0, 2]])[0]
    assert fit_accel(traj.t[r], traj.position[r][:, [0, 2]])[1] == pytest.approx(-1.62, rel=1e-3)


@pytest.mark.parametrize("g", [2.0, 4.0])
def test_counterfactual_low_gravity_keeps_ramp_up_on_its_ramp(g):
    nominal = dataclasses.replace(_spec("ramp_up", "ood"), ramp_angle_deg=15.0, friction=0.45, speed_mps=4.5)
    prim = get_primitive("ramp_up")
    low = prim.simulate(dataclasses.replace(nominal, gravity=g))
    assert low.ramp == prim.simulate(nominal).ramp  # the same scene
    along = (low.position - np.asarray(low.ramp.centre)) @ low.ramp.up_slope
    assert np.all(np.abs(along) < low.ramp.half_extents[0]) and not low.in_contact.any()


def test_bad_specs_fail_with_one_line():
    spec = _spec("ramp_down", "id")
    with pytest.raises(InvalidValueError, match="friction"):
        dataclasses.replace(spec, ramp_angle_deg=20.0, friction=0.5)
    ff = _spec("free_fall", "id")
    with pytest.raises(InvalidValueError, match="height_m"):
        dataclasses.replace(ff, height_m=0.01)
    with pytest.raises(UnknownNameError, match="did you mean 'duck'"):
        dataclasses.replace(ff, object="dck")


def test_docs_table_lists_every_range():
    """README.md's primitive table is the documentation of the ranges: it must match the code."""
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "README.md").read_text()
    for name in primitive_names():
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        id_cell, ood_cell = row.split("|")[4], row.split("|")[5]
        for cell, dist in ((id_cell, "id"), (ood_cell, "ood")):
            for r in get_primitive(name).ranges[dist].values():
                assert str(r) in cell, (name, dist, str(r), cell)


def test_silhouette_fractions_have_their_closed_forms():
    from newtonbench.generators.objects import silhouette_fraction

    assert silhouette_fraction("sphere") == pytest.approx(1.0)
    assert silhouette_fraction("cube") == pytest.approx(2 / math.sqrt(math.pi))  # unit square
    assert silhouette_fraction("brick") == pytest.approx(2 * math.sqrt(0.45 / math.pi))  # 1 x 0.45 face
    r = 0.25  # capsule 1 tall, 0.5 wide: a 0.5 x 0.5 rectangle between two half discs
    assert silhouette_fraction("capsule") == pytest.approx(2 * math.sqrt((0.5 * 2 * r + math.pi * r * r) / math.pi))
    # A rasterised mesh: the soccer ball is a sphere, within the rasteriser's resolution.
    assert silhouette_fraction("soccer_ball") == pytest.approx(1.0, abs=0.01)


def test_object_size_spans_the_drawn_fraction_of_the_framed_view():
    """free_fall with a sphere, written out by hand: the view is margin * (fall + 2 r) wide (tall path,
    square image) plus 2 r tan(hfov / 2) (the camera stands r further back), the fall ends with the
    centre one radius above the floor, and the sphere's diameter is `fraction` of that view."""
    from newtonbench.generators.sampling import fit_object_size
    from newtonbench.generators.scenes import FRAME_MARGIN, HFOV_DEG

    m, tan_half, rho = FRAME_MARGIN[1], math.tan(math.radians(HFOV_DEG[1]) / 2), math.sqrt(3) / 2
    for h, f in ((3.0, 0.1), (1.5, 0.085)):
        s = fit_object_size("free_fall", {"height_m": h}, "sphere", f, fps=16.0, num_frames=32)
        fall = h - s / 2  # lands within the clip: sqrt(2 * 3 / 9.81) = 0.78 s < 1.94 s
        view = m * (fall + 2 * rho * s) + 2 * rho * s * tan_half
        assert s == pytest.approx(f * view, rel=1e-6)
    # A longer path, a larger object; a shorter clip (the fall cut at 0.25 s), a smaller one.
    long = fit_object_size("horizontal_throw", {"height_m": 3.0, "speed_mps": 5.0}, "sphere", 0.1, fps=16.0,
                           num_frames=32)
    short = fit_object_size("horizontal_throw", {"height_m": 3.0, "speed_mps": 5.0}, "sphere", 0.1, fps=16.0,
                            num_frames=5)
    assert long > s and short < long


def test_object_size_ignores_a_counterfactual_gravity():
    nominal = _spec("horizontal_throw", "ood")
    low = _spec("horizontal_throw", "ood", gravity=2.0)
    assert low.object_size_m == nominal.object_size_m and dataclasses.replace(low, gravity=9.81) == nominal

"""PyBullet simulation shared by the primitives: one DIRECT client per call, closed in `finally`.

Engine quirks handled here (DESIGN.md):
- PyBullet gives every body linear and angular damping 0.04 by default, which bends a free fall
  away from 9.81 m/s^2 within a second: both are set to 0.
- Bullet combines two bodies' friction coefficients by multiplying them: the ramp's is 1, so the
  pair's coefficient is exactly the object's `friction`.
- An object on a ramp must slide, not roll or tumble: its local inertia diagonal is set to 0, which
  Bullet reads as infinite rotational inertia (btRigidBody::setMassProps inverts only non-zero
  entries), and rolling/spinning friction are 0, so Coulomb friction acts on pure translation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from newtonbench.generators.objects import body_extents, create_shapes, get_object
from newtonbench.generators.primitives.base import Ramp, Spec, Trajectory

RAMP_THICKNESS = 0.08
FLOOR_FRICTION = 1.0
# Free-flight objects after landing: some friction and a little rolling resistance keep a ball from
# rolling out of the picture; none of it acts before the first contact.
FLIGHT_OBJECT_FRICTION = 0.8
FLIGHT_ROLLING_FRICTION = 0.1


def _connect():
    import pybullet as p

    return p, p.connect(p.DIRECT)


def _run(spec: Spec, p, client: int, body: int, ramp_body: int | None, accel_fn: Callable) -> Trajectory:
    """Step the world, sampling the state at every frame; contacts are checked at every physics step."""
    n, sub = spec.num_frames, spec.substeps
    pos = np.zeros((n, 3))
    vel = np.zeros((n, 3))
    orn = np.zeros((n, 4))
    contact = np.zeros(n, dtype=bool)

    def touching() -> bool:
        for c in p.getContactPoints(bodyA=body, physicsClientId=client):
            if ramp_body is not None and c[2] == ramp_body:
                continue
            # A point counts once it penetrates or pushes; Bullet also reports speculative points
            # up to 2 cm apart that exert no force.
            if c[8] <= 0.0 or c[9] > 0.0:
                return True
        return False

    p.performCollisionDetection(physicsClientId=client)
    for i in range(n):
        if i > 0:
            for _ in range(sub):
                p.stepSimulation(physicsClientId=client)
                contact[i] |= touching()
        else:
            contact[i] = touching()
        x, q = p.getBasePositionAndOrientation(body, physicsClientId=client)
        v, _ = p.getBaseVelocity(body, physicsClientId=client)
        pos[i], orn[i], vel[i] = x, q, v
    t = spec.times
    return Trajectory(t=t, position=pos, velocity=vel, orientation=orn, accel=accel_fn(t), in_contact=contact)


def _world(spec: Spec):
    p, client = _connect()
    p.setGravity(0.0, 0.0, -spec.gravity, physicsClientId=client)
    p.setTimeStep(spec.dt, physicsClientId=client)
    p.setPhysicsEngineParameter(numSubSteps=0, deterministicOverlappingPairs=1, physicsClientId=client)
    plane = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
    floor = p.createMultiBody(0.0, plane, physicsClientId=client)
    p.changeDynamics(floor, -1, lateralFriction=FLOOR_FRICTION, restitution=0.0, physicsClientId=client)
    return p, client


def _object(spec: Spec, p, client: int, position, orientation) -> int:
    obj = get_object(spec.object)
    col, _ = create_shapes(client, obj, spec.object_size_m, collision=True, visual=False)
    return p.createMultiBody(spec.mass_kg, col, -1, basePosition=list(position), baseOrientation=list(orientation),
                             physicsClientId=client)


def simulate_flight(spec: Spec, start: np.ndarray, velocity: np.ndarray) -> Trajectory:
    """A body released at `start` with `velocity`, under gravity only until it lands."""
    p, client = _world(spec)
    try:
        body = _object(spec, p, client, start, (0.0, 0.0, 0.0, 1.0))
        p.changeDynamics(body, -1, linearDamping=0.0, angularDamping=0.0, restitution=0.0,
                         lateralFriction=FLIGHT_OBJECT_FRICTION, rollingFriction=FLIGHT_ROLLING_FRICTION,
                         spinningFriction=FLIGHT_ROLLING_FRICTION, physicsClientId=client)
        p.resetBaseVelocity(body, list(velocity), [0.0, 0.0, 0.0], physicsClientId=client)

        def accel(t):
            a = np.zeros((len(t), 3))
            a[:, 2] = -spec.gravity
            return a

        return _run(spec, p, client, body, None, accel)
    finally:
        p.disconnect(client)


def object_half_height(spec: Spec) -> float:
    return float(body_extents(get_object(spec.object), spec.object_size_m)[2] / 2)


def layout_ramp(spec: Spec, angle_rad: float, s_low: float, s_high: float) -> tuple[Ramp, np.ndarray]:
    """A ramp long enough for the object's path s in [s_low, s_high] (metres along the slope from the
    start, + up) and the object's start position. The ramp's lower end rests on the floor; its upper
    end runs on well past the path, so a counterfactual lower gravity (down to g / 5) never throws the
    object off the top. A higher one can slide it off the bottom onto the floor: `in_contact` says so."""
    ext = body_extents(get_object(spec.object), spec.object_size_m)
    half_len, half_width, h = ext[0] / 2, ext[1] / 2, ext[2] / 2
    s_start = s_low - half_len - 0.1
    # The upper end runs far out of the picture: at a counterfactual g down to a fifth of 9.81 an
    # object launched up the slope climbs up to 5x as far, and must still find ramp under it.
    s_end = s_high + half_len + max(1.0, 4.0 * max(s_high, 0.0), 0.5 * (s_high - s_low))
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    d, n = np.array([c, 0.0, s]), np.array([-s, 0.0, c])
    t = RAMP_THICKNESS / 2
    # Lower end's bottom edge on the floor: z0 - (h + 2t) cos + s_start sin = 0.
    z0 = (h + 2 * t) * c - s_start * s
    start = np.array([0.0, 0.0, z0])
    centre = start - n * (h + t) + d * ((s_start + s_end) / 2)
    ramp = Ramp(angle_rad=angle_rad, centre=tuple(float(v) for v in centre),
                half_extents=(float((s_end - s_start) / 2), float(half_width + 0.05), float(t)))
    return ramp, start


def simulate_ramp(spec: Spec, ramp: Ramp, start: np.ndarray, speed_up_slope: float,
                  accel_fn: Callable) -> Trajectory:
    """A body resting on `ramp` at `start`, launched up the slope at `speed_up_slope` (0: released)."""
    p, client = _world(spec)
    try:
        box = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(ramp.half_extents), physicsClientId=client)
        ramp_body = p.createMultiBody(0.0, box, -1, basePosition=list(ramp.centre),
                                      baseOrientation=list(ramp.orientation), physicsClientId=client)
        p.changeDynamics(ramp_body, -1, lateralFriction=1.0, restitution=0.0, rollingFriction=0.0,
                         spinningFriction=0.0, physicsClientId=client)
        body = _object(spec, p, client, start, ramp.orientation)
        p.changeDynamics(body, -1, linearDamping=0.0, angularDamping=0.0, restitution=0.0,
                         lateralFriction=spec.friction, rollingFriction=0.0, spinningFriction=0.0,
                         localInertiaDiagonal=[0.0, 0.0, 0.0], physicsClientId=client)
        p.resetBaseVelocity(body, list(ramp.up_slope * speed_up_slope), [0.0, 0.0, 0.0], physicsClientId=client)
        traj = _run(spec, p, client, body, ramp_body, accel_fn)
        return Trajectory(t=traj.t, position=traj.position, velocity=traj.velocity, orientation=traj.orientation,
                          accel=traj.accel, in_contact=traj.in_contact, ramp=ramp)
    finally:
        p.disconnect(client)

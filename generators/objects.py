"""The objects a clip can show: PyBullet primitive shapes and meshes shipped in `pybullet_data`.

Every object is normalised so that its largest bounding-box extent equals the clip's
`object_size_m`, and its body origin (the point whose trajectory is the ground truth) sits at the
centre of its bounding box, which for the symmetric shapes is the centre of mass.

Train and test use disjoint object sets (DESIGN.md): each object belongs to exactly one split, and
ramps (which need a flat or round contact face) have their own pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from newtonbench.errors import UnknownNameError
from newtonbench.registry import Registry


@dataclass(frozen=True)
class ObjectDef:
    name: str
    noun: str  # used in prompts ("a small red <noun>")
    kind: str  # box | sphere | cylinder | capsule | mesh
    # Extents along the body's x, y, z (after `orientation_euler`) for unit size; the largest is 1.
    unit_extents: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mesh: str | None = None  # file inside pybullet_data
    textured: bool = True  # False for meshes without texture coordinates: plain colour only
    orientation_euler: tuple[float, float, float] = (0.0, 0.0, 0.0)  # mesh/shape -> z-up body frame
    split: str = "train"
    use: str = "flight"  # flight | ramp
    # Collide as this primitive shape instead of the mesh's convex hull ("sphere" for a ball mesh:
    # the same contact, without hulling thousands of vertices for every clip).
    collision_shape: str | None = None


OBJECTS: Registry[ObjectDef] = Registry("object")


def _add(o: ObjectDef) -> None:
    OBJECTS.register(o.name, o)


# Free-flight objects (free_fall, horizontal_throw, parabolic_throw).
_add(ObjectDef("sphere", "ball", "sphere", split="train"))
_add(ObjectDef("cube", "cube", "box", split="train"))
_add(ObjectDef("cylinder", "cylinder", "cylinder", (0.7, 0.7, 1.0), split="train"))
_add(ObjectDef("duck", "rubber duck", "mesh", mesh="duck.obj", orientation_euler=(np.pi / 2, 0.0, 0.0), split="train"))
# The torus file's axis is its y: unrotated, the ring faces the camera.
_add(ObjectDef("torus", "ring", "mesh", mesh="torus/torus_textured.obj", split="train"))
_add(ObjectDef("soccer_ball", "soccer ball", "mesh", mesh="soccerball.obj", split="test", collision_shape="sphere"))
_add(ObjectDef("capsule", "capsule", "capsule", (0.5, 0.5, 1.0), split="test"))
_add(ObjectDef("teddy", "teddy bear", "mesh", mesh="teddy2_VHACD_CHs.obj", textured=False,
               orientation_euler=(np.pi / 2, 0.0, 0.0), split="test"))
# Turned side-on (yaw pi/2): head-on, its long axis points at the camera and it shows half the area.
_add(ObjectDef("bunny", "bunny", "mesh", mesh="bunny.obj", textured=False,
               orientation_euler=(np.pi / 2, 0.0, np.pi / 2), split="test"))
_add(ObjectDef("long_box", "box", "box", (1.0, 0.5, 0.5), split="test"))
# Ramp objects: they slide (infinite rotational inertia, see simulation.py) on a flat face. None is
# round where it touches the ramp: a ball or a barrel on its side that slides without turning looks
# like one rolling, which obeys another law. Cylinders stand upright (axis along the ramp's normal).
_add(ObjectDef("block", "wooden block", "box", (1.0, 0.8, 0.8), split="train", use="ramp"))
_add(ObjectDef("brick", "brick", "box", (1.0, 0.5, 0.45), split="train", use="ramp"))
_add(ObjectDef("can", "can", "cylinder", (0.7, 0.7, 1.0), split="train", use="ramp"))
_add(ObjectDef("slab", "slab", "box", (1.0, 1.0, 0.3), split="test", use="ramp"))
_add(ObjectDef("drum", "drum", "cylinder", (1.0, 1.0, 0.65), split="test", use="ramp"))
_add(ObjectDef("crate", "crate", "box", (0.9, 0.9, 1.0), split="test", use="ramp"))


def get_object(name: str) -> ObjectDef:
    return OBJECTS.get(name)


def pool(split: str, use: str) -> list[str]:
    """Object names a clip of this split and kind (flight | ramp) draws from, in a fixed order."""
    return [n for n in OBJECTS if OBJECTS.get(n).split == split and OBJECTS.get(n).use == use]


def check_object(name: str) -> ObjectDef:
    if name not in OBJECTS:
        raise UnknownNameError("object", name, OBJECTS.names())
    return OBJECTS.get(name)


def data_path() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


@cache
def mesh_bounds(mesh: str) -> tuple[np.ndarray, np.ndarray]:
    """(centre, extents) of a pybullet_data mesh's vertices, in its file's units."""
    verts = []
    with open(data_path() / mesh) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
    v = np.asarray(verts)
    lo, hi = v.min(0), v.max(0)
    return (lo + hi) / 2.0, hi - lo


@cache
def silhouette_fraction(name: str) -> float:
    """Equivalent diameter of the object's silhouette seen by the benchmark camera (along world +y,
    before any rotation the motion adds), over `object_size_m`: 2 sqrt(area / pi) / size.

    The camera looks perpendicular to the motion plane, so this is the area of the body's x-z
    projection; a ramp's tilt is a rotation about y and leaves it unchanged. Primitive shapes have
    closed forms; meshes are rasterised (their triangles projected onto x-z and filled)."""
    obj = get_object(name)
    ext = body_extents(obj, 1.0)
    if obj.kind == "box":
        area = ext[0] * ext[2]
    elif obj.kind == "sphere":
        area = np.pi / 4
    elif obj.kind in ("cylinder", "capsule"):
        axis = _axis(obj)
        r = ext[[i for i in range(3) if i != axis]].max() / 2
        if axis == 1:  # along the line of sight: a disc
            area = np.pi * r * r
        else:  # a rectangle, with two half-disc caps for a capsule
            area = ext[0] * ext[2] if obj.kind == "cylinder" else (ext[axis] - 2 * r) * 2 * r + np.pi * r * r
    else:
        area = _mesh_silhouette_area(obj)
    return float(2.0 * np.sqrt(area / np.pi))


def _mesh_silhouette_area(obj: ObjectDef, res: int = 512) -> float:
    import cv2

    verts, faces = [], []
    with open(data_path() / obj.mesh) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                faces.append([int(t.split("/")[0]) for t in line.split()[1:]])
    v = np.asarray(verts)
    centre, ext = mesh_bounds(obj.mesh)
    r = _rot(obj.orientation_euler)
    scale = (np.abs(r) @ ext).max()
    xz = (((v - centre) @ r.T) / scale)[:, [0, 2]]  # unit size, centred
    pts = np.round((xz + 0.5) * (res - 1)).astype(np.int32)
    img = np.zeros((res, res), np.uint8)
    for face in faces:  # one call per face: a single call with all of them would XOR overlaps
        cv2.fillConvexPoly(img, pts[[i - 1 if i > 0 else len(v) + i for i in face]], 1)
    return float(img.sum()) / (res - 1) ** 2


def _axis(obj: ObjectDef) -> int:
    """Which body axis (0 x, 1 y, 2 z) a cylinder's or capsule's own axis (the shape's z) lies on."""
    return int(np.argmax(np.abs(_rot(obj.orientation_euler)[:, 2])))


def _rot(euler) -> np.ndarray:
    import pybullet as p

    return np.asarray(p.getMatrixFromQuaternion(p.getQuaternionFromEuler(euler))).reshape(3, 3)


def body_extents(obj: ObjectDef, size: float) -> np.ndarray:
    """Extents (x, y, z) of the object in its body frame, metres."""
    if obj.kind != "mesh":
        return np.asarray(obj.unit_extents) * size
    _, ext = mesh_bounds(obj.mesh)
    ext_body = np.abs(_rot(obj.orientation_euler)) @ ext
    return ext_body / ext_body.max() * size


def create_shapes(client: int, obj: ObjectDef, size: float, *, collision: bool, visual: bool,
                  rgba=(1.0, 1.0, 1.0, 1.0)) -> tuple[int, int]:
    """Create the collision and/or visual shape of `obj` scaled to `size`; -1 where not asked for."""
    import pybullet as p

    q = p.getQuaternionFromEuler(obj.orientation_euler)
    col = vis = -1
    if obj.kind == "mesh":
        centre, ext = mesh_bounds(obj.mesh)
        ext_body = np.abs(_rot(obj.orientation_euler)) @ ext
        s = size / ext_body.max()
        # Shift the mesh so the bounding-box centre is the body origin, then rotate it to z-up.
        offset = -(_rot(obj.orientation_euler) @ (centre * s))
        kw = {"fileName": str(data_path() / obj.mesh), "meshScale": [s, s, s]}
        if collision:
            col = p.createCollisionShape(p.GEOM_MESH, **kw, collisionFramePosition=offset.tolist(),
                                         collisionFrameOrientation=q, physicsClientId=client)
        if visual:
            vis = p.createVisualShape(p.GEOM_MESH, **kw, visualFramePosition=offset.tolist(),
                                      visualFrameOrientation=q, rgbaColor=rgba, physicsClientId=client)
        return col, vis
    ext = np.asarray(obj.unit_extents) * size
    if obj.kind == "box":
        args = {"shapeType": p.GEOM_BOX, "halfExtents": (ext / 2).tolist()}
        col_args, vis_args = args, args
    elif obj.kind == "sphere":
        col_args = vis_args = {"shapeType": p.GEOM_SPHERE, "radius": float(ext[0] / 2)}
    elif obj.kind in ("cylinder", "capsule"):
        # Bullet's cylinder/capsule axis is the shape's z; unit_extents are given after rotation.
        axis = _axis(obj)
        axis_len = float(ext[axis])
        radius = float(max(e for i, e in enumerate(ext) if i != axis) / 2)
        shape = p.GEOM_CYLINDER if obj.kind == "cylinder" else p.GEOM_CAPSULE
        # A capsule's `height` excludes its two hemispherical caps.
        height = axis_len if obj.kind == "cylinder" else axis_len - 2 * radius
        col_args = {"shapeType": shape, "radius": radius, "height": height}
        vis_args = {"shapeType": shape, "radius": radius, "length": height}
    else:  # pragma: no cover - the registry only holds the kinds above
        raise ValueError(obj.kind)
    if collision:
        col = p.createCollisionShape(**col_args, collisionFrameOrientation=q, physicsClientId=client)
    if visual:
        vis = p.createVisualShape(**vis_args, visualFrameOrientation=q, rgbaColor=rgba, physicsClientId=client)
    return col, vis

"""Fallback renderer: pybullet's TinyRenderer, pure software, for machines where MuJoCo cannot
open an OpenGL context (no EGL or OSMesa). Same picture plan as scene.py (capsule body, left
blue, right orange, checkered floor, contact discs), about a third of MuJoCo's speed.
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk
from myocli.render.scene import BONE_RADIUS, JOINT_RADIUS, SHADOW, _bone_colour

FOVY_DEGREES = 45.0


def _quaternion_from_z(direction: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) turning +z onto `direction` (pybullet's capsules lie along z)."""
    d = direction / max(np.linalg.norm(direction), 1e-12)
    axis = np.cross([0.0, 0.0, 1.0], d)
    sin, cos = np.linalg.norm(axis), d[2]
    if sin < 1e-9:
        return (1.0, 0.0, 0.0, 0.0) if cos < 0 else (0.0, 0.0, 0.0, 1.0)
    half = np.arctan2(sin, cos) / 2
    axis = axis / sin * np.sin(half)
    return (float(axis[0]), float(axis[1]), float(axis[2]), float(np.cos(half)))


class TinyBodyRenderer:
    def __init__(self, width: int, height: int):
        import pybullet as p
        import pybullet_data

        self.p, self.width, self.height = p, width, height
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        p.loadURDF("plane.urdf", physicsClientId=self.client)  # a checkered floor
        self.bones, self.lengths = [], []
        rest = sk.CANONICAL_BONE_LENGTHS
        for child in range(1, sk.NUM_JOINTS):
            length = float(rest[child - 1])
            shape = p.createVisualShape(p.GEOM_CAPSULE, radius=BONE_RADIUS, length=length, rgbaColor=_bone_colour(child),
                                        physicsClientId=self.client)  # fmt: skip
            self.bones.append(p.createMultiBody(baseVisualShapeIndex=shape, physicsClientId=self.client))
        self.joints = []
        for j in range(sk.NUM_JOINTS):
            radius = 0.1 if j == sk.JOINT_INDEX["head"] else JOINT_RADIUS
            shape = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=_bone_colour(j), physicsClientId=self.client)
            self.joints.append(p.createMultiBody(baseVisualShapeIndex=shape, physicsClientId=self.client))
        disc = p.createVisualShape(p.GEOM_CYLINDER, radius=0.3, length=0.002, rgbaColor=SHADOW, physicsClientId=self.client)
        self.disc = p.createMultiBody(baseVisualShapeIndex=disc, physicsClientId=self.client)
        self.projection = p.computeProjectionMatrixFOV(FOVY_DEGREES, width / height, 0.05, 100.0)

    def close(self) -> None:
        self.p.disconnect(self.client)

    def render(self, joints: np.ndarray, lookat: np.ndarray, distance: float, azimuth: float, elevation: float) -> np.ndarray:
        p = self.p
        for body, child in zip(self.bones, range(1, sk.NUM_JOINTS), strict=True):
            a, b = joints[sk.PARENTS[child]], joints[child]
            p.resetBasePositionAndOrientation(body, ((a + b) / 2).tolist(), _quaternion_from_z(b - a), physicsClientId=self.client)
        for body, point in zip(self.joints, joints, strict=True):
            p.resetBasePositionAndOrientation(body, point.tolist(), (0, 0, 0, 1), physicsClientId=self.client)
        p.resetBasePositionAndOrientation(self.disc, [joints[0][0], joints[0][1], 0.002], (0, 0, 0, 1), physicsClientId=self.client)
        az, el = np.radians(azimuth), np.radians(elevation)
        forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])  # MuJoCo's free camera
        eye = np.asarray(lookat) - distance * forward
        view = p.computeViewMatrix(eye.tolist(), list(lookat), [0, 0, 1])
        _, _, rgba, _, _ = p.getCameraImage(self.width, self.height, view, self.projection, renderer=p.ER_TINY_RENDERER,
                                            physicsClientId=self.client)  # fmt: skip
        return np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[..., :3].copy()

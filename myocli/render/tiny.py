"""Fallback renderer: pybullet's TinyRenderer, pure software, for machines where MuJoCo cannot
open an OpenGL context (no EGL or OSMesa). The picture follows scene.py (capsule body, left
blue, right orange, grey checkered floor, dark discs under the pelvis and the foot points) at
about half of MuJoCo's speed. Differences: bones are drawn at the myo28 canonical lengths
(pybullet cannot resize a shape), and the discs are opaque with fixed sizes (no alpha).
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
        import pybullet_data

        from myocli.gl import load_pybullet

        p = load_pybullet()

        self.p, self.width, self.height = p, width, height
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        floor = p.loadURDF("plane.urdf", physicsClientId=self.client)
        p.changeVisualShape(floor, -1, textureUniqueId=self._grey_checker(), rgbaColor=[1, 1, 1, 1], physicsClientId=self.client)
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
        dot = p.createVisualShape(p.GEOM_CYLINDER, radius=0.05, length=0.002, rgbaColor=SHADOW, physicsClientId=self.client)
        self.dots = [p.createMultiBody(baseVisualShapeIndex=dot, physicsClientId=self.client) for _ in sk.FOOT_CONTACT_JOINTS]
        self.projection = p.computeProjectionMatrixFOV(FOVY_DEGREES, width / height, 0.05, 100.0)

    def _grey_checker(self) -> int:
        """pybullet's own plane is blue and white, the colour of the left limbs: load a grey one."""
        import tempfile
        from pathlib import Path

        import imageio.v2 as imageio

        squares = (np.add.outer(np.arange(8), np.arange(8)) % 2).repeat(32, 0).repeat(32, 1)
        image = np.where(squares[..., None], 210, 158).repeat(3, axis=-1).astype(np.uint8)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "checker.png"
            imageio.imwrite(path, image)
            return self.p.loadTexture(str(path), physicsClientId=self.client)

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
        for dot, j in zip(self.dots, sk.FOOT_CONTACT_JOINTS, strict=True):
            p.resetBasePositionAndOrientation(dot, [joints[j][0], joints[j][1], 0.003], (0, 0, 0, 1), physicsClientId=self.client)
        az, el = np.radians(azimuth), np.radians(elevation)
        forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])  # MuJoCo's free camera
        eye = np.asarray(lookat) - distance * forward
        view = p.computeViewMatrix(eye.tolist(), list(lookat), [0, 0, 1])
        _, _, rgba, _, _ = p.getCameraImage(self.width, self.height, view, self.projection, renderer=p.ER_TINY_RENDERER,
                                            physicsClientId=self.client)  # fmt: skip
        return np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[..., :3].copy()

"""The picture: MuJoCo's offscreen renderer drawing a myo28 body as capsules on a checkered floor.

The model holds only the floor and the lights; the body is drawn each frame as extra
scene geoms (a capsule per bone, a sphere per joint), so any motion renders without
building a body model. Left limbs are blue, right limbs orange, the trunk grey; a soft dark
disc under the pelvis and a flat dark dot under each foot point show where the body meets
the floor (real shadow maps cost 4x the frame time on a CPU, measured in RESULTS.md).

Headless servers: MuJoCo needs an OpenGL context. MUJOCO_GL=egl uses Mesa's EGL (Debian:
libegl1, libegl-mesa0, libgl1-mesa-dri); MUJOCO_GL=osmesa uses libosmesa6. On Linux without
a display myo picks egl; where no GL context can be had, myocli.render.tiny takes over.
"""

from __future__ import annotations

import os

import numpy as np

from myocli import skeleton as sk
from myocli.errors import MyoError
from myocli.gl import choose_gl

LEFT = (0.25, 0.5, 0.95, 1.0)
RIGHT = (0.95, 0.55, 0.2, 1.0)
TRUNK = (0.75, 0.75, 0.78, 1.0)
SHADOW = (0.0, 0.0, 0.0, 0.35)
BONE_RADIUS = 0.035
JOINT_RADIUS = 0.045

_FLOOR = """
<mujoco>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>
    <quality shadowsize="2048"/>
  </visual>
  <asset>
    <texture type="skybox" builtin="gradient" rgb1="0.55 0.7 0.85" rgb2="0.95 0.95 0.97" width="256" height="256"/>
    <texture name="checker" type="2d" builtin="checker" rgb1="0.82 0.82 0.82" rgb2="0.62 0.62 0.64" width="512" height="512"/>
    <material name="floor" texture="checker" texrepeat="{repeat} {repeat}" reflectance="0"/>
  </asset>
  <worldbody>
    <light pos="0 0 6" dir="0 0 -1" diffuse="0.6 0.6 0.6" castshadow="false"/>
    <geom type="plane" size="{half} {half} 0.1" material="floor"/>
  </worldbody>
</mujoco>
"""


def _bone_colour(child: int) -> tuple:
    if child in sk.LEFT_JOINTS:
        return LEFT
    if child in sk.RIGHT_JOINTS:
        return RIGHT
    return TRUNK


class BodyRenderer:
    """Renders frames of one or more myo28 motions; one OpenGL context, reused for every frame."""

    def __init__(self, width: int, height: int, floor_half_size: float = 50.0):
        choose_gl()
        try:
            import mujoco
        except Exception as exc:  # noqa: BLE001 - not installed, or MUJOCO_GL names a backend that is missing
            raise MyoError(f"MuJoCo cannot be used here ({type(exc).__name__}: {exc})") from exc
        self.mujoco = mujoco
        xml = _FLOOR.format(width=width, height=height, half=floor_half_size, repeat=floor_half_size)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        try:
            self.renderer = mujoco.Renderer(self.model, height, width)
        except Exception as exc:  # noqa: BLE001 - every GL failure means the same thing to a user
            backend = os.environ.get("MUJOCO_GL", "default")
            raise MyoError(
                f"MuJoCo could not open an OpenGL context (MUJOCO_GL={backend}: {exc}). On a server without a display, "
                "install Mesa's EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) and set MUJOCO_GL=egl, or "
                "libosmesa6 and MUJOCO_GL=osmesa"
            ) from exc
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE

    def close(self) -> None:
        self.renderer.close()

    def _add(self, geom_type, size, pos, rgba):
        """Append a geom to this frame's scene; None when the scene is full."""
        scene = self.renderer.scene
        if scene.ngeom >= scene.maxgeom:
            return None
        geom = scene.geoms[scene.ngeom]
        self.mujoco.mjv_initGeom(geom, geom_type, np.asarray(size, dtype=np.float64), np.asarray(pos, dtype=np.float64),
                                 np.eye(3).reshape(-1), np.asarray(rgba, dtype=np.float32))  # fmt: skip
        scene.ngeom += 1
        return geom

    def _add_body(self, joints: np.ndarray) -> None:
        """joints (28, 3) in MuJoCo axes."""
        mj = self.mujoco
        for child in range(1, sk.NUM_JOINTS):
            bone = self._add(mj.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), _bone_colour(child))
            if bone is not None:
                mj.mjv_connector(bone, mj.mjtGeom.mjGEOM_CAPSULE, BONE_RADIUS, joints[sk.PARENTS[child]], joints[child])
        for j in range(sk.NUM_JOINTS):
            radius = 0.1 if j == sk.JOINT_INDEX["head"] else JOINT_RADIUS
            self._add(mj.mjtGeom.mjGEOM_SPHERE, (radius, radius, radius), joints[j], _bone_colour(j))
        # Contact cues: a soft disc under the pelvis, shrinking with height, and a dot under each foot point.
        pelvis = joints[0]
        disc = 0.35 / (1.0 + max(pelvis[2] - 0.9, 0.0))
        self._add(mj.mjtGeom.mjGEOM_CYLINDER, (disc, 0.001, 0.0), (pelvis[0], pelvis[1], 0.002), SHADOW)  # radius, half-height
        for j in sk.FOOT_CONTACT_JOINTS:
            height = max(joints[j][2], 0.0)
            size = 0.06 * max(0.2, 1.0 - 4.0 * height)
            self._add(mj.mjtGeom.mjGEOM_CYLINDER, (size, 0.001, 0.0), (joints[j][0], joints[j][1], 0.003), SHADOW)

    def render(self, joints: np.ndarray, lookat: np.ndarray, distance: float, azimuth: float, elevation: float) -> np.ndarray:
        """One frame (H, W, 3) uint8 of joints (28, 3) in MuJoCo axes."""
        self.camera.lookat[:] = lookat
        self.camera.distance = distance
        self.camera.azimuth = azimuth
        self.camera.elevation = elevation
        self.renderer.update_scene(self.data, self.camera)
        flags = self.renderer.scene.flags
        flags[self.mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[self.mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self._add_body(joints)
        return self.renderer.render()

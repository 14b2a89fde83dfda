"""Where a motion stands: its lowest foot point on the floor, and the start every dataset clip shares.

`myo data convert` writes every clip on the floor, facing +Z at frame 0, with the root above the
origin (`place_on_floor_facing_forward`); generators put what they make on the floor the same way
(`on_floor`).
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk


def on_floor(positions: np.ndarray) -> np.ndarray:
    """The clip moved up or down so that its lowest foot point (heel or ball) is at y=0."""
    positions = positions.copy()
    positions[..., 1] -= positions[:, sk.FOOT_CONTACT_JOINTS, 1].min()
    return positions


def place_on_floor_facing_forward(positions: np.ndarray) -> np.ndarray:
    """Lowest foot point of the clip at y=0, facing +Z at frame 0, root above the origin at frame 0.

    The floor comes from the feet (heels and balls), not from every joint as HumanML3D does:
    a source whose torso is shorter than myo28's (CMU's BVH releases drop the thorax) puts the
    hands of an upside-down body below the feet once the torso is lengthened, and a floor taken
    from the hands would leave such a clip floating on its feet.
    """
    positions = on_floor(positions)
    rotation = sk.rotation_about_y(-sk.heading_angles(positions[0]))
    root_xz = positions[0, sk.JOINT_INDEX["pelvis"]] * np.array([1.0, 0.0, 1.0])
    return (positions - root_xz) @ rotation.T

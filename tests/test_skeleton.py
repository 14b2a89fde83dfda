"""The joint core: table consistency, mirror map, forward kinematics, facing."""

import numpy as np

from myocli import skeleton as sk
from myocli.rotations import euler_to_matrix

SMPL22_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]


def test_table_keeps_smpl_order_and_adds_six_joints():
    assert sk.NUM_JOINTS == 28 and sk.NUM_FEATURES == 84
    assert sk.PARENTS[:22].tolist() == SMPL22_PARENTS
    assert [sk.JOINT_NAMES[i] for i in sk.HUMANML3D_FOOT_JOINTS] == ["left_ankle", "left_foot", "right_ankle", "right_foot"]
    assert [sk.JOINT_NAMES[i] for i in sk.FACING_JOINTS] == ["right_hip", "left_hip", "right_shoulder", "left_shoulder"]


def test_mirror_map_swaps_sides_and_is_an_involution():
    for i, j in enumerate(sk.MIRROR_INDEX):
        a, b = sk.JOINT_NAMES[i], sk.JOINT_NAMES[j]
        assert a.replace("left", "X").replace("right", "left").replace("X", "right") == b
    motion = np.random.default_rng(0).normal(size=(5, 28, 3))
    np.testing.assert_allclose(sk.mirror(sk.mirror(motion)), motion)
    # Mirrored left offsets are the right offsets: the table itself is symmetric.
    np.testing.assert_allclose(sk.REST_OFFSETS[sk.MIRROR_INDEX] * [-1, 1, 1], sk.REST_OFFSETS)


def test_rest_pose_has_canonical_bones_and_a_human_height():
    rest = sk.rest_pose()
    np.testing.assert_allclose(sk.bone_lengths(rest), sk.CANONICAL_BONE_LENGTHS, atol=1e-12)
    assert 1.5 < rest[sk.JOINT_INDEX["head"], 1] < 1.75
    assert rest[:, 1].min() == 0.0
    np.testing.assert_allclose(sk.facing_directions(rest), [0, 0, 1], atol=1e-12)
    assert rest[sk.JOINT_INDEX["left_hip"], 0] > 0  # +X is the character's left


def test_forward_kinematics_rotates_the_whole_body_with_the_root():
    frames = 4
    local = np.broadcast_to(np.eye(3), (frames, 28, 3, 3)).copy()
    local[:, 0] = euler_to_matrix(np.array([[90.0]] * frames), "y")
    positions, rotations = sk.forward_kinematics(np.zeros((frames, 3)), local)
    np.testing.assert_allclose(sk.bone_lengths(positions), np.broadcast_to(sk.CANONICAL_BONE_LENGTHS, (frames, 27)), atol=1e-12)
    # Turning 90 degrees counter-clockwise seen from above makes +Z forward become +X.
    np.testing.assert_allclose(sk.facing_directions(positions), np.tile([1.0, 0, 0], (frames, 1)), atol=1e-12)
    np.testing.assert_allclose(rotations[:, 5], local[:, 0])


def test_forward_kinematics_composes_local_rotations_down_the_chain():
    rng = np.random.default_rng(1)
    local = euler_to_matrix(rng.uniform(-90, 90, (3, 28, 3)), "zyx")
    root = rng.normal(size=(3, 3))
    positions, _ = sk.forward_kinematics(root, local)
    np.testing.assert_allclose(sk.bone_lengths(positions), np.broadcast_to(sk.CANONICAL_BONE_LENGTHS, (3, 27)), atol=1e-12)
    # The knee follows the hip's global rotation applied to its rest offset.
    hip_global = local[:, 0] @ local[:, 1]
    expected_knee = positions[:, 1] + np.einsum("tij,j->ti", hip_global, sk.REST_OFFSETS[4])
    np.testing.assert_allclose(positions[:, 4], expected_knee, atol=1e-12)


def test_chain_from_directions_rebuilds_a_pose():
    rest = sk.rest_pose()
    bones = rest[1:] - rest[sk.PARENTS[1:]]
    rebuilt = sk.chain_from_directions(rest[0], bones / np.linalg.norm(bones, axis=-1, keepdims=True))
    np.testing.assert_allclose(rebuilt, rest, atol=1e-12)


def test_as_joints_accepts_both_layouts_and_refuses_others():
    motion = np.zeros((7, 84))
    assert sk.as_joints(motion).shape == (7, 28, 3)
    try:
        sk.as_joints(np.zeros((7, 78)))
    except ValueError as exc:
        assert "84" in str(exc)
    else:
        raise AssertionError("a (7, 78) array must be refused")


def test_as_joints_reshapes_a_batch_of_flattened_motions():
    """Guards the flattened layout with more than one leading axis: (B, T, 84) -> (B, T, 28, 3),
    joint-major, the same values."""
    motion = np.arange(2 * 5 * 84, dtype=np.float64).reshape(2, 5, 84)
    joints = sk.as_joints(motion)
    assert joints.shape == (2, 5, 28, 3)
    np.testing.assert_array_equal(joints[1, 3, 7], motion[1, 3, 21:24])


def test_forward_kinematics_computes_in_float64_whatever_the_input_dtype():
    """Guards the float64 cast of the local rotations: float32 rotations give exactly what their
    float64 copies give, as float64."""
    rng = np.random.default_rng(2)
    local = euler_to_matrix(rng.uniform(-90, 90, (4, 28, 3)), "zyx").astype(np.float32)
    root = rng.normal(size=(4, 3))
    positions, rotations = sk.forward_kinematics(root, local)
    expected_positions, expected_rotations = sk.forward_kinematics(root, local.astype(np.float64))
    assert positions.dtype == rotations.dtype == np.float64
    np.testing.assert_array_equal(positions, expected_positions)
    np.testing.assert_array_equal(rotations, expected_rotations)


def test_forward_kinematics_takes_per_frame_offsets():
    """Guards offsets shaped (T, 28, 3): each frame is posed with its own skeleton, as if it were
    posed alone with (28, 3) offsets."""
    rng = np.random.default_rng(3)
    frames = 5
    local = euler_to_matrix(rng.uniform(-90, 90, (frames, 28, 3)), "zyx")
    root = rng.normal(size=(frames, 3))
    offsets = sk.REST_OFFSETS * rng.uniform(0.8, 1.2, (frames, 28, 1))
    positions, rotations = sk.forward_kinematics(root, local, offsets)
    assert positions.shape == (frames, 28, 3) and rotations.shape == (frames, 28, 3, 3)
    for t in range(frames):
        alone, alone_rotations = sk.forward_kinematics(root[t], local[t], offsets[t])
        np.testing.assert_allclose(positions[t], alone, atol=1e-12)
        np.testing.assert_allclose(rotations[t], alone_rotations, atol=1e-12)
    np.testing.assert_allclose(sk.bone_lengths(positions), np.linalg.norm(offsets[:, 1:], axis=-1), atol=1e-12)


def test_chain_from_directions_rebuilds_a_moving_motion():
    """Guards the batch shape and the root slot: frames with different roots and directions are
    rebuilt exactly, root included."""
    rng = np.random.default_rng(4)
    local = euler_to_matrix(rng.uniform(-90, 90, (6, 28, 3)), "zyx")
    motion, _ = sk.forward_kinematics(rng.normal(size=(6, 3)) + 5.0, local)
    bones = motion[:, 1:] - motion[:, sk.PARENTS[1:]]
    rebuilt = sk.chain_from_directions(motion[:, 0], bones / np.linalg.norm(bones, axis=-1, keepdims=True))
    np.testing.assert_allclose(rebuilt, motion, atol=1e-12)


def test_facing_does_not_depend_on_where_the_body_stands():
    """Guards the across vector (left minus right at hips and shoulders): moving the rest pose
    across the floor leaves it facing +Z."""
    moved = sk.rest_pose() + np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(sk.facing_directions(moved), [0, 0, 1], atol=1e-12)


def test_mirror_negates_x_only():
    """Guards mirror's sign flip: the symmetric rest pose is its own mirror image, and a pose moved
    to +X, up and forward mirrors to -X at the same height and depth."""
    rest = sk.rest_pose()
    np.testing.assert_allclose(sk.mirror(rest), rest, atol=1e-12)
    shift = np.array([0.5, 0.25, 2.0])
    np.testing.assert_allclose(sk.mirror(rest + shift), rest + shift * [-1, 1, 1], atol=1e-12)

"""The physics terms of the SSM's training loss (myocli/motion/physics_loss.py) on a real walk.

Each test breaks the walk in one known way (lifted, sunk, slid, bones stretched) and checks that
the term made for that break reports its size in the term's own unit (cm), while the terms made
for other breaks stay where they were on the walk itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from myocli import skeleton as sk
from myocli.motion import features as feat
from myocli.motion.physics_loss import physics_terms

FPS = 20.0
UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def walk(cmu_walk) -> np.ndarray:
    return cmu_walk.motion.astype(np.float64)  # (57, 28, 3), metres, feet on the floor


def as_features(positions: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(feat.to_features(positions, FPS))[None]  # a batch of one


def terms(predicted: np.ndarray, real: np.ndarray, real_frames: int | None = None) -> dict[str, float]:
    """The physics terms (cm) of `predicted` positions as a prediction of the `real` clip,
    over its first `real_frames` frames (all by default; the rest is padding)."""
    mask = torch.zeros(1, len(real), dtype=torch.bool)
    mask[:, : real_frames or len(real)] = True
    result = physics_terms(as_features(predicted), as_features(real), mask)
    return {name: float(value[0]) for name, value in result.items()}


def standing_frames(real: np.ndarray) -> np.ndarray:
    """(T,) bool: frames in which the real motion has a foot point in contact (its contact features)."""
    return feat.to_features(real, FPS)[:, feat.FOOT_CONTACTS].max(axis=1) > 0.5


def stretch(positions: np.ndarray, joints, by_m: float) -> np.ndarray:
    """Lengthen the bone ending at each of `joints` by `by_m` metres along itself; every other bone
    keeps its length and direction (descendants move with their parent)."""
    out = positions.copy()
    for j in range(1, sk.NUM_JOINTS):  # parents come first
        bone = positions[:, j] - positions[:, sk.PARENTS[j]]
        if j in joints:
            bone = bone * (1 + by_m / np.linalg.norm(bone, axis=-1, keepdims=True))
        out[:, j] = out[:, sk.PARENTS[j]] + bone
    return out


def test_every_term_is_near_zero_on_the_real_walk(walk):
    clean = terms(walk, walk)
    assert clean["floating"] == 0.0 and clean["penetration"] == 0.0  # feet on the floor, nothing below it
    assert clean["bone_length"] < 1e-3  # converted clips have myo28's bone lengths
    assert 0 < clean["skating"] < 1.0  # a real foot in contact moves under 1 cm a frame


def test_floating_is_how_far_the_lowest_foot_is_lifted_while_the_real_motion_stands(walk):
    clean = terms(walk, walk)
    lifted = terms(walk + 0.05 * UP, walk)  # the whole walk 5 cm up
    assert lifted["floating"] == pytest.approx(5.0, abs=1e-6)
    assert lifted["penetration"] == 0.0
    assert lifted["skating"] == pytest.approx(clean["skating"], abs=1e-9)  # a lift is no slide
    assert lifted["bone_length"] == pytest.approx(clean["bone_length"], abs=1e-9)

    # Only frames in which the real walk stands count: lifting the other frames (both feet
    # off the floor, or moving too fast to be in contact) is not floating.
    standing = standing_frames(walk)
    assert 0 < (~standing).sum() < len(walk)  # the walk has both kinds of frame
    assert terms(walk + 0.05 * UP * ~standing[:, None, None], walk)["floating"] == 0.0
    assert terms(walk + 0.05 * UP * standing[:, None, None], walk)["floating"] == pytest.approx(5.0, abs=1e-6)

    # Lower than the real motion is not floating (it is penetration's business).
    sunk = terms(walk - 0.05 * UP, walk)
    assert sunk["floating"] == 0.0 and sunk["penetration"] > 0


def test_bone_length_is_the_mean_change_of_the_27_bones(walk):
    clean = terms(walk, walk)["bone_length"]
    every_bone = range(1, sk.NUM_JOINTS)  # bone j ends at joint j
    assert terms(stretch(walk, every_bone, 0.01), walk)["bone_length"] == pytest.approx(1.0, abs=1e-3 + clean)
    # Shorter counts as much as longer.
    assert terms(stretch(walk, every_bone, -0.01), walk)["bone_length"] == pytest.approx(1.0, abs=1e-3 + clean)

    # The left arm's 4 bones (upper arm, forearm, hand, thumb) 1 cm longer: 4 of 27 bones, 4/27 cm.
    arm_joints = ("elbow", "wrist", "hand", "thumb")
    arm = [sk.JOINT_INDEX[f"left_{n}"] for n in arm_joints]
    long_arm = terms(stretch(walk, arm, 0.01), walk)
    assert long_arm["bone_length"] == pytest.approx(4 / 27, abs=1e-3 + clean)
    # A longer left arm does not make up for a shorter right arm: the deviations add up, 8/27 cm.
    right_arm = [sk.JOINT_INDEX[f"right_{n}"] for n in arm_joints]
    uneven = stretch(stretch(walk, arm, 0.01), right_arm, -0.01)
    assert terms(uneven, walk)["bone_length"] == pytest.approx(8 / 27, abs=1e-3 + clean)
    # The feet did not move, so the other terms are the walk's own.
    walk_itself = terms(walk, walk)
    for name in ("skating", "penetration", "floating"):
        assert long_arm[name] == pytest.approx(walk_itself[name], abs=1e-9), name


def test_skating_is_how_far_a_foot_in_contact_slides_per_frame(walk):
    # A pose of the walk held still, then slid forward 5 cm a frame (1 m/s): every foot point
    # the real (still) pose has on the floor slides exactly 5 cm per frame.
    held = np.repeat(walk[:1], 20, axis=0)
    assert terms(held, held)["skating"] < 0.02
    slide = FORWARD * 0.05 * np.arange(20)[:, None, None]
    assert terms(held + slide, held)["skating"] == pytest.approx(5.0, abs=1e-3)
    bobbing = held + UP * 0.02 * (np.arange(20) % 2)[:, None, None]  # 2 cm up and down: no slide
    assert terms(bobbing, held)["skating"] < 0.02

    # The same slide on the walk: each contact foot's step is its own step plus 5 cm, so the
    # mean slide is 5 cm give or take the walk's own (the triangle inequality).
    clean = terms(walk, walk)["skating"]
    slid = terms(walk + FORWARD * 0.05 * np.arange(len(walk))[:, None, None], walk)
    assert abs(slid["skating"] - 5.0) <= clean + 1e-3
    assert slid["penetration"] == 0.0 and slid["floating"] == 0.0


def test_penetration_is_the_depth_below_the_floor_summed_over_joints(walk):
    sunk = walk - 0.03 * UP  # 3 cm down: the feet go below the floor, the rest stays above
    depth_cm = 100 * np.maximum(-sunk[..., 1], 0.0)  # (T, 28)
    expected = depth_cm.sum(axis=1).mean()  # summed over joints, averaged over frames
    # Heel and toe are below at once: the sum is not the lowest joint's depth.
    assert (depth_cm > 0).sum(axis=1).max() >= 2
    result = terms(sunk, walk)
    assert result["penetration"] == pytest.approx(expected, rel=1e-9)
    assert result["floating"] == 0.0


def test_padding_frames_do_not_count(walk):
    # Frames past the mask are padding: breaking them any way leaves every term as it is on
    # the real frames alone.
    real_frames = 30
    broken = walk.copy()
    broken[real_frames:] = stretch(broken[real_frames:], range(1, sk.NUM_JOINTS), 0.05) - 0.2 * UP
    broken[real_frames:] += FORWARD * 0.1 * np.arange(len(walk) - real_frames)[:, None, None]
    padded = terms(broken, walk, real_frames)
    alone = terms(walk[:real_frames], walk[:real_frames])
    for name, value in alone.items():
        assert padded[name] == pytest.approx(value, abs=1e-9), name


def test_each_sample_of_a_batch_gets_its_own_terms(walk):
    """Guards the per-sample sums in `_masked_mean`: a batch of two clips of different lengths
    and breaks gives each the terms it gets alone (no sum over the batch)."""
    sunk = walk - 0.03 * UP
    lifted = stretch(walk, range(1, sk.NUM_JOINTS), 0.01) + 0.05 * UP
    predicted = torch.cat([as_features(sunk), as_features(lifted)])
    real = torch.cat([as_features(walk), as_features(walk)])
    mask = torch.zeros(2, len(walk), dtype=torch.bool)
    mask[0, :] = True
    mask[1, :30] = True
    batch = physics_terms(predicted, real, mask)
    alone = [terms(sunk, walk), terms(lifted, walk, 30)]
    for i, expected in enumerate(alone):
        for name, value in expected.items():
            assert float(batch[name][i]) == pytest.approx(value, rel=1e-9, abs=1e-12), (i, name)


def test_a_clip_of_one_real_frame_is_that_frames_own_value(walk):
    """Guards the denominator's floor of 1 frame: with one real frame the mean is that frame's
    value, not half of it."""
    sunk = walk - 0.03 * UP
    depth_cm = 100 * np.maximum(-sunk[0, :, 1], 0.0)
    assert depth_cm.sum() > 0
    assert terms(sunk, walk, real_frames=1)["penetration"] == pytest.approx(depth_cm.sum(), rel=1e-9)


def held_with_contacts(walk, contacts) -> tuple[np.ndarray, torch.Tensor]:
    """A pose of the walk held for 20 frames, and its features with the foot contacts (20, 4) set."""
    held = np.repeat(walk[:1], 20, axis=0)
    real = as_features(held)
    real[0, :, feat.FOOT_CONTACTS] = torch.as_tensor(contacts, dtype=real.dtype)
    return held, real


def physics_of(predicted: np.ndarray, real: torch.Tensor) -> dict[str, float]:
    mask = torch.ones(1, real.shape[1], dtype=torch.bool)
    return {name: float(value[0]) for name, value in physics_terms(as_features(predicted), real, mask).items()}


def test_skating_needs_contact_in_both_frames_of_a_step(walk):
    """Guards the pairing of frame t with frame t-1: a foot in contact only in every other frame
    never slides on the floor, however far it moves; in contact in every frame, it does."""
    slide = FORWARD * 0.05 * np.arange(20)[:, None, None]
    alternate = np.repeat((np.arange(20) % 2 == 0)[:, None], 4, axis=1).astype(float)
    held, real = held_with_contacts(walk, alternate)
    assert physics_of(held + slide, real)["skating"] == 0.0
    held, real = held_with_contacts(walk, np.ones((20, 4)))
    assert physics_of(held + slide, real)["skating"] == pytest.approx(5.0, abs=1e-3)


def test_one_foot_point_in_contact_is_standing(walk):
    """Guards `contact.sum(-1) > 0`: the real motion on its left heel alone stands, so lifting
    the prediction 5 cm floats it 5 cm."""
    held, real = held_with_contacts(walk, np.tile([1.0, 0.0, 0.0, 0.0], (20, 1)))
    assert physics_of(held + 0.05 * UP, real)["floating"] == pytest.approx(5.0, abs=1e-6)


def test_a_contact_feature_counts_only_above_one_half(walk):
    """Guards the strict `> 0.5`: a contact feature of exactly 0.5 (halfway between frames with
    and without contact) is not contact; just above it is."""
    held, real = held_with_contacts(walk, np.full((20, 4), 0.5))
    assert physics_of(held + 0.05 * UP, real)["floating"] == 0.0
    held, real = held_with_contacts(walk, np.full((20, 4), 0.5 + 1e-6))
    assert physics_of(held + 0.05 * UP, real)["floating"] == pytest.approx(5.0, abs=1e-6)


def test_terms_are_computed_on_the_predictions_device():
    """Guards the constants (bone lengths, parents) following the prediction to its device: the
    meta device stands in for a GPU, where a CPU constant would raise a device mismatch."""
    predicted = torch.zeros(2, 5, feat.FEATURE_DIM, device="meta")
    mask = torch.ones(2, 5, dtype=torch.bool, device="meta")
    result = physics_terms(predicted, predicted, mask)
    for name, value in result.items():
        assert value.device.type == "meta" and value.shape == (2,), name

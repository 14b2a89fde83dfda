"""Motion features on real clips: exact inverse, invariance to placement, sensible contacts; metrics."""

from __future__ import annotations

import numpy as np
import pytest

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset
from myocli.motion import features as feat
from myocli.motion import metrics
from myocli.motion.stats import MIN_STD, feature_stats


@pytest.fixture(scope="module")
def clips(motion_sets):
    return [s.motion for name in ("train", "val", "test") for s in read_dataset(motion_sets[name]).sequences]


def test_layout_blocks_tile_the_feature_vector():
    covered = sorted(i for block in feat.BLOCKS.values() for i in range(feat.FEATURE_DIM)[block])
    assert covered == list(range(feat.FEATURE_DIM)) and feat.FEATURE_DIM == 173


def test_round_trip_is_exact_on_real_clips(clips):
    for motion in clips:
        features = feat.to_features(motion, 20.0)
        assert features.shape == (len(motion), feat.FEATURE_DIM)
        heading, ground = feat.start_pose(motion)
        assert abs(heading) < 1e-5 and np.abs(ground).max() < 1e-5  # converted clips start at the origin facing +Z
        assert np.abs(feat.from_features(features, heading, ground) - motion).max() < 1e-9
        # What a model sees is float32: still well under a millimetre over the whole clip.
        assert np.abs(feat.from_features(features.astype(np.float32)) - motion).max() < 1e-4


def test_features_ignore_where_the_character_stands_and_faces(clips):
    motion = clips[0].astype(np.float64)
    turned = sk.as_joints(motion) @ sk.rotation_about_y(np.array(2.1)).T + np.array([3.0, 0.0, -1.5])
    np.testing.assert_allclose(feat.to_features(turned, 20.0), feat.to_features(motion, 20.0), atol=1e-9)
    heading, ground = feat.start_pose(turned)
    np.testing.assert_allclose(feat.from_features(feat.to_features(turned, 20.0), heading, ground), turned, atol=1e-9)


def test_walking_feet_alternate_between_contact_and_swing(motion_sets):
    walk = next(s for s in read_dataset(motion_sets["train"]).sequences if s.name.endswith("walk"))
    contacts = feat.to_features(walk.motion, 20.0)[:, feat.FOOT_CONTACTS]
    left_toe, right_toe = contacts[:, 1], contacts[:, 3]
    for toe in (left_toe, right_toe):
        assert 0.2 < toe.mean() < 0.9  # planted part of the time, swinging the rest
    assert (left_toe + right_toe >= 1).mean() > 0.8  # walking: almost always one foot down


def test_stats_are_per_feature_with_a_floor():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, (500, 3)), rng.normal(1.0, 2.0, (300, 3))
    a[:, 2] = b[:, 2] = 5.0
    mean, std = feature_stats([a, b])
    both = np.concatenate([a, b])
    np.testing.assert_allclose(mean, both.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std[:2], both.std(0)[:2], rtol=1e-4)
    assert std[2] == pytest.approx(MIN_STD)


def test_metrics_align_as_documented(clips):
    target = sk.as_joints(clips[0]).astype(np.float64)
    shifted = target + np.array([0.5, 0.0, 0.0])
    assert metrics.mpjpe(shifted, target).max() < 1e-12  # pelvis-aligned
    assert metrics.global_mpjpe(shifted, target).mean() == pytest.approx(0.5)
    turned = target @ sk.rotation_about_y(np.array(0.7)).T
    assert metrics.mpjpe(turned, target).mean() > 0.05
    assert metrics.heading_aligned_mpjpe(turned, target).max() < 1e-9  # a turn about the vertical is not pose error
    similar = 1.2 * target @ sk.rotation_about_y(np.array(0.7)).T + 2.0
    assert metrics.pa_mpjpe(similar, target).max() < 1e-9
    noisy = target + np.random.default_rng(1).normal(0, 0.01, target.shape)
    assert 0.005 < metrics.pa_mpjpe(noisy, target).mean() <= metrics.mpjpe(noisy, target).mean() + 1e-9
    assert metrics.acceleration_error(target, target).max() == 0
    usage, perplexity = metrics.codebook_usage(np.array([5, 5, 0, 0]))
    assert usage == 0.5 and perplexity == pytest.approx(2.0)


def turning(headings: np.ndarray) -> np.ndarray:
    """The rest pose on the floor, facing `headings` (T,) in turn, walking 3 cm a frame along +X."""
    rest = sk.rest_pose()
    return np.stack([rest @ sk.rotation_about_y(np.array(h)).T + [0.03 * t, 0.0, 0.0] for t, h in enumerate(headings)])


def test_yaw_velocity_is_the_heading_change_wrapped_into_a_half_turn():
    """Guards `_wrap`: 0.1 rad a frame reads 0.1 even where the heading crosses +-pi, and 0 at frame 0."""
    motion = turning(3.0 + 0.1 * np.arange(8))  # passes pi between frames 1 and 2
    yaw = feat.to_features(motion, 20.0)[:, feat.ROOT_YAW_VELOCITY.start]
    np.testing.assert_allclose(yaw, [0.0] + [0.1] * 7, atol=1e-9)


def slid(pose: np.ndarray, frames: int, step_m: float) -> np.ndarray:
    """`pose` held for `frames` frames, moving `step_m` along +Z each frame."""
    return pose[None] + np.array([0.0, 0.0, step_m]) * np.arange(frames)[:, None, None]


def test_foot_contacts_need_a_low_and_slow_foot_point():
    """Guards foot_contacts: a still pose on the floor is in contact at every point and every frame
    (a one-frame clip included); lifted 0.5 m it is not; sliding 1 m/s it is not, frame 0 included
    (it takes frame 1's speed, also in a two-frame clip); a foot that stops after one step is in
    contact from the stop on."""
    rest = sk.rest_pose()
    assert (feat.foot_contacts(slid(rest, 5, 0.0), 20.0) == 1.0).all()
    assert (feat.foot_contacts(rest[None], 20.0) == 1.0).all()
    assert (feat.foot_contacts(slid(rest + [0.0, 0.5, 0.0], 5, 0.0), 20.0) == 0.0).all()
    assert (feat.foot_contacts(slid(rest, 5, 0.05), 20.0) == 0.0).all()
    assert (feat.foot_contacts(slid(rest, 2, 0.05), 20.0) == 0.0).all()
    stops = np.concatenate([slid(rest, 2, 0.05), np.repeat(slid(rest, 2, 0.05)[-1:], 4, axis=0)])
    contacts = feat.foot_contacts(stops, 20.0)
    assert (contacts[:2] == 0.0).all() and (contacts[2:] == 1.0).all()
    assert contacts.dtype == np.float64


def test_foot_contact_thresholds_are_strict():
    """Guards `<` in both thresholds: a foot point exactly CONTACT_HEIGHT_M high, or moving exactly
    CONTACT_SPEED_M_S, is not in contact; a hair lower or slower, it is."""
    heels = [0, 2]  # left heel, right heel among the contact points
    rest = np.round(sk.rest_pose() * 64) / 64  # exact binary fractions, so the sums below are exact
    at_height = rest + [0.0, feat.CONTACT_HEIGHT_M, 0.0]
    assert at_height[sk.JOINT_INDEX["left_heel"], 1] == feat.CONTACT_HEIGHT_M
    assert (feat.foot_contacts(slid(at_height, 3, 0.0), 20.0)[:, heels] == 0.0).all()
    assert (feat.foot_contacts(slid(at_height - [0.0, 1e-9, 0.0], 3, 0.0), 20.0)[:, heels] == 1.0).all()
    # 0.25 m a frame at 2 fps is exactly 0.5 m/s.
    assert (feat.foot_contacts(slid(rest, 3, 0.25), 2.0) == 0.0).all()
    assert (feat.foot_contacts(slid(rest, 3, 0.25), 1.99) == 1.0).all()


def test_from_features_computes_in_float64():
    """Guards the float64 cast: float32 features (what a model gives) are integrated in float64,
    exactly as their float64 copy is."""
    motion = turning(0.05 * np.arange(40))
    features = feat.to_features(motion, 20.0).astype(np.float32)
    positions = feat.from_features(features)
    assert positions.dtype == np.float64
    np.testing.assert_array_equal(positions, feat.from_features(features.astype(np.float64)))


def test_from_features_refuses_other_shapes():
    """Guards the shape check and its message: a batch (B, T, 173) or a wrong width is refused."""
    for shape in ((2, 5, feat.FEATURE_DIM), (5, 100), (feat.FEATURE_DIM,)):
        with pytest.raises(ValueError, match=r"features must be shaped \(T, 173\)"):
            feat.from_features(np.zeros(shape))

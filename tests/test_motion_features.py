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

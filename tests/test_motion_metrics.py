"""Plausibility measures on constructed motions whose answer is known, and on a real clip."""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk
from myocli.motion import metrics


def standing(frames: int = 20) -> np.ndarray:
    return np.repeat(sk.rest_pose(floor=True)[None], frames, axis=0)


def test_a_still_body_on_the_floor_is_plausible():
    still = standing()
    assert metrics.foot_skating_ratio(still, 20) == 0.0
    assert metrics.penetration_mm(still) == 0.0 and metrics.floating_mm(still) == 0.0
    assert metrics.bone_length_error_mm(still) < 1e-6


def test_skating_needs_a_low_foot_moving_fast():
    sliding = standing()
    sliding[:, :, 0] += np.arange(20)[:, None] * 0.05  # the whole body slides at 1 m/s at 20 fps
    assert metrics.foot_skating_ratio(sliding, 20) == 1.0
    assert metrics.foot_skating_ratio(sliding, 5) == 0.0  # at 5 fps the same steps are 0.25 m/s
    flying = sliding.copy()
    flying[..., 1] += 0.2  # the same slide 20 cm up in the air is not skating, but floating
    assert metrics.foot_skating_ratio(flying, 20) == 0.0
    assert metrics.floating_mm(flying) > 140


def test_skating_is_told_toe_by_toe():
    one_foot = standing()
    left_toe = sk.JOINT_INDEX["left_foot"]
    one_foot[:, left_toe, 0] += np.arange(20) * 0.05  # only the left toe slides, at 1 m/s
    skates = metrics.skating_toes(one_foot, 20)
    assert skates.shape == (19, 2) and skates[:, 0].all() and not skates[:, 1].any()
    assert metrics.foot_skating_ratio(one_foot, 20) == 1.0  # a frame skates when either toe does


def test_penetration_and_bone_length_error():
    sunk = standing()
    sunk[..., 1] -= 0.03
    assert abs(metrics.penetration_mm(sunk) - 30) < 1e-6
    stretched = standing() * 1.1
    assert abs(metrics.bone_length_error_mm(stretched) - 100 * np.mean(sk.CANONICAL_BONE_LENGTHS)) < 1e-6


def test_displacement_errors():
    target = standing(10)
    predicted = target.copy()
    predicted[-1] += [0.0, 0.0, 0.3]
    ade, fde = metrics.displacement_errors(predicted, target)
    assert abs(fde - 0.3) < 1e-9 and abs(ade - 0.03) < 1e-9

"""Plausibility measures on constructed motions whose answer is known, and the reconstruction error
`myo tokenizer eval` reports, recomputed by hand from the tokenizer's own reconstruction of real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import myo, ok

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset
from myocli.motion import features as feat
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


def test_reconstruction_errors_hand_computed():
    """MPJPE and its variants (the tokenizer's figures) on poses moved in ways whose error is known."""
    target = standing(3)
    moved = target + [1.0, 2.0, 3.0]  # the same pose 1, 2, 3 m away
    assert np.allclose(metrics.mpjpe(moved, target), 0)
    assert np.allclose(metrics.global_mpjpe(moved, target), np.sqrt(14))
    hand = target.copy()
    hand[:, sk.JOINT_INDEX["left_hand"], 0] += 0.28  # one joint of 28 off by 28 cm: 1 cm per joint
    assert np.allclose(metrics.mpjpe(hand, target), 0.01) and np.allclose(metrics.global_mpjpe(hand, target), 0.01)
    turned = target @ sk.rotation_about_y(0.5).T  # turned about the pelvis (at x = z = 0) by 0.5 rad
    assert (metrics.mpjpe(turned, target) > 0.05).all()  # heading is part of the pose error ...
    assert np.allclose(metrics.heading_aligned_mpjpe(turned, target), 0, atol=1e-12)  # ... unless aligned first
    assert np.allclose(metrics.pa_mpjpe(1.5 * turned + [0.3, 0.0, -2.0], target), 0, atol=1e-9)  # any similarity
    jolt = target.copy()
    jolt[1, sk.JOINT_INDEX["head"], 1] += 0.14  # the head 14 cm up in the middle frame: its acceleration is -28 cm
    assert np.allclose(metrics.acceleration_error(jolt, target), [0.28 / 28])


def test_tokenizer_eval_reports_the_mpjpe_of_its_own_reconstruction(trained_tiny_tokenizer, motion_sets, monkeypatch):
    """The figure `myo tokenizer eval --json` prints is the mean over every frame of every clip of the mean
    distance of the 28 joints from the real clip's, pelvis on pelvis (mpjpe_mm), or as they stand (global_mpjpe_mm)."""
    from myocli.tokenizer import codec as tok

    env = {"MYO_HOME": str(trained_tiny_tokenizer)}
    evaluation = ok(myo("tokenizer", "eval", "tok", "--data", str(motion_sets["val"]), "--json", env=env))
    report = json.loads(evaluation.stdout)

    monkeypatch.setenv("MYO_HOME", str(trained_tiny_tokenizer))
    _, model, _ = tok.load_tokenizer("tokenizer/tok@1")  # as the command loads it
    dataset = read_dataset(motion_sets["val"])
    aligned, unaligned = [], []  # per-frame errors, metres, all clips one after another
    for sequence in dataset.sequences:
        frames = len(sequence) // model.config.downsample * model.config.downsample  # whole tokens only
        real = sequence.motion[:frames].astype(np.float64)
        features = torch.from_numpy(feat.to_features(real, dataset.fps).astype(np.float32))[None]
        with torch.no_grad():  # encode to codes and decode them, in the model's normalised units
            decoded = model.denormalise(model.decode(model.encode(model.normalise(features))))
        predicted = feat.from_features(decoded[0].double().numpy())  # converted clips start at the origin facing +Z
        pelvis_on_pelvis = (predicted - predicted[:, :1]) - (real - real[:, :1])
        aligned.append(np.linalg.norm(pelvis_on_pelvis, axis=-1).mean(axis=-1))
        unaligned.append(np.linalg.norm(predicted - real, axis=-1).mean(axis=-1))
    aligned, unaligned = np.concatenate(aligned), np.concatenate(unaligned)

    assert report["frames"] == len(aligned) and report["sequences_skipped"] == 0
    assert 10 < 1000 * aligned.mean() < 5000  # a tokenizer trained for 6 steps is far from exact
    assert report["mpjpe_mm"] == pytest.approx(1000 * aligned.mean(), abs=1e-3)
    assert report["global_mpjpe_mm"] == pytest.approx(1000 * unaligned.mean(), abs=1e-3)

"""How clips become training data for the built-in models: cyclic clips played on, rare motions drawn more often."""

from __future__ import annotations

import numpy as np

from myocli.data.converters import deepmimic
from myocli.data.windows import FeatureWindows, balanced_repeats


def test_a_cyclic_clip_walks_on_without_a_seam(pybullet_motions):
    once = deepmimic.read(pybullet_motions / "humanoid3d_walk.txt")[0]
    looped = deepmimic.read(pybullet_motions / "humanoid3d_walk.txt", loop_seconds=6.0)[0]
    assert once.times[-1] < 1.5 and looped.times[-1] >= 6.0
    np.testing.assert_allclose(looped.positions[: len(once.positions) - 1], once.positions[:-1])
    root = looped.positions[:, 0, [0, 2]]
    speed = np.linalg.norm(np.diff(root, axis=0), axis=1) / np.diff(looped.times)
    # Each cycle is carried on by the walk's own displacement: no jump back to the start at a seam.
    assert speed.max() < 1.5 * np.median(speed)
    assert np.linalg.norm(root[-1] - root[0]) > 4.0


def test_a_clip_that_does_not_loop_is_left_as_it_is(pybullet_motions):
    once = deepmimic.read(pybullet_motions / "humanoid3d_kick.txt")[0]  # "Loop": "none"
    again = deepmimic.read(pybullet_motions / "humanoid3d_kick.txt", loop_seconds=6.0)[0]
    np.testing.assert_array_equal(once.positions, again.positions)


def test_balanced_repeats_favour_rare_motions():
    captions = [["a person squats"]] * 64 + [["a person walks"]] * 4 + [["a person does a cartwheel"]]
    repeats = balanced_repeats(captions)
    assert repeats[0] == 1 and repeats[64] == 4 and repeats[-1] == 8
    assert balanced_repeats(captions, most=5)[-1] == 5


def test_repeats_change_how_often_a_sequence_is_drawn_and_nothing_else():
    sequences = [np.full((10, 2), k, dtype=np.float32) for k in range(3)]
    plain = FeatureWindows(sequences, 4, 30, seed=1)
    ones = FeatureWindows(sequences, 4, 30, seed=1, repeats=[1, 1, 1])
    assert [plain.locate(i) for i in range(30)] == [ones.locate(i) for i in range(30)]
    weighted = FeatureWindows(sequences, 4, 500, seed=1, repeats=[1, 1, 8])
    drawn = np.bincount([weighted.locate(i)[0] for i in range(500)], minlength=3)
    assert drawn[2] == 8 * drawn[0] and drawn[0] == drawn[1]

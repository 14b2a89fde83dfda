"""The text-motion retrieval evaluator: trained for a few steps on real clips it must tell their
captions apart; its Frechet distance must match closed forms; bad input fails cleanly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_failure, myo, ok

TINY_RETRIEVAL = """\
model: {max_frames: 64, width: 64, depth: 1, heads: 2, embed_dim: 32, text_width: 32, text_layers: 1, text_heads: 2}
train: {max_steps: 60, batch_size: 16, learning_rate: 2.0e-3, warmup_steps: 0, lr_schedule: constant, log_every: 20, eval_every: 30, save_every: 30}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, motion_sets):
    root = tmp_path_factory.mktemp("retrieval")
    env = {"MYO_HOME": str(root / "home")}
    (root / "tiny.yaml").write_text(TINY_RETRIEVAL)
    summary = json.loads(ok(myo("retrieval", "train", "--data", str(motion_sets["train"]), "--val", str(motion_sets["val"]),
                                "--config", str(root / "tiny.yaml"), "--name", "ev", "--json", env=env)).stdout)  # fmt: skip
    return {"root": root, "env": env, "summary": summary}


def test_a_trained_evaluator_tells_the_training_actions_apart(trained, motion_sets):
    """pybullet's clips (a backflip, a cartwheel, a run, a spin kick...) each have their own caption:
    after 60 steps the evaluator ranks a clip's own caption first far more often than chance."""
    assert trained["summary"]["checkpoint"] == "retrieval/ev@1" and trained["summary"]["steps"] == 60
    assert set(trained["summary"]["val"]) == {"r_at_1", "r_at_3", "mm_dist"}
    report = json.loads(ok(myo("retrieval", "eval", "ev", "--data", str(motion_sets["train"]), "--json", env=trained["env"])).stdout)
    assert report["candidates"] >= 10 and report["clips"] == 30
    chance = 1 / report["candidates"]
    assert report["r_at_1"] >= 5 * chance, report
    assert report["r_at_1"] <= report["r_at_2"] <= report["r_at_3"] <= 1
    per_caption = report["r_at_1_per_caption"]
    assert len(per_caption) == report["candidates"] and all(0 <= v <= 1 for v in per_caption.values())
    assert report["diversity"] > 0


def test_scores_rank_the_true_caption_above_a_swapped_one(trained, motion_sets, monkeypatch):
    """The same motions scored against their own captions and against captions shuffled between
    clips: R@1 and MM-Dist must both get worse."""
    from myocli.data.h5 import read_dataset
    from myocli.retrieval.evaluator import Evaluator, captioned

    monkeypatch.setenv("MYO_HOME", trained["env"]["MYO_HOME"])
    evaluator = Evaluator.load("retrieval/ev")
    dataset = read_dataset(motion_sets["train"])
    motions, captions = captioned(dataset)
    own = evaluator.scores(motions, captions, dataset.fps)
    shifted = captions[3:] + captions[:3]
    wrong = evaluator.scores(motions, shifted, dataset.fps)
    assert own["r_at_1"] > wrong["r_at_1"] and own["mm_dist"] < wrong["mm_dist"]
    # A motion's embedding does not depend on the other motions of its batch, nor on their lengths.
    alone = evaluator.embed_motions([motions[0]], dataset.fps)
    longest = max(motions, key=len)
    np.testing.assert_allclose(evaluator.embed_motions([motions[0], longest], dataset.fps)[0], alone[0], atol=1e-5)
    assert evaluator.embed_motions([motions[0][:2]], dataset.fps).shape == (1, alone.shape[1])  # shorter than one encoder step
    # FID of the real clips against themselves is zero; against other motions it is not.
    embedded = evaluator.embed_motions(motions, dataset.fps)
    assert abs(evaluator.scores(motions, captions, dataset.fps, real=embedded)["fid"]) < 1e-6
    lifted = [m + np.array([0.0, 0.5, 0.0]) * np.linspace(0, 1, len(m))[:, None, None] for m in motions]  # rising into the air
    assert evaluator.scores(lifted, captions, dataset.fps, real=embedded)["fid"] > 0.01


def test_frechet_distance_matches_closed_forms():
    from myocli.retrieval.evaluator import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    a -= a.mean(0)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
    # Same covariance, moved mean: the distance is the squared shift.
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # Scaled by 2 (covariance x 4): tr(C + 4C - 2 * 2C) = tr(C).
    assert frechet_distance(a, 2 * a) == pytest.approx(float(np.trace(np.cov(a, rowvar=False))), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_bad_input_gives_one_clear_error(trained, motion_sets, tmp_path):
    from myocli.data.h5 import read_dataset, write_dataset

    env = trained["env"]
    dataset = read_dataset(motion_sets["train"])
    one_caption = [dataclasses.replace(s, captions=["a person moves"]) for s in dataset.sequences[:6]]
    write_dataset(tmp_path / "one.h5", one_caption, dataset.fps)
    assert_clean_failure(myo("retrieval", "train", "--data", str(tmp_path / "one.h5"), "--name", "x", env=env), "one.h5", "two distinct captions")
    assert not list((Path(env["MYO_HOME"]) / "retrieval").glob("x/v*"))  # no empty version left behind
    assert_clean_failure(myo("retrieval", "eval", "ev", "--data", str(tmp_path / "one.h5"), env=env), "one.h5", "two distinct captions")
    write_dataset(tmp_path / "fps30.h5", dataset.sequences[:6], 30.0)
    assert_clean_failure(myo("retrieval", "eval", "ev", "--data", str(tmp_path / "fps30.h5"), env=env), "fps30.h5", "20 fps", "--fps 20")
    assert_clean_failure(myo("retrieval", "eval", "missing", "--data", str(motion_sets["train"]), env=env), "missing")

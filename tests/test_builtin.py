"""The models that ship inside the package: verified, read-only, the default of `myo generate`, and good at their job."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import myo

from myocli import registry
from myocli.builtin import DEFAULT_MODEL
from myocli.errors import MyoError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from motion_checks import check, ground_speed  # noqa: E402

BUILTIN_NAMES = ["tokenizer/myo-base", "ssm/myo-base", "retrieval/myo-base"]


@pytest.fixture()
def empty_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MYO_HOME", str(tmp_path / "checkpoints"))
    return tmp_path


@pytest.fixture(scope="module")
def engine():
    from myocli.ssm.engine import SSMEngine

    return SSMEngine.load(DEFAULT_MODEL)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_each_builtin_model_verifies_and_has_a_card(name, empty_registry):
    ref = registry.resolve(name)
    assert ref.path.is_relative_to(registry.BUILTIN)
    assert registry.verify(ref.path) == []
    manifest = registry.read_manifest(ref.path)
    assert manifest["builtin"] is True and "MODEL_CARD.md" in manifest["files"]
    card = (ref.path / "MODEL_CARD.md").read_text()
    for fact in ("CC BY-SA 3.0", "HDM05", "mocap.cs.cmu.edu", "python -m myocli.builtin.build"):
        assert fact in card
    assert "Bandai" not in json.dumps(manifest.get("dataset", {})) and "CC BY-NC" not in json.dumps(manifest.get("dataset", {}))


def test_builtin_models_fit_the_budget_and_are_listed(empty_registry):
    rows = [r for r in registry.list_all() if r["status"] == "built-in"]
    assert sorted(r["name"] for r in rows) == sorted(BUILTIN_NAMES)
    assert sum(r["bytes"] for r in rows) <= 40 * 2**20
    # Nothing of the user's: newest() (the default of user models) does not see them.
    assert registry.newest("ssm") is None


@pytest.mark.parametrize(("prompt", "motion"), [
    ("a person walks forward", "walk"),
    ("a man is walking forward", "walk"),  # wording it never saw: the pretrained text encoder carries it
    ("a person does a cartwheel", "cartwheel"),
    ("someone leaps forward off both feet", "jump"),
])  # fmt: skip
def test_default_generator_makes_the_motion_asked_for(engine, prompt, motion):
    samples = [engine.text_to_motion(prompt, 4.0, seed) for seed in range(3)]
    assert all(m.shape == (80, 28, 3) and np.isfinite(m).all() for m in samples)
    assert sum(check(motion, m, engine.fps) for m in samples) >= 2


def test_a_squat_stays_in_place(engine):
    assert ground_speed(engine.text_to_motion("a person does one squat", 3.0, 0), engine.fps) < 0.4


def test_far_prompt_names_the_nearest_known_motions(engine):
    from myocli.text.known import FAR_BELOW

    far = engine.nearest_known("a chef chops vegetables")
    near = engine.nearest_known("somebody walks straight ahead")
    assert far[0][1] < FAR_BELOW <= near[0][1]
    assert "walk" in near[0][0]


def test_a_tampered_builtin_file_is_refused(tmp_path, monkeypatch, empty_registry):
    copy = tmp_path / "builtin"
    shutil.copytree(registry.BUILTIN, copy)
    monkeypatch.setattr(registry, "BUILTIN", copy)
    weights = copy / "ssm" / "myo-base" / "v1" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    from myocli.ssm.engine import SSMEngine

    with pytest.raises(MyoError, match="failed verification"):
        SSMEngine.load("ssm/myo-base")
    # The table of the text encoder is hashed too.
    table = copy / "retrieval" / "myo-base" / "v1" / "text_encoder" / "embeddings.safetensors"
    table.write_bytes(table.read_bytes()[:-8])
    assert any("embeddings.safetensors" in p for p in registry.verify(copy / "retrieval" / "myo-base" / "v1"))


def test_builtin_names_are_reserved_and_a_user_copy_shadows(empty_registry):
    with pytest.raises(MyoError, match="built-in"):
        registry.new_version("ssm", "myo-base")
    user_copy = registry.home() / "tokenizer" / "myo-base" / "v1"
    shutil.copytree(registry.resolve("tokenizer/myo-base").path, user_copy)
    assert registry.resolve("tokenizer/myo-base").path == user_copy


def test_generate_uses_the_builtin_model_and_warns_on_far_prompts(tmp_path):
    env = {"MYO_HOME": str(tmp_path / "none")}
    result = myo("generate", "a person walks forward", "--seconds", "2", "-o", str(tmp_path / "walk"), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "built-in model ssm/myo-base@1" in result.stderr and "Warning" not in result.stderr
    record = json.loads(result.stdout)["samples"][0]
    assert record["model"] == "ssm/myo-base@1" and record["far_from_known"] is False
    assert np.load(tmp_path / "walk_0.npy").shape == (40, 28, 3)
    far = myo("generate", "a chef chops vegetables", "--seconds", "1", "-o", str(tmp_path / "chef"), "--json", cwd=tmp_path, env=env)
    assert far.returncode == 0, far.stderr
    assert "Warning" in far.stderr and "far from every motion" in far.stderr
    assert json.loads(far.stdout)["samples"][0]["far_from_known"] is True
    empty = myo("generate", "  ", cwd=tmp_path, env=env)
    assert empty.returncode == 2


def test_the_build_trains_on_permissive_clips_only_with_every_clip_captioned(shared_data, pybullet_motions):
    from myocli.builtin.build import LICENSES, clip_rows, read_captions

    train, held = clip_rows(shared_data, holdout="mm")
    files = {Path(r["file"]) for r in train}
    assert not any("bandai" in str(f).lower() for f in files)
    assert {r["license"] for r in train} == set(LICENSES.values())
    assert all("HDM_mm_" in r["file"] for r in held) and not any("HDM_mm_" in str(f) for f in files)
    assert len({r["file"] for r in train + held}) == 233 + 8 + 12 + 15  # HDM05, CMU, DeepMimic, pybullet
    # Four sentences per motion (a clip, or a piece of one), each once per clip.
    motions = read_captions()
    assert all(len(texts) == 4 == len(set(texts)) for texts in motions.values())
    assert sum("@" in key for key in motions) == 12 and sum(key.endswith("_reversed") for key in motions) == 1
    per_piece = {}
    for row in train:
        per_piece.setdefault((row["file"], row["start"], row["end"], row["reverse"]), []).append(row["text"])
    assert {len(texts) for texts in per_piece.values()} == {4}
    assert not any(row["start"] or row["end"] or row["reverse"] for row in held)


def test_builtin_tokenizer_reproduces_a_held_out_performer(shared_data):
    from myocli.data.convert import ConvertOptions, convert_file
    from myocli.motion import metrics
    from myocli.motion.features import from_features
    from myocli.tokenizer import codec as tok

    _, model, _ = tok.load_tokenizer("tokenizer/myo-base")
    clip = convert_file(shared_data / "hdm05" / "amc" / "HDM_mm_kickLFront1Reps_019_120.amc", ConvertOptions())[0].motion
    features = tok.motion_features(clip, 20.0)
    decoded = tok.decode(model, tok.encode(model, features))
    frames = len(decoded)
    error = metrics.heading_aligned_mpjpe(from_features(decoded), from_features(features[:frames])).mean()
    assert error < 0.12  # metres; a code decoded from another clip is several times further


def test_builtin_evaluator_tells_a_walk_from_a_cartwheel(pybullet_motions):
    from myocli.data.convert import ConvertOptions, convert_file
    from myocli.retrieval.evaluator import Evaluator

    evaluator = Evaluator.load("retrieval/myo-base")
    motions = [convert_file(pybullet_motions / f"humanoid3d_{name}.txt", ConvertOptions(loop=4.0))[0].motion for name in ("walk", "cartwheel")]
    # Phrasings it never saw in training: the encoder carries them.
    report = evaluator.scores(motions, ["somebody strolls ahead", "a gymnast wheels over sideways on the hands"], 20.0)
    assert report["r_at_1"] == 1.0

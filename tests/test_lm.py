"""The motion language model end to end on real clips: tokenizer -> pretrain -> instruct -> generate and eval.

Models are tiny and train for a few steps, so what is checked is the machinery (shapes,
lengths, the floor, reproducibility, the registry, errors), not the quality of the motion;
benchmarks/RESULTS.md has the quality run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import add_tiny_tokenizer, assert_clean_failure, assert_resume_matches, myo, ok

from myocli import skeleton as sk


@pytest.fixture(scope="module")
def lm_home(tmp_path_factory, trained_tiny_tokenizer, tiny_lm_tokens):
    """A registry with a tokenizer, its token files, a pretrained and an instruction-tuned LM."""
    root = tmp_path_factory.mktemp("lm")
    env = {"MYO_HOME": str(root / "home")}
    add_tiny_tokenizer(trained_tiny_tokenizer, root / "home")
    common = ["--tokens", str(tiny_lm_tokens["train"]), "--val-tokens", str(tiny_lm_tokens["val"]), "--json"]
    pretrained = json.loads(ok(myo("lm", "pretrain", *common, "--config", str(tiny_lm_tokens["config"]), "--name", "pre", env=env)).stdout)
    tuned = json.loads(ok(myo("lm", "instruct", "pre", *common, "--name", "it", env=env)).stdout)
    return {"root": root, "env": env, "tokens": tiny_lm_tokens, "pretrained": pretrained, "tuned": tuned}


def test_pretrain_and_instruct_register_models_with_their_parents(lm_home):
    pre, tuned = lm_home["pretrained"], lm_home["tuned"]
    assert pre["checkpoint"] == "lm/pre@1" and tuned["checkpoint"] == "lm/it@1"
    assert set(pre["val"]) == {"loss_t2m", "loss_m2t", "loss_predict"}
    assert set(tuned["val"]) == {"loss_t2m", "loss_m2t", "loss_predict", "loss_inbetween"}
    manifest = json.loads((Path(tuned["path"]) / "manifest.json").read_text())
    assert [p["name"] for p in manifest["parents"]] == ["tokenizer/tok@1", "lm/pre@1"]
    assert manifest["config"]["instruction_tuned"] and manifest["training"]["learning_rate"] == 5e-4
    assert manifest["config"]["codebook_size"] == 32 and manifest["config"]["t5"]["vocab_size"] == 384 + 32 + 3
    ok(myo("ckpt", "verify", "lm/it", env=lm_home["env"]))


def test_engine_moves_every_weight_it_uses_to_the_device(lm_home, monkeypatch):
    """`LMEngine.to(device)` is how a GPU gets a model: the T5 and the tokenizer decoding its codes
    must follow together (checked on the meta device, which holds no data)."""
    from myocli.lm.engine import LMEngine

    monkeypatch.setenv("MYO_HOME", lm_home["env"]["MYO_HOME"])
    engine = LMEngine.load("lm/it").to("meta")
    tensors = [t for m in (engine.lm.model, engine.tokenizer) for t in (*m.parameters(), *m.buffers())]
    assert len(tensors) > 50 and {t.device.type for t in tensors} == {"meta"}


def test_generate_all_four_tasks(lm_home, motion_sets, tmp_path):
    env = lm_home["env"]
    out = json.loads(ok(myo("generate", "a person walks forward", "--seconds", "2", "-n", "2", "--seed", "5",
                            "-o", str(tmp_path / "walk"), "--json", env=env)).stdout)["samples"]  # fmt: skip
    assert [s["seed"] for s in out] == [5, 6] and out[0]["model"] == "lm/it@1"  # the instruction-tuned one by default
    for sample in out:
        motion = np.load(sample["npy"])
        assert motion.shape == (40, sk.NUM_JOINTS, 3) and motion.dtype == np.float32 and np.isfinite(motion).all()
        assert abs(motion[:, sk.FOOT_CONTACT_JOINTS, 1].min()) < 1e-6  # on the floor
        assert json.loads(Path(sample["json"]).read_text())["prompt"] == "a person walks forward"
    # Sample 0 of --seed 5 is the same whatever --num-samples says.
    again = json.loads(ok(myo("generate", "a person walks forward", "--seconds", "2", "--seed", "5", "--model", "lm/it",
                              "-o", str(tmp_path / "again"), "--json", env=env)).stdout)["samples"][0]  # fmt: skip
    assert np.array_equal(np.load(again["npy"]), np.load(out[0]["npy"]))
    # Physics refinement is on by default; --refine-steps 0 gives the decoded codes as they are.
    raw = json.loads(ok(myo("generate", "a person walks forward", "--seconds", "2", "--seed", "5", "--refine-steps", "0",
                            "-o", str(tmp_path / "raw"), "--json", env=env)).stdout)["samples"][0]  # fmt: skip
    assert out[0]["refine_steps"] == 10 and raw["refine_steps"] == 0
    assert np.load(raw["npy"]).shape == (40, sk.NUM_JOINTS, 3) and not np.allclose(np.load(raw["npy"]), np.load(out[0]["npy"]))

    clip = f"{motion_sets['test']}:0"
    # Sampled at temperature 1, where this few-step model still writes some text rather than ending at once.
    text = ok(myo("generate", "--task", "m2t", "--motion", clip, "-n", "2", "--temperature", "1", env=env)).stdout.splitlines()
    assert len(text) == 2 and "motion_id" not in "".join(text)  # one line per sample, text only

    for task in ("predict", "inbetween"):
        sample = json.loads(ok(myo("generate", "--task", task, "--motion", clip, "--seconds", "1",
                                   "-o", str(tmp_path / task), "--json", env=env)).stdout)["samples"][0]  # fmt: skip
        motion = np.load(sample["npy"])
        start, stop = sample["generated_frames"]
        assert stop - start == 20 and motion.shape[1:] == (sk.NUM_JOINTS, 3) and np.isfinite(motion).all()
        assert abs(motion[:, sk.FOOT_CONTACT_JOINTS, 1].min()) < 1e-6
        assert (task == "predict") == (stop == len(motion))


def test_generate_mp4_renders_each_sample(lm_home, tmp_path):
    ok(myo("generate", "a person kicks", "--seconds", "1", "--mp4", "-o", str(tmp_path / "kick"), env=lm_home["env"]))
    import imageio

    assert len(imageio.mimread(tmp_path / "kick_0.mp4", memtest=False)) == 20


def test_eval_reports_every_task(lm_home, motion_sets):
    report = json.loads(ok(myo("lm", "eval", "it", "--data", str(motion_sets["test"]), "--limit", "3", "--json", env=lm_home["env"])).stdout)
    assert report["clips"] == 3 and report["refine_steps"] == 10
    assert 0 <= report["t2m"]["valid_ratio"] <= 1 and report["t2m"]["length_error_s"] >= 0
    assert 0 <= report["m2t"]["bleu4"] <= 1 and 0 <= report["m2t"]["rouge_l"] <= 1
    for task in ("predict", "inbetween"):
        assert 0 < report[task]["ade_m"] < 10 and report[task]["fde_m"] > 0
    assert 0 <= report["real"]["foot_skating_ratio"] <= 1 and report["real"]["penetration_mm"] == 0  # converted clips sit on the floor


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_eval_with_a_retrieval_evaluator_scores_generated_and_real_motion(lm_home, motion_sets):
    env = lm_home["env"]
    ok(myo("retrieval", "train", "--data", str(motion_sets["train"]), "--name", "ev", "--debug", env=env))
    args = ("lm", "eval", "it", "--data", str(motion_sets["val"]), "--limit", "3", "--tasks", "t2m", "--retrieval", "ev", "--json")
    report = json.loads(ok(myo(*args, env=env)).stdout)
    assert report["retrieval"] == "retrieval/ev@1" and set(report) >= {"t2m", "real"} and "m2t" not in report
    for scores in (report["t2m"], report["real"]):
        assert 0 <= scores["r_at_1"] <= scores["r_at_2"] <= scores["r_at_3"] <= 1 and scores["mm_dist"] >= 0
    assert 1 <= report["t2m"]["candidates"] <= report["real"]["candidates"]  # distinct captions of the (valid) clips
    assert report["t2m"]["fid"] >= 0 and "fid" not in report["real"]
    assert report["real"]["candidates"] >= 2
    # The test clips all share one caption: nothing to rank it among.
    one_caption = myo("lm", "eval", "it", "--data", str(motion_sets["test"]), "--limit", "3", "--tasks", "t2m", "--retrieval", "ev", env=env)
    assert_clean_failure(one_caption, str(motion_sets["test"]), "two distinct captions", "--retrieval")


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_base_model_from_a_local_t5_keeps_its_weights_and_adds_motion_tokens(lm_home, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    base = tmp_path / "my-t5"
    config = T5Config(vocab_size=384, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=1, num_decoder_layers=1,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)  # fmt: skip
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(base)
    ByT5Tokenizer().save_pretrained(base)
    # Made like Flan-T5: an output layer of its own (transformers 5 saves every T5 tied).
    weights = load_file(base / "model.safetensors") | {"lm_head.weight": torch.randn(384, 32)}
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    settings = json.loads((base / "config.json").read_text()) | {"tie_word_embeddings": False}
    (base / "config.json").write_text(json.dumps(settings))
    env = lm_home["env"]
    result = json.loads(ok(myo("lm", "pretrain", "--tokens", str(lm_home["tokens"]["train"]), "--base-model", str(base),
                               "--name", "from-base", "--max-steps", "2", "--lr", "0", "--json", env=env)).stdout)  # fmt: skip
    folder = Path(result["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["base_model"] == str(base) and manifest["config"]["t5"]["vocab_size"] == 384 + 32 + 3
    assert any(name.startswith("text_tokenizer/") for name in manifest["files"])
    trained, original = load_file(folder / "model.safetensors"), load_file(base / "model.safetensors")
    key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    assert torch.equal(trained[key], original[key])  # --lr 0: the pretrained weights came through unchanged
    assert torch.equal(trained["shared.weight"][:384], original["shared.weight"])
    assert torch.equal(trained["lm_head.weight"][:384], original["lm_head.weight"])  # the output layer is kept, not tied
    ok(myo("generate", "a person jumps", "--model", "lm/from-base", "--seconds", "1", "-o", str(tmp_path / "jump"), env=env))
    assert np.load(tmp_path / "jump_0.npy").shape == (20, sk.NUM_JOINTS, 3)


def test_a_checkpoint_from_before_text_encoders_still_loads(lm_home, tmp_path):
    """Configs saved before `--text-encoder` existed have no text_encoder fields; they load as the ByT5 models they are."""
    from myocli import registry

    source, home = Path(lm_home["env"]["MYO_HOME"]), tmp_path / "home"
    for part in ("tokenizer/tok", "lm/pre"):
        shutil.copytree(source / part, home / part)
    folder = home / "lm" / "pre" / "v1"
    config = json.loads((folder / "config.json").read_text())
    old = {k: v for k, v in config.items() if k not in ("text_encoder", "text_encoder_dim")}
    assert old != config and old["text_tokenizer"] == "byt5"
    (folder / "config.json").write_text(json.dumps(old, indent=2) + "\n")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"] = old
    manifest["files"]["config.json"] = {"sha256": registry.sha256(folder / "config.json"), "bytes": (folder / "config.json").stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    env = {"MYO_HOME": str(home)}
    ok(myo("generate", "a person walks", "--model", "lm/pre", "--seconds", "1", "-o", str(tmp_path / "walk"), env=env))
    assert np.load(tmp_path / "walk_0.npy").shape == (20, sk.NUM_JOINTS, 3)


@pytest.mark.slow  # two training processes through accelerate: the longest tests
def test_two_processes_through_gpus_2_keep_identical_weights(lm_home):
    env = lm_home["env"]
    result = json.loads(ok(myo("lm", "pretrain", "--tokens", str(lm_home["tokens"]["train"]), "--config", str(lm_home["tokens"]["config"]),
                               "--name", "ddp", "--gpus", "2", "--max-steps", "2", "--json", env=env)).stdout)  # fmt: skip
    training = json.loads((Path(result["path"]) / "manifest.json").read_text())["training"]
    assert training["num_processes"] == 2 and training["steps_done"] == 2
    digests = training["rank_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # gradients were averaged across the ranks


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_resume_matches_an_uninterrupted_run(lm_home):
    from safetensors.torch import load_file

    env = lm_home["env"]
    common = ["--tokens", str(lm_home["tokens"]["train"]), "--config", str(lm_home["tokens"]["config"])]
    ok(myo("lm", "pretrain", *common, "--name", "straight", "--max-steps", "6", env=env))
    ok(myo("lm", "pretrain", *common, "--name", "split", "--max-steps", "3", "--keep-state", env=env))
    ok(myo("lm", "pretrain", *common, "--name", "split", "--max-steps", "6", "--resume", env=env))
    home = Path(env["MYO_HOME"]) / "lm"
    straight, resumed = load_file(home / "straight/v1/model.safetensors"), load_file(home / "split/v2/model.safetensors")
    assert_resume_matches(straight, resumed)


def test_bad_input_gives_one_clear_error_and_writes_nothing(lm_home, motion_sets, tmp_path):
    env = lm_home["env"]
    usage = myo("generate", "  ", "-o", str(tmp_path / "x"), env=env)
    assert usage.returncode == 2 and "prompt is empty" in usage.stderr
    zero = myo("generate", "a person walks", "--seconds", "0", "-o", str(tmp_path / "x"), env=env)
    assert zero.returncode == 2 and "--seconds" in zero.stderr
    no_motion = myo("generate", "--task", "predict", env=env)
    assert no_motion.returncode == 2 and "--motion" in no_motion.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((30, 27, 3), dtype=np.float32))
    assert_clean_failure(myo("generate", "--task", "m2t", "--motion", str(tmp_path / "wrong.npy"), env=env), "wrong.npy", "(30, 27, 3)")
    ssm_only = myo("generate", "a person walks", "--steps", "5", "-o", str(tmp_path / "x"), env=env)
    assert ssm_only.returncode == 2 and "--steps" in ssm_only.stderr and "--guidance" not in ssm_only.stderr
    too_long = myo("generate", "a person walks", "--seconds", "60", "-o", str(tmp_path / "x"), env=env)
    assert_clean_failure(too_long, "--seconds 60", "up to 8 s")
    assert not list(tmp_path.glob("x*"))

    # An LM whose tokenizer checkpoint has gone: a registry copy without it.
    broken = tmp_path / "broken"
    shutil.copytree(env["MYO_HOME"], broken)
    shutil.rmtree(broken / "tokenizer")
    missing = myo("generate", "a person walks", "--model", "lm/it", "-o", str(tmp_path / "y"), env={"MYO_HOME": str(broken)})
    assert_clean_failure(missing, "lm/it@1", "tokenizer/tok@1", "put that checkpoint back")
    tokens_without = myo("lm", "pretrain", "--tokens", str(lm_home["tokens"]["train"]), "--name", "z", env={"MYO_HOME": str(broken)})
    assert_clean_failure(tokens_without, "tokenizer/tok@1", "not in the registry")
    assert not (broken / "lm" / "z").exists()

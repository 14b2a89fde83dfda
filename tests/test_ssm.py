"""The state-space generator: its scan, its physics terms, and train -> generate on real clips.

Models are tiny and train for a few steps, so the end-to-end checks are about the machinery
(lengths, the floor, seeds, resume, errors); benchmarks/RESULTS.md has the quality run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import add_tiny_tokenizer, assert_clean_failure, assert_resume_matches, myo, ok

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset
from myocli.motion import features as feat
from myocli.motion.metrics import foot_skating_ratio
from myocli.motion.physics_loss import contact_terms, physics_terms
from myocli.motion.refine import refine
from myocli.ssm import model as ssm

TINY_SSM = """\
model: {width: 32, depth: 2, state_size: 4, text_width: 32, text_layers: 1, max_frames: 80, sample_steps: 4}
train: {max_steps: 6, batch_size: 8, learning_rate: 1.0e-3, log_every: 2, eval_every: 3, save_every: 3}
"""


def _model(**overrides) -> ssm.MotionFlow:
    torch.manual_seed(0)
    model = ssm.MotionFlow(ssm.SSMConfig(width=32, depth=2, state_size=8, text_width=32, max_frames=80, **overrides)).double()
    for block in model.blocks:  # zero-initialised modulation would make every block the identity
        torch.nn.init.normal_(block.modulation.weight, std=0.2)
    torch.nn.init.normal_(model.patch_out.weight, std=0.2)
    return model


def test_parallel_scan_and_recurrent_step_agree_to_float_precision():
    model = _model()
    x = torch.randn(3, 80, feat.FEATURE_DIM, dtype=torch.float64)
    mask = torch.arange(20) < torch.tensor([20, 13, 7]).unsqueeze(-1)
    cond = model.text_condition(ssm.byte_ids(["a person walks", "a person jumps", "kick"], 160))
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    parallel = model.velocity(x, t, cond, mask, ssm.PARALLEL)
    recurrent = model.velocity(x, t, cond, mask, ssm.RECURRENT)
    assert parallel.abs().mean() > 0.1  # a block that did nothing would agree trivially
    assert torch.allclose(parallel, recurrent, atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["loop", "doubling"])
def test_scan_kernels_match_the_recurrence_and_their_gradients_check(method):
    torch.manual_seed(0)
    a = torch.rand(2, 37, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 37, 3, 4, dtype=torch.float64, requires_grad=True)
    expected, state = [], torch.zeros(2, 3, 4, dtype=torch.float64)
    for t in range(37):
        state = a[:, t] * state + b[:, t]
        expected.append(state)
    assert torch.allclose(ssm.parallel_linear_scan(a, b, method), torch.stack(expected, 1), atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: ssm.parallel_linear_scan(a, b, method), (a, b))


def test_the_gpu_scan_runs_through_the_whole_model_on_a_cpu(monkeypatch):
    """On a GPU `auto` picks the doubling scan; made to pick it here, the model's output and its
    gradients equal the loop's (the CPU's pick), so the GPU path is exercised without a GPU."""
    model = _model()
    x = torch.randn(2, 40, feat.FEATURE_DIM, dtype=torch.float64)
    cond = model.text_condition(ssm.byte_ids(["a person walks", "kick"], 160)).detach()  # once: the text encoder has dropout
    t = torch.tensor([0.2, 0.8], dtype=torch.float64)
    mask = torch.arange(10) < torch.tensor([10, 6]).unsqueeze(-1)

    def run(method: str):
        monkeypatch.setattr(ssm, "auto_scan_method", lambda a: method)
        model.zero_grad()
        out = model.velocity(x, t, cond, mask, ssm.PARALLEL)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    loop, loop_grads = run("loop")
    doubling, doubling_grads = run("doubling")
    assert loop.abs().mean() > 0.1 and len(loop_grads) > 10
    assert torch.allclose(doubling, loop, atol=1e-12, rtol=0)
    assert all(torch.allclose(d, g, atol=1e-10, rtol=1e-9) for d, g in zip(doubling_grads, loop_grads, strict=True))


def test_engine_moves_every_weight_it_uses_to_the_device():
    """`SSMEngine.to(device)` is how a GPU gets the built-in model: every parameter and buffer of the
    generator and of the tokenizer decoder it samples through must follow (checked on the meta device)."""
    from myocli.ssm.engine import SSMEngine

    engine = SSMEngine.load("ssm/myo-base").to("meta")
    modules = [engine.model, engine.latent.model]
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    assert len(tensors) > 50 and {t.device.type for t in tensors} == {"meta"}


def test_padding_leaves_the_real_frames_unchanged():
    model = _model()
    x = torch.randn(2, 80, feat.FEATURE_DIM, dtype=torch.float64)
    cond = model.text_condition(ssm.byte_ids(["a person walks", "a person jumps"], 160))
    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    padded = model.velocity(x, t, cond, torch.arange(20) < torch.tensor([20, 9]).unsqueeze(-1))
    alone = model.velocity(x[1:, :36], t[1:], cond[1:], torch.ones(1, 9, dtype=torch.bool))
    assert torch.allclose(padded[1, :36], alone[0], atol=1e-12)


def test_torch_positions_match_the_numpy_inverse(motion_sets):
    clip = read_dataset(motion_sets["test"]).sequences[0].motion.astype(np.float64)
    features = feat.to_features(clip, 20.0)
    positions = feat.from_features_torch(torch.from_numpy(features)[None])[0].numpy()
    np.testing.assert_allclose(positions, feat.from_features(features), atol=1e-9)
    features[0, feat.ROOT_PLANAR_VELOCITY] = 0.3  # what a generator may put there; placement ignores it
    features[0, feat.ROOT_YAW_VELOCITY] = 0.5
    placed = feat.generated_positions_torch(torch.from_numpy(features)[None])[0].numpy()
    np.testing.assert_allclose(placed, feat.generated_positions(features), atol=1e-5)


def test_physics_terms_are_near_zero_on_real_motion_and_grow_when_feet_slide_and_sink(motion_sets):
    clips = [s.motion for s in read_dataset(motion_sets["test"]).sequences if len(s) >= 40][:2]
    real = torch.stack([torch.from_numpy(feat.to_features(c[:40], 20.0)) for c in clips]).float()
    mask = torch.ones(len(clips), 40, dtype=torch.bool)
    clean = physics_terms(real, real, mask)
    assert all(float(v.max()) < 1e-4 for k, v in clean.items() if k != "skating")
    assert float(clean["skating"].max()) < 1.0  # real contact feet move under 1 cm a frame
    broken = real.clone()
    broken[..., feat.ROOT_PLANAR_VELOCITY.start + 1] += 0.05  # glide forward 1 m/s, feet and all
    heights = torch.arange(feat.LOCAL_POSITIONS.start + 1, feat.LOCAL_POSITIONS.stop, 3)
    broken[..., heights] -= 0.1  # and sink 10 cm (every joint but the pelvis)
    bad = physics_terms(broken, real, mask)
    assert (bad["skating"] > clean["skating"] + 4).all() and (bad["penetration"] > 5).all()


def test_refinement_stops_gliding_feet_and_keeps_the_pose(motion_sets):
    clips = [s.motion.astype(np.float64) for s in read_dataset(motion_sets["test"]).sequences if len(s) >= 40][:2]
    real = np.stack([feat.to_features(c[:40], 20.0) for c in clips])
    gliding = real.copy()
    gliding[:, 1:, feat.ROOT_PLANAR_VELOCITY.start + 1] += 0.05  # the whole body glides forward at 1 m/s
    scale = torch.from_numpy(gliding.reshape(-1, feat.FEATURE_DIM).std(0) + 1e-2)  # the sample's "normalised units"
    sample = torch.from_numpy(gliding) / scale
    refined = (refine(sample, lambda x: x * scale, 20.0, steps=40) * scale).numpy()
    assert torch.equal(refine(sample, lambda x: x * scale, 20.0, steps=0), sample)
    forward = feat.ROOT_PLANAR_VELOCITY.start + 1
    for original, before, after in zip(real, gliding, refined, strict=True):
        skating_before = foot_skating_ratio(feat.generated_positions(before), 20.0)
        skating_after = foot_skating_ratio(feat.generated_positions(after), 20.0)
        assert skating_before > 0.5 and skating_after < skating_before / 3, (skating_before, skating_after)
        glide_left = after[1:, forward].mean() - original[1:, forward].mean()
        assert glide_left < 0.5 * 0.05, glide_left  # the glide is what went ...
        pose_change = np.abs(after[:, feat.LOCAL_POSITIONS] - before[:, feat.LOCAL_POSITIONS]).mean()
        assert pose_change < 0.01, pose_change  # ... and the pose stayed


@pytest.fixture(scope="module")
def ssm_home(tmp_path_factory, motion_sets):
    root = tmp_path_factory.mktemp("ssm")
    env = {"MYO_HOME": str(root / "home")}
    (root / "ssm.yaml").write_text(TINY_SSM)
    common = ["--data", str(motion_sets["train"]), "--config", str(root / "ssm.yaml")]
    trained = json.loads(ok(myo("ssm", "train", *common, "--val", str(motion_sets["val"]), "--name", "tiny", "--json", env=env)).stdout)
    return {"root": root, "env": env, "trained": trained, "common": common}


def test_train_registers_the_model_with_each_loss_term(ssm_home):
    trained = ssm_home["trained"]
    assert trained["checkpoint"] == "ssm/tiny@1" and trained["steps"] == 6
    assert {"flow", "length", "physics/skating", "physics/penetration", "physics/floating", "physics/bone_length"} <= set(trained["train"])
    assert {"flow", "physics_skating"} <= set(trained["val"])
    logs = list((Path(trained["path"]) / "logs").rglob("events.out.tfevents*"))
    assert logs, "no TensorBoard log"
    ok(myo("ckpt", "verify", "ssm/tiny", env=ssm_home["env"]))


def test_generate_gives_finite_motions_of_the_requested_length_on_the_floor(ssm_home, tmp_path):
    env = ssm_home["env"]
    stem = tmp_path / "walk"
    out = json.loads(ok(myo("generate", "a person walks", "--model", "ssm/tiny", "--seconds", "2", "-n", "2", "-o", str(stem), "--json", env=env)).stdout)
    motions = [np.load(s["npy"]) for s in out["samples"]]
    for motion in motions:
        assert motion.shape == (40, sk.NUM_JOINTS, 3) and np.isfinite(motion).all()
        assert abs(float(motion[:, sk.FOOT_CONTACT_JOINTS, 1].min())) < 1e-6  # the lowest foot point on the floor
    assert not np.allclose(motions[0], motions[1])  # seeds 0 and 1
    again = tmp_path / "again"
    ok(myo("generate", "a person walks", "--model", "ssm/tiny", "--seconds", "2", "--seed", "1", "-o", str(again), env=env))
    np.testing.assert_array_equal(np.load(f"{again}_0.npy"), motions[1])  # sample I is seed + I
    free = json.loads(ok(myo("generate", "a person walks", "--model", "ssm/tiny", "-o", str(tmp_path / "free"), "--json", env=env)).stdout)
    assert free["samples"][0]["frames"] % 4 == 0 and 4 <= free["samples"][0]["frames"] <= 80  # from the length head


def test_resume_matches_an_uninterrupted_run(ssm_home):
    from safetensors.torch import load_file

    env, common = ssm_home["env"], ssm_home["common"]
    ok(myo("ssm", "train", *common, "--name", "straight", env=env))
    ok(myo("ssm", "train", *common, "--name", "split", "--max-steps", "3", "--keep-state", env=env))
    ok(myo("ssm", "train", *common, "--name", "split", "--max-steps", "6", "--resume", env=env))
    home = Path(env["MYO_HOME"]) / "ssm"
    straight, resumed = load_file(home / "straight/v1/model.safetensors"), load_file(home / "split/v2/model.safetensors")
    assert_resume_matches(straight, resumed)


@pytest.mark.slow  # two training processes through accelerate: the longest tests
def test_two_processes_through_gpus_2_keep_identical_weights(ssm_home):
    env, common = ssm_home["env"], ssm_home["common"]
    result = json.loads(ok(myo("ssm", "train", *common, "--name", "ddp", "--gpus", "2", "--max-steps", "3", "--json", env=env)).stdout)
    training = json.loads((Path(result["path"]) / "manifest.json").read_text())["training"]
    assert training["num_processes"] == 2 and training["steps_done"] == 3
    digests = training["rank_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # gradients were averaged across the ranks


def test_pretrained_text_encoder_from_a_local_folder(ssm_home, tmp_path):
    from transformers import ByT5Tokenizer, T5Config, T5Model

    folder = tmp_path / "my-t5"
    torch.manual_seed(0)
    T5Model(T5Config(vocab_size=384, d_model=24, d_ff=48, d_kv=8, num_heads=2, num_layers=1, num_decoder_layers=1)).save_pretrained(folder)
    ByT5Tokenizer().save_pretrained(folder)
    env, common = ssm_home["env"], ssm_home["common"]
    result = json.loads(ok(myo("ssm", "train", *common, "--name", "t5text", "--text-encoder", str(folder), "--max-steps", "2", "--json", env=env)).stdout)
    manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
    assert manifest["config"]["text_encoder_dim"] == 24 and any(f.startswith("text_encoder/") for f in manifest["files"])
    weights = manifest["files"]["model.safetensors"]["bytes"]
    assert weights < (folder / "model.safetensors").stat().st_size + 2_000_000  # the frozen encoder is not in our weights
    ok(myo("generate", "a person jumps", "--model", "ssm/t5text", "--seconds", "1", "-o", str(tmp_path / "jump"), env=env))
    assert np.load(tmp_path / "jump_0.npy").shape == (20, sk.NUM_JOINTS, 3)


def test_bad_input_gives_one_clear_error_and_writes_nothing(ssm_home, motion_sets, tmp_path):
    env = ssm_home["env"]
    too_long = myo("generate", "a person walks", "--model", "ssm/tiny", "--seconds", "30", "-o", str(tmp_path / "x"), env=env)
    assert_clean_failure(too_long, "--seconds 30", "up to 4 s")
    wrong_task = myo("generate", "--task", "predict", "--motion", f"{motion_sets['test']}:0", "--model", "ssm/tiny", env=env)
    assert wrong_task.returncode == 2 and "text-to-motion only" in wrong_task.stderr
    lm_only = myo("generate", "a person walks", "--model", "ssm/tiny", "--guidance", "2", "--steps", "0", env=env)
    assert lm_only.returncode == 2
    assert not list(tmp_path.iterdir())
    negative = myo("ssm", "train", *ssm_home["common"], "--name", "neg", "--physics-weight", "-1", env=env)
    assert negative.returncode == 2 and "--physics-weight" in negative.stderr
    missing = myo("ssm", "train", "--data", str(tmp_path / "nope.h5"), "--name", "x", env=env)
    assert_clean_failure(missing, "nope.h5", "no such file")
    assert not (Path(env["MYO_HOME"]) / "ssm" / "neg").exists() and not (Path(env["MYO_HOME"]) / "ssm" / "x").exists()


def test_latent_mode_generates_through_the_tokenizers_decoder(ssm_home, motion_sets, trained_tiny_tokenizer, tmp_path):
    from myocli.ssm.latent import LatentSpace
    from myocli.tokenizer import codec as tok

    env, common = ssm_home["env"], ssm_home["common"]
    add_tiny_tokenizer(trained_tiny_tokenizer, Path(env["MYO_HOME"]))
    result = json.loads(ok(myo("ssm", "train", *common, "--latent", "tok", "--name", "lat", "--max-steps", "2", "--keep-state", "--json", env=env)).stdout)
    manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
    assert manifest["config"]["latent_tokenizer"] == "tokenizer/tok@1" and manifest["config"]["latent_dim"] == 16
    assert manifest["parents"][0]["name"] == "tokenizer/tok@1"
    assert {"physics/skating", "physics/bone_length"} <= set(result["train"])

    # The latent is the tokenizer's quantized code: decoding it is the tokenizer's own decode.
    tokenizer_home = Path(env["MYO_HOME"]) / "tokenizer" / "tok" / "v1"
    space = LatentSpace.load(str(tokenizer_home))
    features = tok.sequence_features(read_dataset(motion_sets["val"]))[0][:40]
    decoded = space.decode(torch.from_numpy(space.encode(features))[None])[0].double().numpy()
    np.testing.assert_allclose(decoded, tok.decode(space.model, tok.encode(space.model, features)), atol=1e-4)

    out = json.loads(ok(myo("generate", "a person walks", "--model", "ssm/lat", "--seconds", "2", "-o", str(tmp_path / "w"), "--json", env=env)).stdout)
    motion = np.load(out["samples"][0]["npy"])
    assert motion.shape == (40, sk.NUM_JOINTS, 3) and np.isfinite(motion).all()
    assert abs(float(motion[:, sk.FOOT_CONTACT_JOINTS, 1].min())) < 1e-6
    assert out["samples"][0]["refine_steps"] == 10  # the model's default
    unrefined = json.loads(ok(myo("generate", "a person walks", "--model", "ssm/lat", "--seconds", "2", "--refine-steps", "0",
                                  "-o", str(tmp_path / "raw"), "--json", env=env)).stdout)  # fmt: skip
    assert unrefined["samples"][0]["refine_steps"] == 0
    raw = np.load(unrefined["samples"][0]["npy"])
    assert not np.allclose(raw, motion)  # the refinement moved something ...

    def physics(positions):
        return sum(float(v) for v in contact_terms(torch.from_numpy(positions)[None].double(), 20.0).values())

    assert physics(motion) <= physics(raw)  # ... and not for the worse

    # Without its tokenizer the generator cannot decode: one clear error, no output.
    tokenizer_home.rename(tokenizer_home.with_name("away"))
    try:
        gone = myo("generate", "a person walks", "--model", "ssm/lat", "--seconds", "2", "-o", str(tmp_path / "gone"), env=env)
    finally:
        tokenizer_home.with_name("away").rename(tokenizer_home)
    assert_clean_failure(gone, "ssm/lat@1", "tokenizer/tok@1")
    assert not list(tmp_path.glob("gone*"))
    # --resume goes on with the command that started the run (--latent repeated, or left out); a changed setting is refused by name.
    refused = myo("ssm", "train", *common, "--latent", "tok", "--name", "lat", "--physics-weight", "0.5", "--resume", env=env)
    assert_clean_failure(refused, "--resume continues a run with its own settings", "physics_weight")
    resumed = json.loads(ok(myo("ssm", "train", *common, "--latent", "tok", "--name", "lat", "--resume", "--max-steps", "3", "--json", env=env)).stdout)
    config = json.loads((Path(resumed["path"]) / "config.json").read_text())
    assert resumed["steps"] == 3 and config["latent_tokenizer"] == "tokenizer/tok@1"  # the run's own tokenizer again


def test_the_trainer_optimises_the_physics_terms_times_their_weight(motion_sets, tmp_path, monkeypatch):
    """`myo ssm train` minimises flow + length_weight * length + physics_weight * (sum of the physics terms it
    logs): the loss function the trainer hands to the training loop is taken from two runs, physics weight
    0 and 2, and called on one batch with the same flow times and noise."""
    from myocli.ssm import train as trainer
    from myocli.train import loop

    class Captured(Exception):
        pass

    def capture(accelerator, model, dataset, loss_fn, *args, **kwargs):
        captured.update(model=model, dataset=dataset, loss_fn=loss_fn)
        raise Captured  # stop before any step is taken

    captured = {}
    monkeypatch.setattr(loop, "fit", capture)
    monkeypatch.setenv("MYO_HOME", str(tmp_path / "home"))
    (tmp_path / "ssm.yaml").write_text(TINY_SSM)

    def loss_and_gradient(physics_weight: float):
        run = trainer.SSMRun(data=motion_sets["train"], name=f"w{physics_weight:g}", config=str(tmp_path / "ssm.yaml"),
                             model_overrides={"physics_weight": physics_weight, "length_weight": 0.5})  # fmt: skip
        with pytest.raises(Captured):
            trainer.train_ssm(run)
        model, batch = captured["model"], captured["dataset"].__getitems__(list(range(8)))
        torch.manual_seed(0)  # the same flow times, noise and text dropout for both weights
        loss, logs = captured["loss_fn"](model, batch)
        loss.backward()
        gradient = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return loss.item(), {name: value.item() for name, value in logs.items()}, gradient

    loss_0, logs_0, gradient_0 = loss_and_gradient(0.0)
    loss_2, logs_2, gradient_2 = loss_and_gradient(2.0)
    physics = sum(value for name, value in logs_2.items() if name.startswith("physics/"))
    assert physics > 0.1 and logs_0 | {"loss": 0} == pytest.approx(logs_2 | {"loss": 0})  # same model, batch and draws
    assert loss_0 == pytest.approx(logs_0["flow"] + 0.5 * logs_0["length"], rel=1e-6)
    assert loss_2 - loss_0 == pytest.approx(2.0 * physics, rel=1e-4)
    assert not torch.allclose(gradient_2, gradient_0)  # and the physics terms pull on the weights

"""`myo tokenizer train|eval|encode` and `myo ckpt` as a user runs them, on real clips with a tiny model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_failure, assert_resume_matches, myo
from safetensors.torch import load_file

from myocli.data.h5 import Sequence, read_dataset, write_dataset
from myocli.data.tokens import read_tokens


@pytest.fixture()
def home(tmp_path):
    return {"MYO_HOME": str(tmp_path / "home")}


def train(motion_sets, config, home, name, *extra):
    return myo("tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(config), "--name", name, *extra, env=home)


def weights(home, name, version=1):
    return load_file(f"{home['MYO_HOME']}/tokenizer/{name}/v{version}/model.safetensors")


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def manifest(home, name, version=1):
    return json.loads(myo("ckpt", "show", f"tokenizer/{name}@{version}", "--json", env=home).stdout)


def test_train_eval_encode_list_verify(motion_sets, tiny_tokenizer_config, home, tmp_path):
    result = train(motion_sets, tiny_tokenizer_config, home, "e2e", "--val", str(motion_sets["val"]), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["checkpoint"] == "tokenizer/e2e@1" and summary["steps"] == 6
    assert 0 < summary["val"]["mpjpe_mm"] < 5000 and 0 < summary["val"]["codebook_usage"] <= 1

    evaluation = myo("tokenizer", "eval", "e2e", "--data", str(motion_sets["test"]), "--json", env=home)
    assert evaluation.returncode == 0, evaluation.stderr
    metrics = json.loads(evaluation.stdout)
    test_set = read_dataset(motion_sets["test"])
    assert metrics["frames"] == sum(len(s) // 4 * 4 for s in test_set.sequences)
    assert 0 < metrics["pa_mpjpe_mm"] <= metrics["mpjpe_mm"] <= metrics["global_mpjpe_mm"] + 1e-6
    assert 0 < metrics["codebook_usage"] <= 1 and 1 <= metrics["perplexity"] <= 32

    tokens_path = tmp_path / "tokens.h5"
    encoded = myo("tokenizer", "encode", "tokenizer/e2e", "--data", str(motion_sets["test"]), "-o", str(tokens_path), env=home)
    assert encoded.returncode == 0, encoded.stderr
    tokens = read_tokens(tokens_path)
    assert tokens.attrs["tokenizer"] == "tokenizer/e2e@1" and tokens.attrs["codebook_size"] == 32
    assert [len(t) for t in tokens.tokens] == [len(s) // 4 for s in test_set.sequences]
    assert tokens.captions[0] == test_set.sequences[0].captions
    assert all(t.shape[1] == 1 and t.min() >= 0 and t.max() < 32 for t in tokens.tokens)
    again = myo("tokenizer", "encode", "e2e", "--data", str(motion_sets["test"]), "-o", str(tokens_path), env=home)
    assert_clean_failure(again, "already exists", "--overwrite")

    # --offsets 3: each motion tokenized from frames 0, 1 and 2; the later starts are other code sequences of it.
    shifted_path = tmp_path / "shifted.h5"
    offset_run = myo("tokenizer", "encode", "e2e", "--data", str(motion_sets["test"]), "--offsets", "3", "-o", str(shifted_path), env=home)
    assert offset_run.returncode == 0, offset_run.stderr
    shifted = read_tokens(shifted_path)
    first = test_set.sequences[0]
    assert shifted.names[:3] == [first.name, f"{first.name}+1", f"{first.name}+2"]
    assert [len(t) for t in shifted.tokens[:3]] == [(len(first) - start) // 4 for start in range(3)]
    np.testing.assert_array_equal(shifted.tokens[0], tokens.tokens[0])
    assert shifted.captions[2] == first.captions and shifted.groups[2] == shifted.groups[0]
    assert len(shifted.tokens) == 3 * len(tokens.tokens)  # every test clip is long enough for each start
    too_many = myo("tokenizer", "encode", "e2e", "--data", str(motion_sets["test"]), "--offsets", "5", "-o", str(tmp_path / "x.h5"), env=home)
    assert too_many.returncode == 2 and "--offsets" in too_many.stderr and not (tmp_path / "x.h5").exists()

    listed = json.loads(myo("ckpt", "list", "--json", env=home).stdout)
    assert [(r["name"], r["version"], r["status"]) for r in listed if r["status"] != "built-in"] == [("tokenizer/e2e", 1, "complete")]
    verified = myo("ckpt", "verify", "tokenizer/e2e", env=home)
    assert verified.returncode == 0 and "OK" in verified.stdout
    info = manifest(home, "e2e")
    assert info["dataset"]["train"]["sha256"] and info["training"]["steps_done"] == 6
    assert info["config"]["codebook_size"] == 32 and info["files"]["model.safetensors"]["sha256"]
    folder = tmp_path / "home" / "tokenizer" / "e2e" / "v1"
    assert not (folder / "training_state").exists()  # removed once finished (no --keep-state)
    assert list((folder / "logs").rglob("events.out.tfevents.*"))  # TensorBoard


def test_tampered_checkpoint_is_refused(motion_sets, tiny_tokenizer_config, home, tmp_path):
    assert train(motion_sets, tiny_tokenizer_config, home, "t", "--max-steps", "2").returncode == 0
    weights_file = tmp_path / "home" / "tokenizer" / "t" / "v1" / "model.safetensors"
    data = bytearray(weights_file.read_bytes())
    data[len(data) // 2] ^= 0x10
    weights_file.write_bytes(bytes(data))
    assert_clean_failure(myo("ckpt", "verify", "tokenizer/t", env=home), "model.safetensors", "sha256")
    assert_clean_failure(myo("tokenizer", "eval", "t", "--data", str(motion_sets["test"]), env=home), "failed verification")


def test_two_processes_through_gpus_2_finish_with_identical_weights(motion_sets, tiny_tokenizer_config, home):
    result = train(motion_sets, tiny_tokenizer_config, home, "ddp", "--gpus", "2", "--max-steps", "4")
    assert result.returncode == 0, result.stderr
    training = manifest(home, "ddp")["training"]
    assert training["num_processes"] == 2 and training["steps_done"] == 4
    digests = training["rank_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    single = train(motion_sets, tiny_tokenizer_config, home, "single", "--max-steps", "4")
    assert single.returncode == 0
    # Two ranks see twice the data per step, so the weights differ from a one-process run: the sync is real.
    assert manifest(home, "single")["training"]["rank_weights_sha256"][0] != digests[0]


def test_resume_after_max_steps_matches_an_uninterrupted_run(motion_sets, tiny_tokenizer_config, home):
    assert train(motion_sets, tiny_tokenizer_config, home, "straight", "--max-steps", "6").returncode == 0
    assert train(motion_sets, tiny_tokenizer_config, home, "split", "--max-steps", "3", "--keep-state").returncode == 0
    resumed = train(motion_sets, tiny_tokenizer_config, home, "split", "--max-steps", "6", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    # The first leg finished (kept with --keep-state), so training on writes version 2.
    assert_resume_matches(weights(home, "straight"), weights(home, "split", 2))
    assert manifest(home, "split", 2)["training"]["steps_done"] == 6


def test_sigterm_saves_state_and_resume_matches_an_uninterrupted_run(motion_sets, tiny_tokenizer_config, home):
    steps = "30"
    assert train(motion_sets, tiny_tokenizer_config, home, "calm", "--max-steps", steps).returncode == 0
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(motion_sets["train"]),
               "--config", str(tiny_tokenizer_config), "--name", "stormy", "--max-steps", steps]  # fmt: skip
    code, rest = _interrupt_after_step(command, home, 3)
    assert code == 128 + signal.SIGTERM, rest
    assert "interrupted by SIGTERM" in rest and "--resume" in rest
    rows = json.loads(myo("ckpt", "list", "--json", env=home).stdout)
    assert {"name": "tokenizer/stormy", "version": 1, "status": "training"}.items() <= next(r for r in rows if r["name"] == "tokenizer/stormy").items()
    resumed = train(motion_sets, tiny_tokenizer_config, home, "stormy", "--max-steps", steps, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_resume_matches(weights(home, "calm"), weights(home, "stormy"))


def test_residual_quantizers_and_debug_mode(motion_sets, tiny_tokenizer_config, home):
    result = train(motion_sets, tiny_tokenizer_config, home, "rvq", "--num-quantizers", "3", "--debug", "--json")
    assert result.returncode == 0, result.stderr
    info = manifest(home, "rvq")
    assert info["config"]["num_quantizers"] == 3 and info["training"]["debug"] and info["training"]["train_sequences"] <= 8
    full = json.loads(myo("tokenizer", "eval", "rvq", "--data", str(motion_sets["test"]), "--json", env=home).stdout)
    coarse = json.loads(myo("tokenizer", "eval", "rvq", "--data", str(motion_sets["test"]), "--num-quantizers", "1", "--json", env=home).stdout)
    assert full["quantizers_used"] == 3 and coarse["quantizers_used"] == 1
    assert len(full["codebook_usage_per_quantizer"]) == 3


def assert_usage_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_bad_input_gives_one_clear_error_and_leaves_no_checkpoint(motion_sets, tiny_tokenizer_config, home, tmp_path):
    missing = myo("tokenizer", "train", "--data", str(tmp_path / "nope.h5"), "--name", "x", env=home)
    assert_clean_failure(missing, "nope.h5", "no such file")
    assert_usage_error(myo("tokenizer", "train", "--data", str(motion_sets["train"]), "--name", "x", "--config", "huge", env=home),
                       "--config", "tiny")  # fmt: skip
    assert_usage_error(train(motion_sets, tiny_tokenizer_config, home, "x", "--mixed-precision", "fp8"), "--mixed-precision")
    assert_usage_error(train(motion_sets, tiny_tokenizer_config, home, "../x"), "--name", "use letters")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "x", "--resume"), "nothing to resume")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("model:\n  width: wide\n")
    assert_clean_failure(train(motion_sets, bad_config, home, "x"), "bad.yaml", "width: expected int, got 'wide'")
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(b"not hdf5")
    assert_clean_failure(myo("tokenizer", "train", "--data", str(damaged), "--name", "x", env=home), "damaged.h5")
    assert not (tmp_path / "home" / "tokenizer" / "x").exists()
    assert_clean_failure(myo("tokenizer", "eval", "ghost", "--data", str(motion_sets["test"]), env=home), "no checkpoint")

    assert train(motion_sets, tiny_tokenizer_config, home, "ok", "--max-steps", "1").returncode == 0
    slow = tmp_path / "slow.h5"
    clip = read_dataset(motion_sets["test"]).sequences[0]
    write_dataset(slow, [Sequence("a", np.repeat(clip.motion, 2, axis=0), ["a person moves"])], fps=40.0)
    assert_clean_failure(myo("tokenizer", "eval", "ok", "--data", str(slow), env=home), "40 fps", "--fps 20")


def test_training_on_from_a_finished_version_makes_a_new_version(motion_sets, tiny_tokenizer_config, home):
    assert train(motion_sets, tiny_tokenizer_config, home, "grow", "--max-steps", "2", "--keep-state").returncode == 0
    first = weights(home, "grow")
    wrong_data = myo("tokenizer", "train", "--data", str(motion_sets["val"]), "--config", str(tiny_tokenizer_config),
                     "--name", "grow", "--resume", "--max-steps", "4", env=home)  # fmt: skip
    assert_clean_failure(wrong_data, "other datasets")
    more = train(motion_sets, tiny_tokenizer_config, home, "grow", "--max-steps", "4", "--resume")
    assert more.returncode == 0, more.stderr
    assert_same_weights(first, weights(home, "grow", 1))  # the published version is untouched
    assert myo("ckpt", "verify", "tokenizer/grow@1", env=home).returncode == 0
    second = manifest(home, "grow", 2)
    assert second["parents"][0]["name"] == "tokenizer/grow@1" and second["training"]["steps_done"] == 4


def test_runs_on_one_machine_take_a_free_port_so_two_can_run_at_once():
    from myocli.train.launch import LaunchOptions, launch_command

    def port(**options):
        command = launch_command(LaunchOptions(gpus=2, **options), ["tokenizer", "train"])
        return command[command.index("--main_process_port") + 1] if "--main_process_port" in command else None

    assert port() == "0"  # the launcher picks a free one, not the shared default 29500
    assert port(main_process_port=29512) == "29512"
    assert port(num_machines=2, main_process_ip="10.0.0.1") is None  # several machines agree on the launcher's default


def _interrupt_after_step(command: list[str], env: dict, step: int) -> tuple[int, str]:
    """Start a training, send SIGTERM once it logs `step`, return (exit code, rest of stderr)."""
    import os

    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=os.environ | env)
    for line in process.stderr:
        if f"step {step}/" in line:
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stderr.read()
    return process.wait(timeout=180), rest


def test_sigterm_under_gpus_2_saves_and_resumes_to_the_same_weights(motion_sets, tiny_tokenizer_config, home):
    common = ["--data", str(motion_sets["train"]), "--config", str(tiny_tokenizer_config), "--gpus", "2", "--max-steps", "80"]
    assert myo("tokenizer", "train", *common, "--name", "calm2", env=home).returncode == 0
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", *common, "--name", "stormy2"]
    code, stderr = _interrupt_after_step(command, home, 3)
    assert code == 128 + signal.SIGTERM, stderr
    assert stderr.count("Error: interrupted by SIGTERM") == 1  # rank 0 speaks for both
    resumed = myo("tokenizer", "train", *common, "--name", "stormy2", "--resume", env=home)
    assert resumed.returncode == 0, resumed.stderr
    assert_resume_matches(weights(home, "calm2"), weights(home, "stormy2"))


def test_help_lists_the_groups_and_every_command_has_an_example():
    top = myo("--help")
    assert "tokenizer" in top.stdout and "ckpt" in top.stdout
    for group, commands in (("tokenizer", ("train", "eval", "encode")), ("ckpt", ("list", "show", "verify"))):
        listing = myo(group, "--help").stdout
        for command in commands:
            assert command in listing
            assert "Example: myo" in myo(group, command, "--help").stdout, (group, command)

"""`myo tokenizer train|eval|encode` and `myo ckpt` as a user runs them, on real clips with a tiny model."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import assert_clean_failure, assert_resume_matches, myo
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


@pytest.mark.slow  # two training processes through accelerate: the longest tests
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


def test_sigterm_saves_state_and_resume_matches_an_uninterrupted_run(motion_sets, tiny_tokenizer_config, home, tmp_path):
    """SIGTERM while training: exit code 143, the state of the step reached is saved (the run is listed
    as training), and --resume ends with the weights of an uninterrupted run of the same length."""
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(motion_sets["train"]),
               "--config", str(tiny_tokenizer_config), "--name", "stormy", *UNREACHABLE]  # fmt: skip
    version = tmp_path / "home" / "tokenizer" / "stormy" / "v1"
    code, stderr = _signal_once_training(command, home, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, stderr
    step = _interrupted_at(stderr, "SIGTERM")
    assert json.loads((version / "training_state" / "progress.json").read_text()) == {"step": step}  # saved on the signal
    rows = json.loads(myo("ckpt", "list", "--json", env=home).stdout)
    assert {"name": "tokenizer/stormy", "version": 1, "status": "training"}.items() <= next(r for r in rows if r["name"] == "tokenizer/stormy").items()
    # Train on a few steps past the interruption; an uninterrupted run of that length must end with the same weights.
    steps = str(step + 10)
    resumed = train(motion_sets, tiny_tokenizer_config, home, "stormy", "--max-steps", steps, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert train(motion_sets, tiny_tokenizer_config, home, "calm", "--max-steps", steps).returncode == 0
    assert_resume_matches(weights(home, "calm"), weights(home, "stormy"))
    assert manifest(home, "stormy")["training"]["steps_done"] == step + 10


def test_ctrl_c_saves_state_and_exits_130_with_one_line(motion_sets, tiny_tokenizer_config, home, tmp_path):
    """Ctrl-C in a terminal (SIGINT to the foreground process group) while training: the state of the
    step in progress is saved, one `Error:` line says how to resume, no traceback, exit code 130."""
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(motion_sets["train"]),
               "--config", str(tiny_tokenizer_config), "--name", "ctrlc", *UNREACHABLE]  # fmt: skip
    version = tmp_path / "home" / "tokenizer" / "ctrlc" / "v1"
    code, stderr = _signal_once_training(command, home, signal.SIGINT)
    assert code == 130, stderr
    step = _interrupted_at(stderr, "SIGINT")
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert json.loads((version / "training_state" / "progress.json").read_text()) == {"step": step}
    assert {"model.safetensors", "optimizer.bin"} <= {p.name for p in (version / "training_state").iterdir()}
    assert not (version / "manifest.json").exists()  # interrupted, not published


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


# A run that cannot finish before the test signals it (so the signal never comes after the end), saves
# its state only when signalled (so the state the test finds is the one saved on the signal), and
# stops by itself after 10 minutes should the test die before signalling it.
UNREACHABLE = ["--max-steps", "1000000", "--save-every", "1000000", "--max-minutes", "10"]


def _signal_once_training(command: list[str], env: dict, number: int, wait_s: float = 300) -> tuple[int, str]:
    """Start a training in a process group of its own and, once it has logged step 2 (so it is inside
    the training loop, its signal handler installed), send it signal `number`: SIGINT to the whole
    group, as a terminal does on Ctrl-C, SIGTERM to the `myo` process, as `kill PID` does.
    Returns (exit code, all of stderr). Every wait is bounded: the test fails, showing stderr, rather
    than hang."""
    import os
    import threading
    import time

    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=os.environ | env, start_new_session=True)
    lines: list[str] = []

    def drain():  # read stderr all along, so a full pipe never blocks the training
        for line in process.stderr:
            lines.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + wait_s
    while not any(": step 2/1000000 loss" in line for line in lines):
        if process.poll() is not None or time.monotonic() > deadline:
            process.send_signal(signal.SIGTERM)  # passed on to the workers of a launched run
            process.wait(timeout=120)
            reader.join(timeout=10)
            pytest.fail(f"training never reached step 2 (exit code {process.returncode}):\n{''.join(lines)}")
        time.sleep(0.05)
    if number == signal.SIGINT:
        os.killpg(process.pid, number)
    else:
        process.send_signal(number)
    try:
        code = process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"still running {wait_s:.0f} s after the signal:\n{''.join(lines)}")
    reader.join(timeout=60)  # workers of a launched run may write after the launcher exits
    return code, "".join(lines)


def _interrupted_at(stderr: str, name: str) -> int:
    """The step of the `interrupted by SIG... at step K/N` line, which must also say how to go on."""
    found = re.search(rf"Error: interrupted by {name} at step (\d+)/1000000; .*--resume", stderr)
    assert found, stderr
    return int(found.group(1))


@pytest.mark.slow  # two training processes through accelerate: the longest tests
def test_sigterm_under_gpus_2_saves_and_resumes_to_the_same_weights(motion_sets, tiny_tokenizer_config, home, tmp_path):
    """SIGTERM to `myo ... --gpus 2` reaches both workers through the launcher; they stop at the same
    step, save one state, rank 0 alone reports it; resumed, the run ends as an uninterrupted one.

    The signal goes out once step 2 is logged, to a run that cannot finish first. An
    earlier version signalled a run of 80 steps after the log line of step 3: the other 77 steps take
    about 1.5 s, and when the signal needed longer to pass through the test's reader, `myo` and the
    launcher (on a loaded machine) the run had finished and no `interrupted` line came."""
    common = ["--data", str(motion_sets["train"]), "--config", str(tiny_tokenizer_config), "--gpus", "2"]
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", *common, "--name", "stormy2", *UNREACHABLE]
    version = tmp_path / "home" / "tokenizer" / "stormy2" / "v1"
    code, stderr = _signal_once_training(command, home, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, stderr
    assert stderr.count("Error: interrupted by SIGTERM") == 1  # rank 0 speaks for both
    step = _interrupted_at(stderr, "SIGTERM")
    assert json.loads((version / "training_state" / "progress.json").read_text()) == {"step": step}  # saved on the signal
    steps = str(step + 10)
    resumed = myo("tokenizer", "train", *common, "--name", "stormy2", "--max-steps", steps, "--resume", env=home)
    assert resumed.returncode == 0, resumed.stderr
    assert myo("tokenizer", "train", *common, "--name", "calm2", "--max-steps", steps, env=home).returncode == 0
    assert_resume_matches(weights(home, "calm2"), weights(home, "stormy2"))
    training = manifest(home, "stormy2")["training"]
    assert training["num_processes"] == 2 and training["steps_done"] == step + 10
    assert len(set(training["rank_weights_sha256"])) == 1


def _myo_with_a_bug(raised: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """`myo ARGS` through the real entry point (myocli.cli.main), with registry.list_all replaced by a
    function that raises `raised`: how a bug, or a Ctrl-C outside training, reaches the user."""
    import os

    program = (
        "import sys\nfrom myocli import registry\n"
        f"def broken(*args, **kwargs):\n    raise {raised}\n"
        "registry.list_all = broken\nfrom myocli.cli import main\n"
        f"sys.argv = ['myo', *{list(args)!r}]\nmain()\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | env
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=environment, timeout=120)


def test_an_unexpected_exception_is_one_line_with_exit_1_and_a_traceback_only_with_myo_debug(home):
    """A bug (any exception but MyoError) is reported as `Error: unexpected TYPE: message` with a hint,
    exit code 1 and no traceback; MYO_DEBUG=1 shows the traceback instead, of a MyoError too."""
    bug = _myo_with_a_bug("RuntimeError('the registry fell over')", "ckpt", "list", env=home)
    assert bug.returncode == 1 and bug.stdout == ""
    assert bug.stderr == "Error: unexpected RuntimeError: the registry fell over (rerun with MYO_DEBUG=1 for the traceback)\n"
    debug = _myo_with_a_bug("RuntimeError('the registry fell over')", "ckpt", "list", env=home | {"MYO_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "in broken" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == "RuntimeError: the registry fell over"
    assert_clean_failure(myo("ckpt", "show", "tokenizer/ghost", env=home), "no checkpoint tokenizer/ghost")
    shown = myo("ckpt", "show", "tokenizer/ghost", env=home | {"MYO_DEBUG": "1"})
    assert shown.returncode == 1 and "Traceback" in shown.stderr
    assert "MyoError: no checkpoint tokenizer/ghost" in shown.stderr.strip().splitlines()[-1]


def test_ctrl_c_outside_training_exits_130_without_a_traceback(home):
    """A KeyboardInterrupt anywhere but in the training loop (which saves first) ends the command with
    exit code 130, no traceback and nothing on stdout."""
    interrupted = _myo_with_a_bug("KeyboardInterrupt", "ckpt", "list", env=home)
    assert interrupted.returncode == 130 and interrupted.stdout == ""
    assert "Traceback" not in interrupted.stderr and "KeyboardInterrupt" not in interrupted.stderr


def test_ctrl_c_outside_training_says_interrupted(home):
    """cli.main promises one `Error: interrupted` line for a Ctrl-C outside training."""
    assert _myo_with_a_bug("KeyboardInterrupt", "ckpt", "list", env=home).stderr == "Error: interrupted\n"


def test_help_lists_the_groups_and_every_command_has_an_example():
    top = myo("--help")
    assert "tokenizer" in top.stdout and "ckpt" in top.stdout
    for group, commands in (("tokenizer", ("train", "eval", "encode")), ("ckpt", ("list", "show", "verify"))):
        listing = myo(group, "--help").stdout
        for command in commands:
            assert command in listing
            assert "Example: myo" in myo(group, command, "--help").stdout, (group, command)

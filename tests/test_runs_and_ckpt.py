"""The edges of training runs and the registry: every `--resume` refusal comes before any worker starts;
`myo ckpt list` tells a run in progress from an interrupted, failed or vanished one, and a tampered
checkpoint from a complete one; a new run of a name with an unfinished run says so; `myo ckpt remove`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import add_tiny_tokenizer, assert_clean_failure, myo, ok

from myocli import registry
from myocli.errors import MyoError
from myocli.train import runs


@pytest.fixture()
def home(tmp_path):
    return {"MYO_HOME": str(tmp_path / "home")}


def train(motion_sets, config, home, name, *extra, data="train"):
    return myo("tokenizer", "train", "--data", str(motion_sets[data]), "--config", str(config), "--name", name, *extra, env=home)


def rows(home) -> dict[str, dict]:
    """`myo ckpt list --json` of the user's registry, by KIND/NAME@VERSION."""
    listed = json.loads(ok(myo("ckpt", "list", "--json", env=home)).stdout)
    return {f"{r['name']}@{r['version']}": r for r in listed}


# A run that cannot end before the test acts on it, saves its state at every step (so there is one to resume
# whenever it is stopped), and ends by itself after 10 minutes should the test die first.
ENDLESS = ["--max-steps", "1000000", "--save-every", "1", "--max-minutes", "10"]


class Running:
    """`myo tokenizer train ... ENDLESS` in the background, its stderr read all along."""

    def __init__(self, motion_sets, config, home, name: str):
        command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(config),
                   "--name", name, *ENDLESS]  # fmt: skip
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=os.environ | home)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for_step(self, step: int, wait_s: float = 300) -> None:
        """Until the run has logged `step` (so it is in the loop and has saved a state), or fail showing its stderr."""
        deadline = time.monotonic() + wait_s
        while not any(f": step {step}/1000000 loss" in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                pytest.fail(f"training never reached step {step}:\n{''.join(self.lines)}")
            time.sleep(0.05)

    def stop(self, number: int) -> int:
        self.process.send_signal(number)
        code = self.process.wait(timeout=300)
        self.reader.join(timeout=60)
        return code


# --- 1. --resume is refused before any worker starts -------------------------------------------------------


def test_resume_refusals_under_gpus_2_come_before_any_worker_starts(motion_sets, tiny_tokenizer_config, home):
    """A run trained by one process, resumed with --gpus 2: another process count, other data or --debug is
    one `Error:` line and exit 1 from the command itself, not a traceback of the launched workers; so are
    the refusals preflight made already (changed settings, nothing to resume)."""
    ok(train(motion_sets, tiny_tokenizer_config, home, "one", "--max-steps", "2", "--keep-state"))
    gpus2 = ["--resume", "--gpus", "2", "--max-steps", "4"]
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "one", *gpus2), "tokenizer/one@1", "number of processes (--gpus)")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "one", *gpus2, data="val"), "other datasets")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "one", *gpus2, "--debug"), "other --debug")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "one", *gpus2, "--lr", "0.5"), "--resume continues a run with its own settings")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "none", *gpus2), "nothing to resume")
    assert not (Path(home["MYO_HOME"]) / "tokenizer" / "one" / "v2").exists()


def test_resuming_an_lm_run_with_the_other_stage_is_refused_before_anything_is_read(home, tmp_path, monkeypatch):
    """`myo lm instruct --resume` of a run `myo lm pretrain` started is refused naming that command, before
    the token file is read (here it is not one; the registry holds what a pretraining run leaves)."""
    monkeypatch.setenv("MYO_HOME", home["MYO_HOME"])
    ref = registry.new_version("lm", "words")
    (ref.path / runs.RUN_FILE).write_text(json.dumps({"stage": "pretrain", "train": {}, "data": {}, "debug": False, "num_processes": 1}))
    (ref.path / registry.STATE).mkdir()
    (ref.path / registry.STATE / "progress.json").write_text('{"step": 1}\n')
    tokens = tmp_path / "tokens.h5"
    tokens.write_bytes(b"not a token file")
    result = myo("lm", "instruct", "lm/base", "--tokens", str(tokens), "--name", "words", "--resume", env=home)
    assert_clean_failure(result, "lm/words@1", "myo lm pretrain")


# --- 2. unfinished runs: listed for what they are, refused as a new run's name, removable ----------------


def test_a_killed_run_is_listed_stale_refuses_a_new_run_of_its_name_and_resumes(motion_sets, tiny_tokenizer_config, home):
    """SIGKILL (or the out-of-memory killer) leaves no word: the version is listed `stale`, saying its
    process is gone and --resume can go on; a new run of the name is refused saying so (before any worker
    starts, with --gpus 2 too); --resume finishes it."""
    run = Running(motion_sets, tiny_tokenizer_config, home, "crash")
    run.wait_for_step(3)
    assert run.stop(signal.SIGKILL) == -signal.SIGKILL
    row = rows(home)["tokenizer/crash@1"]
    assert (row["status"], row.get("resumable"), row.get("running")) == ("stale", True, False), row
    assert f"pid {run.process.pid}" in row["reason"] and "gone" in row["reason"]
    assert "tokenizer/crash@1 (stale): " in myo("ckpt", "list", env=home).stdout  # the table's note
    for extra in ([], ["--gpus", "2"]):
        assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "crash", "--max-steps", "3", *extra),
                             "tokenizer/crash@1 is an unfinished run (stale", "--resume", "myo ckpt remove tokenizer/crash@1")  # fmt: skip
    assert not (Path(home["MYO_HOME"]) / "tokenizer" / "crash" / "v2").exists()
    resumed = train(motion_sets, tiny_tokenizer_config, home, "crash", "--resume", "--max-steps", "5", "--save-every", "1", "--max-minutes", "10")
    assert resumed.returncode == 0, resumed.stderr
    assert rows(home)["tokenizer/crash@1"]["status"] == "complete"
    assert not (Path(home["MYO_HOME"]) / "tokenizer" / "crash" / "v1" / registry.RUN_STATUS).exists()


def test_a_failed_run_is_listed_with_its_error_and_removed_with_ckpt_remove(motion_sets, tiny_tokenizer_config, home, tmp_path):
    """A run that diverges after saving a state is `failed` with the error; a new run of its name is refused
    until `myo ckpt remove` (which wants --yes when nobody is asked) deletes it; the name starts over at v1."""
    diverged = train(motion_sets, tiny_tokenizer_config, home, "wild", "--lr", "1e30", "--save-every", "1", "--max-steps", "20")
    assert diverged.returncode == 1 and "the loss became" in diverged.stderr, diverged.stderr
    row = rows(home)["tokenizer/wild@1"]
    assert (row["status"], row.get("resumable"), row.get("running")) == ("failed", True, False), row
    assert row["reason"].startswith("the loss became")
    assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "wild", "--max-steps", "2"),
                         "tokenizer/wild@1 is an unfinished run (failed: the loss became", "myo ckpt remove tokenizer/wild@1")  # fmt: skip
    folder = tmp_path / "home" / "tokenizer" / "wild"
    assert_clean_failure(myo("ckpt", "remove", "tokenizer/wild@1", env=home), "cannot be undone", "--yes")
    assert (folder / "v1").is_dir()
    removed = ok(myo("ckpt", "remove", "tokenizer/wild@1", "--yes", env=home))
    assert "Removed the unfinished run (failed) tokenizer/wild@1" in removed.stdout
    assert not folder.exists()  # the name's last version: the name goes too
    again = ok(train(motion_sets, tiny_tokenizer_config, home, "wild", "--max-steps", "2"))
    assert "Saved tokenizer/wild@1" in again.stdout


def test_a_run_in_progress_is_never_removed_and_an_interrupted_one_is(motion_sets, tiny_tokenizer_config, home):
    """While a run trains, `ckpt list` says so with its pid, and removing it, a new run of its name and
    --resume are all refused; stopped by SIGTERM it is listed as interrupted with its state (still
    `training`: paused, --resume goes on) and can then be removed. Built-in models are never removed."""
    assert_clean_failure(myo("ckpt", "remove", "tokenizer/myo-base@1", "--yes", env=home), "built-in")
    assert_clean_failure(myo("ckpt", "remove", "tokenizer/myo-base", "--yes", env=home), "KIND/NAME@N")
    run = Running(motion_sets, tiny_tokenizer_config, home, "live")
    try:
        run.wait_for_step(2)
        row = rows(home)["tokenizer/live@1"]
        assert (row["status"], row.get("running"), row.get("process", {}).get("pid")) == ("training", True, run.process.pid), row
        busy = f"tokenizer/live@1 is being trained right now, running as pid {run.process.pid}"
        assert_clean_failure(myo("ckpt", "remove", "tokenizer/live@1", "--yes", env=home), busy)
        assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "live", "--max-steps", "2"), busy)
        assert_clean_failure(train(motion_sets, tiny_tokenizer_config, home, "live", *ENDLESS, "--resume"), busy)
    finally:
        code = run.stop(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, "".join(run.lines)
    row = rows(home)["tokenizer/live@1"]
    assert (row["status"], row.get("resumable"), row.get("running")) == ("training", True, False), row
    assert row["reason"].startswith("interrupted by SIGTERM at step ")
    ok(myo("ckpt", "remove", "tokenizer/live@1", "--yes", env=home))
    assert "tokenizer/live@1" not in rows(home)


def test_run_status_tells_a_live_process_from_a_gone_or_reused_one(tmp_path, monkeypatch):
    """The record of a run names its process by pid, host and start time: this process is running; a pid
    that has exited, or one reused by another process, is stale; another machine's cannot be told (and is
    not removed); a version from an older myo, without a record, is read as before and not removed."""
    monkeypatch.setenv("MYO_HOME", str(tmp_path / "home"))
    ref = registry.new_version("tokenizer", "demo")
    (ref.path / registry.STATE).mkdir()
    assert (registry.run_status(ref.path)["status"], registry.run_status(ref.path)["running"]) == ("training", None)
    assert "older myo" in registry.removal_problem(ref)
    registry.write_run_status(ref.path, "running")
    assert registry.run_status(ref.path) | {"reason": ""} == {
        "status": "training", "resumable": True, "running": True, "reason": "",
        "process": {"pid": os.getpid(), "host": registry.this_process()["host"]},
    }  # fmt: skip
    assert "being trained right now" in registry.removal_problem(ref)

    def edit(**changes):
        record = json.loads((ref.path / registry.RUN_STATUS).read_text()) | changes
        (ref.path / registry.RUN_STATUS).write_text(json.dumps(record))
        return registry.run_status(ref.path)

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    assert edit(pid=int(gone))["status"] == "stale"
    assert edit(pid=os.getpid(), pid_started="1")["status"] == "stale"  # the pid of a process that started at another time
    elsewhere = edit(host="another-machine")
    assert (elsewhere["status"], elsewhere["running"]) == ("training", None)
    assert "another-machine" in registry.removal_problem(ref)


def test_a_new_run_notes_an_earlier_run_that_saved_nothing(tmp_path, monkeypatch):
    """An unfinished version with nothing to resume does not stop a new run of its name: it gets a note
    (and stays listed until removed); one holding a state does stop it."""
    monkeypatch.setenv("MYO_HOME", str(tmp_path / "home"))
    ref = registry.new_version("tokenizer", "demo")
    registry.write_run_status(ref.path, "failed", "the data could not be read")
    (note,) = runs.check_new_run("tokenizer", "demo")
    assert "tokenizer/demo@1" in note and "the data could not be read" in note and "myo ckpt remove tokenizer/demo@1" in note
    (ref.path / registry.STATE).mkdir()
    with pytest.raises(MyoError, match=r"tokenizer/demo@1 is an unfinished run \(failed: the data could not be read\); add --resume"):
        runs.check_new_run("tokenizer", "demo")


# --- 3. a tampered checkpoint is not listed as complete ---------------------------------------------------


def test_ckpt_list_tells_a_tampered_checkpoint_from_a_complete_one(trained_tiny_tokenizer, tmp_path, home):
    """One bit flipped in the weights: `ckpt list --verify` lists the checkpoint damaged, naming the file and
    the sha256, and the intact copy complete; without --verify the list only looks at sizes, which is
    enough for a file cut short or missing."""
    add_tiny_tokenizer(trained_tiny_tokenizer, tmp_path / "home")
    shutil.copytree(tmp_path / "home" / "tokenizer" / "tok", tmp_path / "home" / "tokenizer" / "intact")
    shutil.copytree(tmp_path / "home" / "tokenizer" / "tok", tmp_path / "home" / "tokenizer" / "short")
    weights = tmp_path / "home" / "tokenizer" / "tok" / "v1" / registry.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10
    weights.write_bytes(bytes(data))
    short = tmp_path / "home" / "tokenizer" / "short" / "v1" / registry.WEIGHTS
    short.write_bytes(short.read_bytes()[:-100])

    listed = {r["name"]: r for r in json.loads(ok(myo("ckpt", "list", "--verify", "--json", env=home)).stdout)}
    assert listed["tokenizer/tok"]["status"] == "damaged"
    assert "model.safetensors: sha256 differs" in listed["tokenizer/tok"]["problem"]
    assert listed["tokenizer/intact"]["status"] == "complete" and "problem" not in listed["tokenizer/intact"]
    assert listed["tokenizer/short"]["status"] == "damaged"
    assert listed["tokenizer/myo-base"]["status"] == "built-in"
    assert "tokenizer/tok@1 (damaged): " in ok(myo("ckpt", "list", "--verify", env=home)).stdout

    quick = {r["name"]: r for r in json.loads(ok(myo("ckpt", "list", "--json", env=home)).stdout)}
    assert quick["tokenizer/short"]["status"] == "damaged" and "bytes" in quick["tokenizer/short"]["problem"]
    assert quick["tokenizer/intact"]["status"] == "complete"


def test_a_folder_given_for_a_data_file_says_to_give_the_converted_file(tmp_path):
    """What a new user passes first is the folder of clips: the answer says what to give instead."""
    from myocli.errors import MyoError
    from myocli.train import runs

    with pytest.raises(MyoError, match=re.escape(f"--data {tmp_path}: a folder, not a file; give the file `myo data convert` writes")):
        runs.require_file("--data", tmp_path)
    with pytest.raises(MyoError, match=re.escape(f"--tokens {tmp_path / 'no.h5'}: no such file; make one with `myo tokenizer encode`")):
        runs.require_file("--tokens", tmp_path / "no.h5", "myo tokenizer encode")
    (tmp_path / "set.h5").write_bytes(b"")
    runs.require_file("--data", tmp_path / "set.h5")  # there and a file: the reader checks the rest

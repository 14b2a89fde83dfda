"""The edges of writing: a disk that refuses, a folder that cannot take a file, a video encoder
that fails, and SIGINT/SIGTERM at the moment a file is being written. Each ends with one `Error:`
line that names the real output path (never the hidden temporary file) and the cause, exit code 1
(130 or 143 for a signal), and nothing left behind: neither the output nor a temporary file.

Ways to make a write fail without root tricks (the tests may run as root, whom chmod does not stop):
RLIMIT_FSIZE set in the child makes writes past a size fail with EFBIG, as a full disk fails them
with ENOSPC; a folder under a file cannot exist (ENOTDIR); /sys refuses new files even to root
(EACCES), and a folder with mode 0o555 refuses them to anyone else; a fake ffmpeg stands in for an
encoder that fails.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_failure, ok

# Small enough that every output below outgrows it, large enough for everything else myo writes.
FILE_SIZE_LIMIT = 4096
# The built-in generator, named so that `myo generate` prints no note about which model it took.
BUILTIN = ("--model", "ssm/myo-base")


def myo_limited(*args: str, cwd: Path, file_size: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`myo ARGS` whose writes past `file_size` bytes fail with EFBIG, as on a full disk.

    SIGXFSZ is ignored in the child, so a write over the limit fails instead of killing it (Python
    ignores it too; the encoder it starts gets the default back and is killed by it)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {"OMP_NUM_THREADS": "1"} | (env or {})
    return subprocess.run([sys.executable, "-m", "myocli", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, preexec_fn=limit, timeout=600)  # fmt: skip


def assert_nothing_left(folder: Path, before: set[str]) -> None:
    """The folder holds what it held before: no output, no (hidden) temporary file."""
    assert set(os.listdir(folder)) == before, sorted(set(os.listdir(folder)) - before)


def assert_refused(result: subprocess.CompletedProcess, output: Path, *causes: str) -> None:
    """One clean `Error:` line naming `output` and one of `causes` (any case), and no temporary name."""
    assert_clean_failure(result, str(output))
    line = result.stderr.strip()
    assert any(cause.lower() in line.lower() for cause in causes), line
    assert ".tmp" not in line, line
    assert "Wrote" not in result.stdout and "Converted" not in result.stdout, result.stdout


@pytest.fixture()
def work(tmp_path, cmu_walk) -> Path:
    """A folder holding a real walk as walk.npy (2.9 s at 20 fps)."""
    np.save(tmp_path / "walk.npy", cmu_walk.motion)
    return tmp_path


@pytest.fixture()
def walk_bvh(shared_data) -> Path:
    return shared_data / "cmu" / "bvh" / "02_01.bvh"


def fake_ffmpeg(folder: Path, script: str) -> dict:
    """The environment that makes myo use a fake ffmpeg running `script` (sh; its last argument is the output)."""
    program = folder / "fake-ffmpeg"
    program.write_text("#!/bin/sh\nfor last; do :; done\n" + script)
    program.chmod(0o755)
    return {"IMAGEIO_FFMPEG_EXE": str(program)}


# --- A disk that refuses (EFBIG under RLIMIT_FSIZE, as ENOSPC on a full disk) ----------------------


def test_export_to_a_full_disk_names_the_bvh_and_the_cause(work):
    before = set(os.listdir(work))
    result = myo_limited("export", "walk.npy", "--bvh", "walk.bvh", cwd=work, file_size=FILE_SIZE_LIMIT)
    assert_refused(result, Path("walk.bvh"), os.strerror(27))  # File too large
    assert_nothing_left(work, before)


def test_tokenizer_encode_to_a_full_disk_names_the_token_file_and_the_cause(work, cmu_walk_h5):
    before = set(os.listdir(work))
    output = work / "tokens.h5"
    result = myo_limited("tokenizer", "encode", "myo-base", "--data", str(cmu_walk_h5), "-o", str(output), cwd=work, file_size=FILE_SIZE_LIMIT)
    assert_refused(result, output, "file too large", "no space")
    assert_nothing_left(work, before)


@pytest.mark.parametrize("steps", ["6", "1"], ids=["training-state", "final-weights"])
def test_training_on_a_full_disk_names_what_it_could_not_save(work, motion_sets, tiny_tokenizer_config, steps):
    """A training state (saved every 2 steps) or the checkpoint's weights (after 1 step, the only save)
    that do not fit give one Error line naming them, not a serializer's error."""
    result = myo_limited("tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(tiny_tokenizer_config),
                         "--name", "t", "--max-steps", steps, cwd=work, file_size=FILE_SIZE_LIMIT, env={"MYO_HOME": str(work / "home")})  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]  # after the run's progress lines
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert last.startswith("Error: cannot write") and str(work / "home" / "tokenizer" / "t" / "v1") in last and "File too large" in last, last
    assert "unexpected" not in result.stderr


def test_data_convert_to_a_full_disk_names_the_dataset_and_the_cause(work, walk_bvh):
    """Before: HDF5 failed deep in its driver; exit 1 with the temporary file's name, then a crash at exit."""
    before = set(os.listdir(work))
    result = myo_limited("data", "convert", str(walk_bvh), "-o", "walk.h5", cwd=work, file_size=FILE_SIZE_LIMIT)
    assert_refused(result, Path("walk.h5"), os.strerror(27))
    assert_nothing_left(work, before)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_render_to_a_full_disk_fails_instead_of_writing_a_cut_off_video(work, suffix):
    """Before: ffmpeg could not finish the .mp4, myo never looked, said "Wrote" and exited 0."""
    before = set(os.listdir(work))
    output = Path(f"walk{suffix}")
    result = myo_limited("render", "walk.npy", "-o", str(output), "--size", "64x48", "--renderer", "pybullet", cwd=work,
                         file_size=FILE_SIZE_LIMIT)  # fmt: skip
    assert_refused(result, output, os.strerror(27))
    assert_nothing_left(work, before)


def test_generate_to_a_full_disk_leaves_no_sample(work, tmp_path):
    before = set(os.listdir(work))
    result = myo_limited("generate", "a person walks forward", *BUILTIN, "--seconds", "2", "-o", "walk_gen", cwd=work,
                         file_size=FILE_SIZE_LIMIT, env={"MYO_HOME": str(tmp_path / "home")})  # fmt: skip
    assert_refused(result, Path("walk_gen_0.npy"), os.strerror(27))
    assert_nothing_left(work, before)


# --- A folder that cannot take a file ------------------------------------------------------------


def test_an_output_under_a_file_fails_before_any_work(work, walk_bvh):
    """`-o walk.npy/x.h5`: walk.npy is a file, so the folder can never be made. Before: the clips were
    converted first, then `unexpected FileExistsError`."""
    before = set(os.listdir(work))
    for args, output in (
        (("data", "convert", str(walk_bvh), "-o", "walk.npy/walk.h5"), "walk.npy/walk.h5"),
        (("export", "walk.npy", "--bvh", "walk.npy/sub/walk.bvh"), "walk.npy/sub/walk.bvh"),
    ):
        result = myo_limited(*args, cwd=work)
        assert_refused(result, Path(output), "walk.npy is not a folder")
    assert_nothing_left(work, before)


def refusing_folder(tmp_path: Path) -> Path:
    """A folder where no file can be made: /sys for root (whom permissions do not stop), else one with mode 0o555."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("command", ["convert", "export", "render"])
def test_a_folder_that_refuses_files_names_the_output_and_the_cause(work, walk_bvh, tmp_path, command):
    """Before: `Error: unexpected OSError ... '.walk.h5.00uralzo.tmp.h5'`, after all the work."""
    folder = refusing_folder(tmp_path)
    before, here = set(os.listdir(folder)), set(os.listdir(work))
    output = folder / {"convert": "walk.h5", "export": "walk.bvh", "render": "walk.mp4"}[command]
    args = {
        "convert": ("data", "convert", str(walk_bvh), "-o", str(output)),
        "export": ("export", "walk.npy", "--bvh", str(output)),
        "render": ("render", "walk.npy", "-o", str(output), "--size", "64x48", "--renderer", "pybullet"),
    }[command]
    try:
        result = myo_limited(*args, cwd=work)
        assert_refused(result, output, "permission denied", "read-only")
        assert_nothing_left(folder, before)
        assert_nothing_left(work, here)
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o755)


# --- A video encoder that fails ------------------------------------------------------------------

ENCODERS = {
    # stops at once, as when it cannot open its output
    "exits": 'echo "Could not open $last: unsupported" >&2\nexit 1\n',
    # takes every frame, then fails at the end, as on a full disk (its messages name the file it was given)
    "fails-at-the-end": 'cat >/dev/null\necho "[out#0/mp4 @ 0x5a] Error writing trailer of $last: No space left on device" >&2\nexit 1\n',
    # says it succeeded but wrote garbage
    "writes-garbage": 'cat >/dev/null\necho garbage > "$last"\nexit 0\n',
}
ENCODER_CAUSES = {
    "exits": ("exit status 1", "unsupported"),
    "fails-at-the-end": ("exit status 1", "No space left on device"),
    "writes-garbage": ("wrote no MP4 video",),
}


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_render_checks_the_video_encoder_before_saying_wrote(work, encoder):
    """Before: `Error: unexpected OSError: [Errno 32] Broken pipe` with ffmpeg's command line, or
    (an encoder that failed at the end) exit 0 and "Wrote"."""
    env = fake_ffmpeg(work, ENCODERS[encoder])
    before = set(os.listdir(work))
    result = myo_limited("render", "walk.npy", "-o", "walk.mp4", "--size", "64x48", "--renderer", "pybullet", cwd=work, env=env)
    assert_refused(result, Path("walk.mp4"), "video encoder")
    for cause in ENCODER_CAUSES[encoder]:
        assert cause in result.stderr, result.stderr
    assert "FFMPEG COMMAND" not in result.stderr
    assert_nothing_left(work, before)


def test_generate_mp4_with_a_failing_encoder_leaves_no_sample(work, tmp_path):
    """Before: `unexpected OSError` and ffmpeg's command line. Now: one line naming STEM_0.mp4, and
    neither the video nor the .npy and .json written with it."""
    env = fake_ffmpeg(work, ENCODERS["fails-at-the-end"]) | {"MYO_HOME": str(tmp_path / "home")}
    before = set(os.listdir(work))
    result = myo_limited("generate", "a person walks forward", *BUILTIN, "--seconds", "1", "-o", "walk_gen", "--mp4", cwd=work, env=env)
    assert_refused(result, Path("walk_gen_0.mp4"), "No space left on device")
    assert_nothing_left(work, before)


# --- SIGINT and SIGTERM while writing --------------------------------------------------------------


def signal_when(args: list[str], cwd: Path, ready, number: int, wait_s: float = 300) -> subprocess.CompletedProcess:
    """Start `myo ARGS`, and once `ready()` holds (polled; every wait bounded), send it signal `number`."""
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "myocli", *args], cwd=cwd, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + wait_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate(timeout=60)
            pytest.fail(f"never got ready (exit code {process.returncode}):\n{out}\n{err}")
        time.sleep(0.002)
    process.send_signal(number)
    try:
        out, err = process.communicate(timeout=wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("still running long after the signal")
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def assert_interrupted(result: subprocess.CompletedProcess, number: int) -> None:
    name = signal.Signals(number).name
    assert result.returncode == 128 + number, result.stderr
    assert result.stderr.strip().splitlines() == [f"Error: interrupted by {name}"], result.stderr
    assert result.stdout == ""


def temporary(folder: Path, output: str):
    """A condition: the hidden temporary file of `output` exists (the write has begun)."""
    return lambda: any(name.startswith(f".{output}.") for name in os.listdir(folder))


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_dataset_is_written_stops_the_command(tmp_path, shared_data, number):
    """All of HDM05 (233 clips), signalled once the dataset's temporary file exists. Before: the
    signal was swallowed now and then ("Exception ignored ... KeyboardInterrupt") and the command
    went on to exit 0; when it was not, it exited with no word said."""
    result = signal_when(["data", "convert", str(shared_data / "hdm05"), "-o", "hdm05.h5"], tmp_path,
                         temporary(tmp_path, "hdm05.h5"), number)  # fmt: skip
    assert_interrupted(result, number)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_video_is_encoded_stops_the_command(work, number):
    before = set(os.listdir(work))
    result = signal_when(["render", "walk.npy", "-o", "walk.mp4", "--size", "64x48", "--renderer", "pybullet"], work,
                         temporary(work, "walk.mp4"), number)  # fmt: skip
    assert_interrupted(result, number)
    assert_nothing_left(work, before)


def test_a_keyboard_interrupt_python_swallows_still_stops_the_write(work, walk_bvh):
    """A signal whose KeyboardInterrupt is raised where Python cannot pass it on (here a destructor,
    as h5py's are) is only printed as "Exception ignored": the command must still stop, write
    nothing and say so. Before: it printed that, wrote the file and exited 0."""
    program = (
        "import signal, sys\n"
        "class Swallowed:\n    def __del__(self):\n        signal.raise_signal(signal.SIGINT)\n        sum(range(1000))\n"
        "import h5py\nfile = h5py.File\n"
        "def file_then_signal(*args, **kwargs):\n    Swallowed()\n    return file(*args, **kwargs)\n"
        "h5py.File = file_then_signal\nfrom myocli.cli import main\n"
        f"sys.argv = ['myo', 'data', 'convert', {str(walk_bvh)!r}, '-o', 'walk.h5']\nmain()\n"
    )
    before = set(os.listdir(work))
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=work, env=environment, timeout=300)
    assert_interrupted(result, signal.SIGINT)
    assert_nothing_left(work, before)


def test_outputs_still_written_when_nothing_goes_wrong(work, walk_bvh):
    """The same commands, unhindered, write what they say (the checks above refuse only real failures)."""
    ok(myo_limited("data", "convert", str(walk_bvh), "-o", "walk.h5", cwd=work))
    ok(myo_limited("export", "walk.npy", "--bvh", "walk.bvh", cwd=work))
    ok(myo_limited("render", "walk.npy", "-o", "walk.mp4", "--size", "64x48", "--renderer", "pybullet", cwd=work))
    assert (work / "walk.mp4").read_bytes()[4:8] == b"ftyp"
    assert sorted(name for name in os.listdir(work) if name.startswith(".")) == []


def test_a_split_that_fails_half_way_leaves_none_of_its_files(tmp_path, shared_data):
    """--split writes OUT_train.h5, then OUT_val.h5: when the disk fills up (ENOSPC) on the second,
    the first is removed too, and the line names the file that failed. Before: `unexpected OSError`,
    and OUT_train.h5 stayed, half a dataset."""
    program = (
        "import errno, os, sys\nfrom myocli.atomic import atomic_path\nimport myocli.data.convert as convert\n"
        "written = []\nwrite = convert.write_dataset\n"
        "def full_on_the_second(path, *args, **kwargs):\n    written.append(path)\n    if len(written) < 2:\n"
        "        return write(path, *args, **kwargs)\n    with atomic_path(path):\n"
        "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "convert.write_dataset = full_on_the_second\nfrom myocli.cli import main\n"
        f"sys.argv = ['myo', 'data', 'convert', {str(shared_data / 'deepmimic')!r}, '-o', 'dm.h5', '--split', '0.5,0.5']\nmain()\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert_refused(result, Path("dm_val.h5"), "No space left on device")
    assert os.listdir(tmp_path) == []

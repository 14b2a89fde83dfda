"""The edges of every command that writes: an output is never one of its inputs (however spelled,
--overwrite or not), its extension says what it holds, and default names differ for different inputs
and prompts (myocli/cli/outputs.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_failure, myo

from myocli.errors import MyoError


@pytest.fixture
def home(tmp_path) -> dict:
    """An empty registry: `myo` then uses the built-in models (tokenizer/myo-base, ssm/myo-base)."""
    return {"MYO_HOME": str(tmp_path / "registry")}


@pytest.fixture
def walk_files(tmp_path, shared_data, cmu_walk_h5, cmu_walk) -> dict[str, Path]:
    """A user's files: a real BVH, the same walk as a myo28 .h5 and as a .npy."""
    files = {"bvh": tmp_path / "walk.bvh", "h5": tmp_path / "walk.h5", "npy": tmp_path / "walk.npy"}
    shutil.copy(shared_data / "cmu" / "bvh" / "02_01.bvh", files["bvh"])
    shutil.copy(cmu_walk_h5, files["h5"])
    np.save(files["npy"], cmu_walk.motion[:10].astype(np.float32))
    return files


def _assert_kept(path: Path, before: bytes) -> None:
    """The user's input is still there, byte for byte."""
    assert path.read_bytes() == before


# --- an output is never one of the command's inputs -------------------------------------------


def test_convert_refuses_to_replace_its_source_even_with_overwrite(walk_files):
    bvh = walk_files["bvh"]
    before = bvh.read_bytes()
    result = myo("data", "convert", str(bvh), "-o", str(bvh), "--text", "a person walks", "--overwrite")
    assert_clean_failure(result, f"{bvh} is the input {bvh}", "--overwrite", "choose another -o")
    _assert_kept(bvh, before)


@pytest.mark.parametrize("spelling", ["dotdot", "symlink", "hardlink", "relative"])
def test_convert_sees_the_same_file_under_another_name(walk_files, spelling):
    h5 = walk_files["h5"]
    before = h5.read_bytes()
    folder = h5.parent
    if spelling == "dotdot":
        (folder / "sub").mkdir()
        output = f"{folder}/sub/../{h5.name}"
    elif spelling == "symlink":
        (folder / "link.h5").symlink_to(h5)
        output = str(folder / "link.h5")
    elif spelling == "hardlink":
        os.link(h5, folder / "hard.h5")
        output = str(folder / "hard.h5")
    else:
        output = f"./{h5.name}"
    result = myo("data", "convert", str(h5), "-o", output, "--overwrite", cwd=folder)
    assert_clean_failure(result, f"{Path(output)} is the input {h5}")
    _assert_kept(h5, before)
    if spelling == "symlink":
        assert (folder / "link.h5").is_symlink()


def test_convert_refuses_an_output_inside_a_source_folder(walk_files, tmp_path):
    """Converting a folder again with --overwrite would read the last output as a clip and replace it."""
    out = tmp_path / "all.h5"
    shutil.copy(walk_files["h5"], out)
    before = out.read_bytes()
    result = myo("data", "convert", str(tmp_path), "-o", str(out), "--text", "a person walks", "--overwrite")
    assert_clean_failure(result, f"{out} is the input {out}")
    _assert_kept(out, before)


def test_convert_checks_every_split_file(walk_files, tmp_path):
    source = tmp_path / "walk_val.h5"
    walk_files["h5"].rename(source)
    before = source.read_bytes()
    result = myo("data", "convert", str(source), "-o", str(tmp_path / "walk.h5"), "--split", "0.8,0.1,0.1", "--overwrite")
    assert_clean_failure(result, f"{source} is the input {source}")
    _assert_kept(source, before)


def test_tokenizer_encode_refuses_to_replace_its_dataset(walk_files, home):
    h5 = walk_files["h5"]
    before = h5.read_bytes()
    for output in (str(h5), f"{h5.parent}/sub/../{h5.name}"):
        result = myo("tokenizer", "encode", "myo-base", "--data", str(h5), "-o", output, "--overwrite", env=home)
        assert_clean_failure(result, f"{output} is the input {h5}")
        _assert_kept(h5, before)


@pytest.mark.parametrize(("motion_name", "extra"), [("walk_0.npy", []), ("walk_1.npy", ["-n", "2"]), ("walk_0_physics.npy", ["--physics", "rl/none"])])
def test_generate_refuses_to_replace_its_input_motion(walk_files, tmp_path, home, motion_name, extra):
    """Every file the samples would get (STEM_I.npy, STEM_I_physics.npy) is checked, before any model loads."""
    motion = tmp_path / motion_name
    walk_files["npy"].rename(motion)
    before = motion.read_bytes()
    spelled = f"{tmp_path}/sub/../{motion_name}"
    result = myo("generate", "--task", "predict", "--motion", spelled, "-o", str(tmp_path / "walk"), "--model", "lm/none", "--overwrite", *extra, env=home)
    assert_clean_failure(result, f"{motion} is the input {spelled}")
    _assert_kept(motion, before)


@pytest.mark.parametrize(("command", "option", "suffix"), [("render", "-o", ".png"), ("export", "--bvh", ".bvh")])
def test_an_output_that_links_to_the_input_is_refused(walk_files, tmp_path, command, option, suffix):
    """`render`/`export` to a link pointing at the input would replace the user's link: refused, both kept."""
    npy = walk_files["npy"]
    before = npy.read_bytes()
    link = tmp_path / f"link{suffix}"
    link.symlink_to(npy)
    result = myo(command, str(npy), option, str(link), "--overwrite")
    assert_clean_failure(result, f"{link} is the input {npy}")
    assert link.is_symlink()
    _assert_kept(npy, before)


def test_a_hard_link_or_other_spelling_is_the_same_file(tmp_path):
    from myocli.cli.outputs import check_not_inputs

    original = tmp_path / "a.npy"
    original.write_bytes(b"x")
    os.link(original, tmp_path / "b.npy")
    for output in (tmp_path / "b.npy", tmp_path / "." / "a.npy", Path(os.path.relpath(original))):
        with pytest.raises(MyoError, match="is the input"):
            check_not_inputs([output], [original])
    check_not_inputs([tmp_path / "new.npy", tmp_path / "c.npy"], [original])  # different files pass


# --- the extension says what the file holds ------------------------------------------------


@pytest.mark.parametrize("name", ["new.bvh", "new.npy", "new"])
def test_convert_refuses_an_output_that_is_not_h5(walk_files, tmp_path, name):
    out = tmp_path / name
    result = myo("data", "convert", str(walk_files["bvh"]), "-o", str(out), "--text", "a person walks")
    assert_clean_failure(result, str(out), "must end in .h5 or .hdf5")
    assert not out.exists()


def test_tokenizer_encode_refuses_an_output_that_is_not_h5(walk_files, tmp_path, home):
    out = tmp_path / "tokens.npy"
    result = myo("tokenizer", "encode", "myo-base", "--data", str(walk_files["h5"]), "-o", str(out), env=home)
    assert_clean_failure(result, str(out), "must end in .h5 or .hdf5")
    assert not out.exists()


def test_generate_refuses_a_stem_with_the_extension_it_adds(tmp_path, home):
    """-o walk.npy would write walk.npy_0.npy: the user meant the stem walk."""
    result = myo("generate", "a person walks forward", "--seconds", "1", "-o", str(tmp_path / "walk.npy"), env=home)
    assert_clean_failure(result, f"{tmp_path / 'walk.npy'}", "without .npy")
    assert not list(tmp_path.glob("walk*"))


# --- default names differ for different inputs and prompts ------------------------------------


def test_default_names_keep_the_sequence_and_a_safe_name():
    from myocli.cli.generate import Task, _stem
    from myocli.cli.outputs import input_stem

    assert input_stem("walks.h5:3") != input_stem("walks.h5:4")
    assert input_stem("a/take.v2.h5:3") == "take.v2_3" and input_stem("walks.h5", 2) == "walks_2"
    assert input_stem("walks.h5:02_01") == "walks_02_01" and input_stem("walk.npy") == "walk"
    unsafe = input_stem("walks.h5:cmu/02_01")  # a sequence name is file contents, not a safe file name
    assert "/" not in unsafe and unsafe.startswith("walks_cmu_02_01_") and unsafe != input_stem("walks.h5:cmu_02_01")
    assert _stem(None, None, Task.predict, "walks.h5:3") != _stem(None, None, Task.predict, "walks.h5:4")
    assert _stem(None, None, Task.inbetween, "data/walks.h5:3") == Path("walks_3_inbetween")


def test_prompt_names_are_distinct_safe_and_stable():
    from myocli.cli.outputs import prompt_stem

    prompts = ["走る", "歩く", "🙂", "🕺", "a person walks forward", "A person walks forward", "a person walks forward.",
               "a/b", "a b", "x" * 60, "x" * 61]  # fmt: skip
    stems = [prompt_stem(p) for p in prompts]
    assert len(set(stems)) == len(prompts) and len({s.lower() for s in stems}) == len(prompts)
    assert all(s and "/" not in s and not s.startswith(".") for s in stems)
    assert stems == [prompt_stem(p) for p in prompts]
    assert prompt_stem("a person walks forward") == "a_person_walks_forward"  # the README's names stay
    assert prompt_stem("走る") == "走る"  # letters of any script stay readable


def test_two_emoji_prompts_do_not_share_a_default_name(tmp_path, home):
    for prompt in ("🙂", "🕺"):
        result = myo("generate", prompt, "--seconds", "1", cwd=tmp_path, env=home)
        assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*_0.npy"))) == 2


def test_rl_eval_refuses_to_replace_its_input_motion(walk_files, home):
    """`myo rl eval --motion X -o X` is refused before any policy loads, and X is kept."""
    motion = walk_files["npy"]
    before = motion.read_bytes()
    result = myo("rl", "eval", "rl/none", "--motion", str(motion), "-o", str(motion), "--overwrite", env=home)
    assert_clean_failure(result, f"{motion} is the input {motion}")
    _assert_kept(motion, before)
    wrong = myo("rl", "eval", "rl/none", "--motion", str(motion), "--mp4", str(motion.with_suffix(".avi")), env=home)
    assert_clean_failure(wrong, "--mp4", "must end in .mp4")

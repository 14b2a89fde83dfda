"""Edges of the command line: numbers checked before anything loads, a clean stderr when a language
model generates, flags without a `<bool>` in their help, and clips without a caption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import add_tiny_tokenizer, assert_clean_failure, myo, ok


def _commands():
    """(words after `myo`, click command) of every command and group, the root included."""
    import typer.main

    from myocli.cli import app

    def walk(command, words):
        yield words, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*words, name])

    return list(walk(typer.main.get_command(app), []))


def _usage_error(result, option: str) -> None:
    """Exit 2, naming the option, and no sign of a crash."""
    assert result.returncode == 2, result.stderr
    assert option in result.stderr and "unexpected" not in result.stderr and "Traceback" not in result.stderr, result.stderr


# 1. Numbers


@pytest.mark.parametrize("args, option", [
    (["--seconds", "nan"], "--seconds"), (["--seconds", "inf"], "--seconds"), (["--guidance", "inf"], "--guidance"),
    (["--temperature", "inf"], "--temperature"), (["--seed", "-1"], "--seed"),
])  # fmt: skip
def test_generate_refuses_bad_numbers_before_any_model_loads(tmp_path, args, option):
    # The model does not exist: a check that came after loading it would fail on that instead.
    result = myo("generate", "a person walks", "--model", "ssm/absent", *args, "-o", str(tmp_path / "x"), env={"MYO_HOME": str(tmp_path)})
    _usage_error(result, option)
    assert not list(tmp_path.glob("x*"))


@pytest.mark.parametrize("args, option", [
    (["tokenizer", "train", "--name", "t", "--lr", "inf"], "--lr"),
    (["tokenizer", "train", "--name", "t", "--max-minutes", "inf"], "--max-minutes"),
    (["ssm", "train", "--name", "t", "--seed", "-1"], "--seed"),
    (["retrieval", "train", "--name", "t", "--main-process-port", "0"], "--main-process-port"),
    (["data", "convert", "@pybullet", "-o", "out.h5", "--scale", "0"], "--scale"),
    (["data", "convert", "@pybullet", "-o", "out.h5", "--fps", "1e9"], "--fps"),
    (["render", "missing.npy", "--fps", "inf"], "--fps"),
    (["export", "missing.h5", "--bvh", "x.bvh", "--index", "-1"], "--index"),
])  # fmt: skip
def test_trainers_and_tools_refuse_bad_numbers_as_usage_errors(tmp_path, args, option):
    if args[1] == "train":
        args = [*args, "--data", str(tmp_path / "missing.h5")]  # a check after reading the data would fail on that
    _usage_error(myo(*args, cwd=tmp_path, env={"MYO_HOME": str(tmp_path / "home")}), option)
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "home").exists()


def test_every_numeric_option_goes_through_the_shared_check():
    """No int or float option of any command escapes cli/numbers.py, and none takes NaN or infinity."""
    import typer

    checked = 0
    for words, command in _commands():
        ctx = typer.Context(command)
        for param in command.params:
            kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if kind not in (int, float) or getattr(param, "is_flag", False):
                continue
            where = f"myo {' '.join(words)} {param.opts[0]}"
            assert getattr(param.callback, "described", None) is not None, f"{where} is not declared with cli.numbers.number"
            for value in ("nan", "inf", "-inf") if kind is float else ():
                with pytest.raises(typer.BadParameter, match="finite"):
                    param.process_value(ctx, value)
            checked += 1
    assert checked >= 40  # generate alone has 10


def test_a_length_the_model_cannot_make_is_refused_or_rounded_aloud(tmp_path):
    """The built-in SSM makes lengths in 0.2 s steps: below one step is refused with the shortest
    named; a length between two steps is rounded, and stderr says to what."""
    env = {"MYO_HOME": str(tmp_path / "home")}
    short = myo("generate", "a person walks", "--seconds", "0.05", "-o", str(tmp_path / "short"), env=env)
    _usage_error(short, "--seconds")
    assert "0.2 s" in short.stderr and not list(tmp_path.glob("short*"))
    rounded = ok(myo("generate", "a person walks", "--seconds", "0.3", "-o", str(tmp_path / "r"), "--json", env=env))
    assert "--seconds 0.3 rounded to 0.4 s" in rounded.stderr
    assert json.loads(rounded.stdout)["samples"][0]["frames"] == 8 == len(np.load(tmp_path / "r_0.npy"))
    exact = ok(myo("generate", "a person walks", "--seconds", "0.4", "-o", str(tmp_path / "e"), env=env))
    assert "rounded" not in exact.stderr


# 2. A clean stderr from the language model


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, trained_tiny_tokenizer, tiny_lm_tokens):
    """A registry with the tiny tokenizer and lm/pre (2 steps of pretraining on pybullet's clips)."""
    root = tmp_path_factory.mktemp("edges_lm")
    env = {"MYO_HOME": str(root / "home")}
    add_tiny_tokenizer(trained_tiny_tokenizer, root / "home")
    ok(myo("lm", "pretrain", "--tokens", str(tiny_lm_tokens["train"]), "--config", str(tiny_lm_tokens["config"]), "--max-steps", "2",
           "--name", "pre", env=env))  # fmt: skip
    return {"root": root, "env": env, "tokens": tiny_lm_tokens}


def test_decoding_hands_the_model_a_cache_object_from_the_first_step():
    """transformers' current cache API: one Cache for the whole answer, given from the first call.
    (Letting the model make its own cache printed a deprecation warning with transformers 4.4x.)"""
    from transformers.cache_utils import Cache

    from myocli.lm import model as lm
    from myocli.lm import prompts
    from myocli.lm.decoding import MotionRule, decode

    config = lm.LMConfig(t5={"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 1, "num_decoder_layers": 1}, codebook_size=32)
    text_tokenizer = lm.byte_tokenizer()
    torch.manual_seed(0)
    model, vocab = lm.new_model(config, text_tokenizer)
    caches = []
    model.register_forward_pre_hook(lambda _m, _args, kwargs: caches.append(kwargs.get("past_key_values")), with_kwargs=True)
    ids = prompts.Prompter(text_tokenizer, vocab).t2m(prompts.instructions()["t2m"][0], "a person walks", None)
    answer = decode(model.eval(), ids, MotionRule(vocab, 4, 4), 0.0)
    assert len(caches) == len(answer) == 7
    assert all(isinstance(cache, Cache) for cache in caches) and len({id(cache) for cache in caches}) == 1


def test_generating_with_a_language_model_prints_only_myos_lines(tiny_lm, tmp_path):
    result = ok(myo("generate", "a person walks", "--seconds", "1", "-o", str(tmp_path / "walk"), env=tiny_lm["env"]))
    lines = result.stderr.splitlines()
    assert lines == ["Using lm/pre@1 (the newest language model, instruction-tuned first; choose with --model)"], result.stderr


# 3. Help


def test_no_help_shows_a_type_on_a_flag():
    from typer.testing import CliRunner

    from myocli.cli import app

    runner = CliRunner()
    for words, _command in _commands():
        result = runner.invoke(app, [*words, "--help"], prog_name="myo")
        assert result.exit_code == 0, (words, result.output)
        assert "<bool>" not in result.output, f"myo {' '.join(words)} --help:\n{result.output}"
        assert "--help" in result.output


# 4. Clips without a caption


def test_an_exported_bvh_converts_back_without_a_caption(cmu_walk_h5, tmp_path):
    """A user exports a BVH and brings it back: it has no caption, and converts with a warning naming it."""
    folder = tmp_path / "back"
    folder.mkdir()
    ok(myo("export", f"{cmu_walk_h5}:0", "--bvh", str(folder / "my_walk.bvh")))
    result = ok(myo("data", "convert", str(folder / "my_walk.bvh"), "-o", str(tmp_path / "back.h5"), "--mirror", "--json"))
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert "'my_walk'" in warning and "'my_walk_mirror'" in warning and "labels.csv" in warning
    assert json.loads(result.stdout)["uncaptioned"] == ["my_walk", "my_walk_mirror"]
    from myocli.data.h5 import read_dataset

    dataset = read_dataset(tmp_path / "back.h5")
    assert [s.captions for s in dataset.sequences] == [[""], [""]]
    ok(myo("data", "inspect", str(tmp_path / "back.h5")))
    # Converting the file again keeps it uncaptioned, and says so again; --text captions it.
    again = ok(myo("data", "convert", str(tmp_path / "back.h5"), "-o", str(tmp_path / "again.h5")))
    assert "Warning: 2 sequence(s) have no caption" in again.stderr
    captioned = ok(myo("data", "convert", str(folder / "my_walk.bvh"), "-o", str(tmp_path / "c.h5"), "--text", "a person walks"))
    assert "Warning" not in captioned.stderr
    assert read_dataset(tmp_path / "c.h5")[0].captions == ["a person walks"]


@pytest.fixture()
def mostly_uncaptioned(cmu_walk, tmp_path) -> Path:
    """Seven uncaptioned copies of a real walk and one captioned."""
    from myocli.data.h5 import Sequence, write_dataset

    sequences = [Sequence(f"bare{i}", cmu_walk.motion, [""]) for i in range(7)] + [Sequence("walk", cmu_walk.motion, ["a person walks"])]
    write_dataset(tmp_path / "mixed.h5", sequences, 20.0)
    return tmp_path / "mixed.h5"


@pytest.mark.parametrize("kind", ["ssm", "retrieval"])
def test_trainers_that_learn_from_captions_refuse_uncaptioned_clips_by_name(mostly_uncaptioned, tmp_path, kind):
    home = tmp_path / "home"
    result = myo(kind, "train", "--data", str(mostly_uncaptioned), "--name", "bare", env={"MYO_HOME": str(home)})
    assert_clean_failure(result, "mixed.h5", "7 of 8 sequences have no caption", "'bare0', 'bare1', 'bare2', 'bare3', 'bare4', ...",
                         "labels.csv", "--text")  # fmt: skip
    assert "'walk'" not in result.stderr and not (home / kind / "bare").exists()


def test_the_tokenizer_trains_on_uncaptioned_clips_but_token_files_refuse_them(mostly_uncaptioned, tiny_tokenizer_config, trained_tiny_tokenizer, tmp_path):
    env = {"MYO_HOME": str(tmp_path / "home")}
    ok(myo("tokenizer", "train", "--data", str(mostly_uncaptioned), "--config", str(tiny_tokenizer_config), "--name", "bare",
           "--max-steps", "2", env=env))  # fmt: skip
    add_tiny_tokenizer(trained_tiny_tokenizer, tmp_path / "home")
    encode = myo("tokenizer", "encode", "tok", "--data", str(mostly_uncaptioned), "-o", str(tmp_path / "tokens.h5"), env=env)
    assert_clean_failure(encode, "7 of 8 sequences have no caption", "language-model training")
    assert not (tmp_path / "tokens.h5").exists()


def test_language_model_training_refuses_an_uncaptioned_token_file(tiny_lm, tmp_path):
    from myocli.data.tokens import read_tokens, write_tokens

    tokens = read_tokens(tiny_lm["tokens"]["train"])
    tokens.captions[2] = [""]
    write_tokens(tmp_path / "blank.h5", tokens)
    result = myo("lm", "pretrain", "--tokens", str(tmp_path / "blank.h5"), "--config", str(tiny_lm["tokens"]["config"]), "--name", "blank",
                 env=tiny_lm["env"])  # fmt: skip
    assert_clean_failure(result, "--tokens", "blank.h5", f"1 of {len(tokens.names)} sequences have no caption ({tokens.names[2]!r})")
    assert not (Path(tiny_lm["env"]["MYO_HOME"]) / "lm" / "blank").exists()

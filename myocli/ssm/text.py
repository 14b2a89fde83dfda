"""Captions -> the text condition of the SSM generator.

By default the generator trains its own small byte-level encoder (`models/ssm.ByteTextEncoder`),
which needs nothing downloaded. `--text-encoder PATH_OR_HUB_ID` instead takes a pretrained
transformers model (a BERT, a T5/Flan-T5, a sentence encoder...): it stays frozen, its
last hidden states are mean-pooled over the caption's tokens, and only a projection is
trained. Because it is frozen, each caption's embedding is computed once. Its files are
copied into the checkpoint (`text_encoder/`), so generating never needs the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from myocli.errors import MyoError

FOLDER = "text_encoder"  # inside an SSM checkpoint


@dataclass
class PretrainedText:
    tokenizer: object
    model: object  # the whole pretrained model, in eval mode, no gradients
    source: str

    @property
    def encoder(self):
        """The part that reads text: the encoder of an encoder-decoder (T5), else the model itself."""
        return self.model.get_encoder() if getattr(self.model.config, "is_encoder_decoder", False) else self.model

    @property
    def width(self) -> int:
        config = self.model.config
        return int(getattr(config, "hidden_size", None) or config.d_model)

    def embed(self, captions: list[str], batch_size: int = 64):
        """Mean-pooled last hidden states: (len(captions), width) float32 tensor."""
        import torch

        rows = []
        with torch.no_grad():
            for start in range(0, len(captions), batch_size):
                tokens = self.tokenizer(captions[start : start + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt")
                hidden = self.encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
                weights = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                rows.append(((hidden * weights).sum(1) / weights.sum(1).clamp(min=1)).float())
        return torch.cat(rows) if rows else torch.zeros(0, self.width)

    def save(self, folder: Path) -> list[Path]:
        """Write the encoder and its tokenizer into `folder`; returns the files written."""
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        return sorted(p for p in folder.rglob("*") if p.is_file())


def load_pretrained(source: str) -> PretrainedText:
    """A local folder (save_pretrained) or a hub id (when the hub is reachable); the encoder half of an encoder-decoder."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise MyoError(f"--text-encoder {source}: cannot load a transformers model and tokenizer from it ({str(exc).splitlines()[0]}); "
                       "give a folder written by save_pretrained, or a hub id while online") from exc  # fmt: skip
    model.eval().requires_grad_(False)
    return PretrainedText(tokenizer, model, source)

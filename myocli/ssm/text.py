"""Captions -> the text condition of the SSM generator and the retrieval evaluator.

By default each trains its own small byte-level encoder (`ssm/model.ByteTextEncoder`),
which needs nothing downloaded. `--text-encoder PATH_OR_HUB_ID` instead takes a frozen
pretrained encoder, and only a projection of its caption vector is trained:
- a static table folder (`myocli/text/static.py`; the built-in models use MiniLM distilled
  into one): microseconds per caption, no transformers at run time;
- a transformers model (a BERT, a T5/Flan-T5, a sentence encoder...): its last hidden
  states mean-pooled over the caption's tokens.
Because it is frozen, each caption's embedding is computed once. Its files are copied into
the checkpoint (`text_encoder/`), so generating never needs the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from myocli.errors import MyoError

FOLDER = "text_encoder"  # inside a checkpoint
MOST_KNOWN = 5000  # training captions a generator records for the far-prompt warning (text/known.py)


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


def load_pretrained(source: str):
    """A static table folder, a transformers folder (save_pretrained) or a hub id (when the hub is reachable;
    the encoder half of an encoder-decoder): an object with `width`, `embed(captions)` and `save(folder)`."""
    from myocli.text import static

    if static.is_static(Path(source)):
        return static.StaticText.load(Path(source))
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise MyoError(f"--text-encoder {source}: cannot load a transformers model and tokenizer from it ({str(exc).splitlines()[0]}); "
                       "give a folder written by save_pretrained, or a hub id while online") from exc  # fmt: skip
    model.eval().requires_grad_(False)
    return PretrainedText(tokenizer, model, source)


def attach(config, source: str | None):
    """Load the frozen encoder a run was given (--text-encoder) and point a model config at it
    (`text_encoder`, `text_encoder_dim`); None without one."""
    if not source:
        return None
    pretrained = load_pretrained(source)
    config.text_encoder, config.text_encoder_dim = FOLDER, pretrained.width
    return pretrained


def save_into(pretrained, ref) -> list[str]:
    """Copy the encoder into a checkpoint being saved; its files, relative to it, for the manifest."""
    if pretrained is None:
        return []
    return [str(p.relative_to(ref.path)) for p in pretrained.save(ref.path / FOLDER)]


def load_inside(ref, config):
    """The frozen encoder a checkpoint carries (config.text_encoder), or None for a byte-level model."""
    return load_pretrained(str(ref.path / config.text_encoder)) if config.text_encoder else None


def text_input(config, pretrained, captions: list[str]):
    """What a model's text side reads for captions: `config.max_text_bytes` byte ids, or the frozen encoder's vectors."""
    from myocli.ssm.model import byte_ids

    return pretrained.embed(captions) if pretrained is not None else byte_ids(captions, config.max_text_bytes)


def text_inputs(config, pretrained):
    """text_input as a function for training batches, with each caption's vector computed once."""
    if pretrained is None:
        return lambda captions: text_input(config, None, captions)
    cache: dict[str, object] = {}

    def embed(captions):
        import torch

        missing = sorted({c for c in captions if c and c not in cache})
        if missing:
            cache.update(zip(missing, pretrained.embed(missing), strict=True))
        # An empty caption is the unconditional sample: its row is replaced by the null condition.
        return torch.stack([cache[c] if c else torch.zeros(pretrained.width) for c in captions])

    return embed

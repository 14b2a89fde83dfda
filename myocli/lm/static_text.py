"""The language model reading its text through the static text encoder (`myo lm pretrain --text-encoder`).

The static encoder (myocli/text/static.py) is a word-piece tokenizer and a frozen table of
128-d rows distilled from a sentence encoder, in which synonyms sit close together. With it:

- the LM's text tokenizer is the encoder's own (its vocabulary), plus an end-of-sequence token
  (the table's vocabulary has none) and, as always, the motion tokens (lm/model.py);
- the T5's input embeddings (shared by its encoder and decoder) are `StaticTextEmbedding`: a
  word piece's vector is its frozen table row mapped into d_model by a learned linear
  projection; only the tokens the table does not describe (padding, unknown, end of sequence,
  motion tokens and markers) have learned rows of their own.

Because the text rows stay frozen and one projection serves them all, a word the training
captions never used lands where the table puts it: next to its synonyms. A learned row per
word would leave such a word where initialisation put it.

The output layer is not tied to these embeddings: it has weights of its own (as T5 v1.1 and
Flan-T5 have), so motion-to-text can still write any text token. Tied, its text rows would be
the frozen table seen through the projection, i.e. of rank 128 at most, and the decoder could
hardly tell a word from its near-synonyms ("walks" from "walking") when writing.

The table itself is not in model.safetensors: it is the encoder's, copied into the
checkpoint's `text_encoder/` folder (myocli/ssm/text.py) and read from there on loading.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from myocli.errors import MyoError

EOS = "</s>"
PAD_NAMES = ("[PAD]", "<pad>")  # what word-piece and SentencePiece vocabularies call padding


def _static(encoder):
    from myocli.text.static import StaticText

    if not isinstance(encoder, StaticText):
        raise MyoError("the language model reads text through a static text encoder only (a folder with encoder.json, "
                       "tokenizer.json and embeddings.safetensors, e.g. python -m myocli.text.minilm)")  # fmt: skip
    return encoder


def text_tokenizer(encoder):
    """The encoder's word-piece tokenizer as a transformers tokenizer, with `</s>` added (motion tokens not yet)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    encoder = _static(encoder)
    # A copy: the motion tokens added to it later must not end up in the encoder's own tokenizer.json.
    copy = Tokenizer.from_str(encoder.tokenizer.to_str())
    pad = next((name for name in PAD_NAMES if copy.token_to_id(name) is not None), PAD_NAMES[0])
    return PreTrainedTokenizerFast(tokenizer_object=copy, pad_token=pad, unk_token=copy.model.unk_token, eos_token=EOS)


class StaticTextEmbedding(nn.Module):
    """Token ids -> (..., d_model): frozen table row @ learned projection for word pieces, a learned row otherwise."""

    def __init__(self, table: np.ndarray, own_rows: list[int], vocab_size: int, d_model: int):
        super().__init__()
        table = torch.as_tensor(np.asarray(table, dtype=np.float32))
        # A buffer, not a parameter: frozen, and not saved in model.safetensors (it is in text_encoder/).
        self.register_buffer("table", table, persistent=False)
        self.projection = nn.Linear(table.shape[1], d_model, bias=False)
        self.own = nn.Embedding(len(own_rows), d_model)
        # slot[id]: the token's learned row, or -1 for a word piece read from the table.
        slot = torch.full((vocab_size,), -1, dtype=torch.long)
        slot[torch.as_tensor(own_rows, dtype=torch.long)] = torch.arange(len(own_rows))
        self.register_buffer("slot", slot, persistent=False)
        # T5 starts its embeddings at unit variance per dimension; scaled so the projected rows
        # do too (the table's rows are about 5 long, not 1), and the learned rows like T5's.
        with torch.no_grad():
            words = table[slot[: len(table)] < 0]
            self.projection.weight.normal_(0.0, float(words.pow(2).sum(1).mean().rsqrt()))
            self.own.weight.normal_(0.0, 1.0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        slot = self.slot[ids]
        words = self.projection(self.table[ids.clamp(max=len(self.table) - 1)])
        own = self.own(slot.clamp(min=0))
        return torch.where((slot >= 0).unsqueeze(-1), own, words)


def read_text_through(model, encoder) -> None:
    """Give a T5 `StaticTextEmbedding` as the input embeddings of its encoder and decoder (in place).

    Its output layer must already have weights of its own (lm/model.py builds it untied)."""
    encoder = _static(encoder)
    words = len(encoder.table)
    vocab_size = model.config.vocab_size
    if vocab_size < words:
        raise MyoError(f"the model's vocabulary ({vocab_size}) is smaller than its text encoder's ({words}): not the encoder it was trained with")
    # Special tokens of the encoder's vocabulary (padding, unknown) have no meaningful row in the
    # table (model2vec leaves them near zero); they and everything after the table learn their own.
    special = sorted(i for i, token in encoder.tokenizer.get_added_tokens_decoder().items() if token.special and i < words)
    d_model = model.config.d_model
    model.set_input_embeddings(StaticTextEmbedding(encoder.table, special + list(range(words, vocab_size)), vocab_size, d_model))
    # Untied, transformers starts T5's output layer at std 1, giving logits of std sqrt(d_model) (a first
    # loss near 30, not ln(vocab)); d_model^-0.5 starts it like the tied model, whose outputs are rescaled so.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, d_model**-0.5)

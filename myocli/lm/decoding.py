"""Constrained decoding for the motion language model: one answer, token by token, with a KV cache.

Our own loop rather than `generate()`, so the constraint is applied before temperature,
top-k and top-p (a motion answer can then never hold text, and sampling can never be left
with nothing to draw), and so each sample owns its random generator (`--seed S` gives the
same sample 0 whatever `--num-samples` is).

A motion answer is `<motion_start>`, between `min_codes` and `max_codes` motion codes,
`<motion_end>`, `</s>`. A text answer is anything but motion tokens, up to `max_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from myocli.lm.model import MotionVocab


@dataclass
class MotionRule:
    vocab: MotionVocab
    min_codes: int = 1
    max_codes: int = 100

    def __post_init__(self):
        v = self.vocab
        self._only = {token: _allow(v.size, [token]) for token in (v.start, v.end, v.eos)}
        self._codes = _allow(v.size, range(v.offset, v.offset + v.codebook_size))
        self._codes_or_end = _allow(v.size, [*range(v.offset, v.offset + v.codebook_size), v.end])

    @property
    def max_tokens(self) -> int:
        return self.max_codes + 3

    def mask(self, written: list[int]) -> torch.Tensor:
        if not written:
            return self._only[self.vocab.start]
        if written[-1] == self.vocab.end:
            return self._only[self.vocab.eos]
        codes = len(written) - 1
        if codes >= self.max_codes:
            return self._only[self.vocab.end]
        return self._codes if codes < self.min_codes else self._codes_or_end


@dataclass
class TextRule:
    vocab: MotionVocab
    max_tokens: int = 160

    def __post_init__(self):
        banned = [*self.vocab.motion_related(), self.vocab.pad]
        self._text = torch.zeros(self.vocab.size)
        self._text[banned] = -torch.inf
        self._first = self._text.clone()
        self._first[self.vocab.eos] = -torch.inf  # an empty answer says nothing
        self._eos = _allow(self.vocab.size, [self.vocab.eos])

    def mask(self, written: list[int]) -> torch.Tensor:
        if not written:
            return self._first
        return self._eos if len(written) >= self.max_tokens - 1 else self._text


def _allow(size: int, tokens) -> torch.Tensor:
    mask = torch.full((size,), -torch.inf)
    mask[list(tokens)] = 0.0
    return mask


def pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None) -> int:
    """Greedy when temperature is 0; else sample from the top-k / nucleus of the tempered distribution."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if top_k > 0 and top_k < logits.numel():
        threshold = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, -torch.inf)
    if top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        probabilities = torch.softmax(ordered, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = torch.cumsum(probabilities, dim=-1) - probabilities >= top_p
        logits = logits.scatter(0, order, ordered.masked_fill(drop, -torch.inf))
    probabilities = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=generator))


def new_cache():
    """An empty KV cache for an encoder-decoder (T5): decoder self-attention and cross-attention.

    Handed to the model from the first step on, as transformers' Cache API asks: when a T5 made the
    cache itself, transformers 4.4x returned it as legacy tuples and warned on every call that those
    are deprecated (every `myo generate` with a language model printed it)."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(), DynamicCache())


@torch.no_grad()
def decode(
    model,
    input_ids: list[int],
    rule,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[int]:
    """The answer's token ids (up to and including </s>) under `rule`."""
    device = model.device
    encoder_outputs = model.get_encoder()(input_ids=torch.tensor([input_ids], device=device))
    written: list[int] = []
    next_input = model.config.decoder_start_token_id
    cache = new_cache()
    eos = rule.vocab.eos
    for _ in range(rule.max_tokens):
        # The decoder sees one new token a step; the cache holds the keys and values of the answer so far
        # (and, filled at the first step, those of the prompt for cross-attention), and grows in place.
        out = model(
            encoder_outputs=encoder_outputs,
            decoder_input_ids=torch.tensor([[next_input]], device=device),
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values  # the same object, in the versions that fill it in place
        logits = out.logits[0, -1].float().cpu() + rule.mask(written)
        next_input = pick(logits, temperature, top_k, top_p, generator)
        written.append(next_input)
        if next_input == eos:
            break
    return written

"""The motion language model: a T5 encoder-decoder over text and motion tokens (MotionGPT's stages 2 and 3).

The vocabulary is the text tokenizer's plus one token per code of the motion tokenizer
(`<motion_id_0>` .. `<motion_id_{K-1}>`) and three markers: start of motion, end of motion
and a masked motion token (in-betweening). The text tokenizer is ByT5's byte-level one,
which is built in code and needs no download, unless the model starts from a pretrained T5
(`--base-model`): then that model's own tokenizer is kept, saved in the checkpoint's
`text_tokenizer/` folder (JSON and SentencePiece files, nothing pickled), or unless it reads
its text through the static text encoder (`--text-encoder`, myocli/lm/static_text.py): then
the encoder's word-piece tokenizer is the text tokenizer and its frozen table gives the
text tokens' input embeddings; the encoder is copied into the checkpoint's `text_encoder/`.

Sequences are assembled as token ids (`MotionVocab`), never by writing motion tokens into a
string and tokenising it again: exact, and much faster for a byte-level tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.config import DictConfig
from myocli.errors import MyoError

TYPE = "motion-t5"
MOTION_TOKEN = "<motion_id_{}>"
MOTION_START, MOTION_END, MOTION_MASK = "<motion_start>", "<motion_end>", "<motion_mask>"
TEXT_TOKENIZER_DIR = "text_tokenizer"
BYT5 = "byt5"  # the built-in byte-level text tokenizer
SAVED = "saved"  # a pretrained model's tokenizer, saved in the checkpoint
STATIC = "static"  # the static text encoder's tokenizer and table, in the checkpoint's text_encoder/


@dataclass
class LMConfig(DictConfig):
    type: str = TYPE
    skeleton: str = sk.NAME
    t5: dict = field(default_factory=dict)  # transformers.T5Config settings (d_model, num_layers, ...)
    text_tokenizer: str = BYT5  # or SAVED, or STATIC
    # STATIC: the encoder's folder inside the checkpoint and its table's width (set by ssm/text.attach).
    text_encoder: str = ""
    text_encoder_dim: int = 0
    base_model: str = ""  # the pretrained model the weights started from, for the record
    tokenizer: str = ""  # registry label of the motion tokenizer (the parent)
    tokenizer_sha256: str = ""  # of its model.safetensors: the codes mean nothing with another one
    codebook_size: int = 512
    downsample: int = 4
    fps: float = 20.0
    motion_token_offset: int = -1  # id of <motion_id_0>; the others follow
    max_input_tokens: int = 512
    max_motion_tokens: int = 100  # longest motion answer, in codes (20 s at 20 fps / 4)
    max_text_tokens: int = 160  # longest text answer, in text tokens (bytes with ByT5)
    instruction_tuned: bool = False

    @property
    def seconds_per_token(self) -> float:
        return self.downsample / self.fps


@dataclass(frozen=True)
class MotionVocab:
    """Where the motion tokens and markers sit in the model's vocabulary."""

    offset: int  # id of <motion_id_0>
    codebook_size: int
    start: int
    end: int
    mask: int
    eos: int
    pad: int
    size: int  # the whole vocabulary

    def motion_ids(self, codes) -> list[int]:
        """Codes -> the answer of a motion task: start, one id per code, end."""
        return [self.start, *(self.offset + int(c) for c in codes), self.end]

    def codes(self, ids) -> np.ndarray:
        """The motion codes among token ids (markers and anything else dropped)."""
        ids = np.asarray(ids, dtype=np.int64)
        return ids[(ids >= self.offset) & (ids < self.offset + self.codebook_size)] - self.offset

    def motion_related(self) -> np.ndarray:
        """Ids a text answer must not contain."""
        return np.r_[np.arange(self.offset, self.offset + self.codebook_size), [self.start, self.end, self.mask]]


def add_motion_tokens(text_tokenizer, codebook_size: int) -> MotionVocab:
    """Add the motion tokens to a text tokenizer (in place) and say where they went."""
    names = [MOTION_TOKEN.format(k) for k in range(codebook_size)] + [MOTION_START, MOTION_END, MOTION_MASK]
    text_tokenizer.add_tokens(names, special_tokens=True)
    return motion_vocab(text_tokenizer, codebook_size)


def motion_vocab(text_tokenizer, codebook_size: int) -> MotionVocab:
    ids = text_tokenizer.convert_tokens_to_ids([MOTION_TOKEN.format(k) for k in range(codebook_size)])
    offset = ids[0]
    if ids != list(range(offset, offset + codebook_size)):
        raise MyoError(f"the text tokenizer does not hold the {codebook_size} motion tokens in one run of ids")
    start, end, mask = text_tokenizer.convert_tokens_to_ids([MOTION_START, MOTION_END, MOTION_MASK])
    return MotionVocab(offset, codebook_size, start, end, mask, text_tokenizer.eos_token_id, text_tokenizer.pad_token_id, len(text_tokenizer))


def byte_tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def new_model(config: LMConfig, text_tokenizer, text_encoder=None):
    """A freshly initialised T5 of the config's size, with the motion tokens added (config filled in).
    With a static `text_encoder` (and `text_tokenizer` made from it), it reads its text through it."""
    from transformers import T5Config

    vocab = add_motion_tokens(text_tokenizer, config.codebook_size)
    settings = config.t5 | {"vocab_size": vocab.size, "pad_token_id": vocab.pad, "eos_token_id": vocab.eos, "decoder_start_token_id": vocab.pad}
    untied = {}
    if text_encoder is not None:
        # The input embeddings come from the frozen table; the output layer gets weights of its own (lm/static_text.py).
        config.text_tokenizer = STATIC
        untied = {"tie_word_embeddings": False}
    try:
        t5_config = T5Config(**settings | untied)
    except (TypeError, ValueError) as exc:
        raise MyoError(f"the model's t5 settings are not a valid T5 configuration ({exc})") from exc
    config.t5 = t5_config.to_diff_dict() | {"vocab_size": vocab.size} | untied  # transformers 5 records every T5 as tied
    config.motion_token_offset = vocab.offset
    return build_model(config, text_encoder), vocab


def from_pretrained(source: str, config: LMConfig):
    """A pretrained T5 or Flan-T5 (local folder or hub id) and its tokenizer, with the motion tokens added."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, T5ForConditionalGeneration

    where = "a local folder" if Path(source).is_dir() else "a hub id (the hub must be reachable, or the model in the local cache)"
    try:
        pretrained_config = AutoConfig.from_pretrained(source)
        if pretrained_config.model_type != "t5":
            raise MyoError(f"--base-model {source}: a {pretrained_config.model_type!r} model; myo's language model is a T5 (t5 or flan-t5)")
        text_tokenizer = AutoTokenizer.from_pretrained(source)
        model = T5ForConditionalGeneration.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise MyoError(f"--base-model {source}: could not load a T5 model and tokenizer from {where} ({str(exc).splitlines()[0]})") from exc
    vocab = add_motion_tokens(text_tokenizer, config.codebook_size)
    # T5 v1.1 and Flan-T5 have an output layer of their own; transformers' resize would tie it
    # to the input embeddings and lose it, so it is kept and grown here (new rows: the mean row).
    untied = model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    old_head = model.lm_head.weight.detach().clone()
    model.resize_token_embeddings(vocab.size)
    if untied:
        _untie_output_layer(model)
        with torch.no_grad():
            model.lm_head.weight[: len(old_head)] = old_head
            model.lm_head.weight[len(old_head) :] = old_head.mean(dim=0)
    config.t5 = model.config.to_diff_dict() | {"vocab_size": vocab.size, "tie_word_embeddings": not untied}
    config.text_tokenizer = SAVED
    config.base_model = source
    config.motion_token_offset = vocab.offset
    return model, text_tokenizer, vocab


def load_text_tokenizer(config: LMConfig, checkpoint_dir: Path, text_encoder=None):
    """The text tokenizer of a saved model, motion tokens included; checks they sit where the model expects.
    `text_encoder`: the static encoder the checkpoint carries (ssm/text.load_inside), for a STATIC model."""
    if config.text_tokenizer == BYT5:
        text_tokenizer = byte_tokenizer()
        vocab = add_motion_tokens(text_tokenizer, config.codebook_size)
    elif config.text_tokenizer == SAVED:
        from transformers import AutoTokenizer

        folder = checkpoint_dir / TEXT_TOKENIZER_DIR
        if not folder.is_dir():
            raise MyoError(f"{checkpoint_dir}: no {TEXT_TOKENIZER_DIR}/ folder, which this model's text tokenizer is saved in")
        text_tokenizer = AutoTokenizer.from_pretrained(str(folder))
        vocab = motion_vocab(text_tokenizer, config.codebook_size)
    elif config.text_tokenizer == STATIC:
        from myocli.lm import static_text

        if text_encoder is None:
            raise MyoError(f"{checkpoint_dir}: this model reads its text through a static text encoder, and none was loaded")
        text_tokenizer = static_text.text_tokenizer(text_encoder)
        vocab = add_motion_tokens(text_tokenizer, config.codebook_size)
    else:
        raise MyoError(f"{checkpoint_dir}: unknown text_tokenizer {config.text_tokenizer!r} in config.json")
    if vocab.offset != config.motion_token_offset or vocab.size != config.t5.get("vocab_size"):
        raise MyoError(
            f"{checkpoint_dir}: the text tokenizer puts the motion tokens at {vocab.offset} (vocabulary {vocab.size}) "
            f"but the model expects {config.motion_token_offset} ({config.t5.get('vocab_size')})"
        )
    return text_tokenizer, vocab


def build_model(config: LMConfig, text_encoder=None):
    """A T5 of a config (new weights, or to load saved ones into); a STATIC model needs its `text_encoder`."""
    from transformers import T5Config, T5ForConditionalGeneration

    model = T5ForConditionalGeneration(T5Config(**config.t5))
    if config.t5.get("tie_word_embeddings") is False:
        _untie_output_layer(model)
    if config.text_tokenizer == STATIC:
        from myocli.lm import static_text

        if text_encoder is None:
            raise MyoError("this model reads its text through a static text encoder; give it one")
        if text_encoder.width != config.text_encoder_dim:
            raise MyoError(f"the text encoder has {text_encoder.width}-d rows; the model was built for {config.text_encoder_dim}")
        static_text.read_text_through(model, text_encoder)
    return model


def _untie_output_layer(model) -> None:
    """Give the output layer weights of its own (transformers 5 builds every T5 tied)."""
    import torch

    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())


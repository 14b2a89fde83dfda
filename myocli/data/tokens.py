"""Motion-token files (HDF5): what `myo tokenizer encode` writes and the LM stages read.

    tokens         int16 (N, L_max, Q)  code indices; -1 past each length; Q codebooks (1 without residual VQ)
    token_lengths  int32 (N,)           tokens of each sequence (frames // downsample)
    text, captions, names, group        as in the motion file (captions: one per line, "" for none); with
                                        `encode --offsets N`, a sequence also appears started k
                                        frames later as NAME+k (k < N), in the same group

Attributes: format="myo-tokens", format_version=1, tokenizer (registry label),
tokenizer_sha256 (of its model.safetensors), codebook_size, num_quantizers, downsample,
fps, source (the motion file), source_sha256 and offsets (1 when not augmented).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myocli.errors import MyoError

FORMAT = "myo-tokens"
FORMAT_VERSION = 1


@dataclass
class TokenSet:
    tokens: list[np.ndarray]  # each (L, Q) int
    captions: list[list[str]]
    names: list[str]
    groups: list[str]
    attrs: dict = field(default_factory=dict)


def write_tokens(path: str | Path, tokens: TokenSet) -> None:
    import h5py

    from myocli.data.h5 import write_h5

    if not tokens.tokens:
        raise MyoError(f"{path}: nothing to write (no token sequences)")
    count, quantizers = len(tokens.tokens), tokens.tokens[0].shape[-1]
    l_max = max(len(t) for t in tokens.tokens)
    table = np.full((count, l_max, quantizers), -1, dtype=np.int16)
    for i, t in enumerate(tokens.tokens):
        table[i, : len(t)] = t
    string = h5py.string_dtype("utf-8")

    def fill(handle) -> None:
        handle.create_dataset("tokens", data=table, compression="gzip", compression_opts=1)
        handle["token_lengths"] = np.array([len(t) for t in tokens.tokens], dtype=np.int32)
        handle.create_dataset("text", data=[(c or [""])[0] for c in tokens.captions], dtype=string)  # "": uncaptioned
        handle.create_dataset("captions", data=["\n".join(c) for c in tokens.captions], dtype=string)
        handle.create_dataset("names", data=tokens.names, dtype=string)
        handle.create_dataset("group", data=tokens.groups, dtype=string)
        handle.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, **tokens.attrs})

    write_h5(path, fill)  # built in memory, one plain write: a full disk is one clear error


def read_tokens(path: str | Path) -> TokenSet:
    from myocli.data.h5 import open_h5, read_strings

    path = Path(path)
    handle, attrs = open_h5(path)
    with handle:
        if attrs.get("format") != FORMAT:
            raise MyoError(f"{path}: not a motion-token file (format {attrs.get('format')!r}); make one with `myo tokenizer encode`")
        if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
            raise MyoError(f"{path}: format_version {attrs['format_version']} is newer than this myo reads; upgrade myo")
        missing = [name for name in ("tokens", "token_lengths", "captions", "names", "group") if name not in handle]
        if missing:
            raise MyoError(f"{path}: no {', '.join(missing)} dataset(s); the token file is damaged, re-run `myo tokenizer encode`")
        table = handle["tokens"][()]
        lengths = handle["token_lengths"][()]
        captions = [[line for line in c.split("\n") if line.strip()] or [""] for c in read_strings(handle["captions"])]
        names, groups = read_strings(handle["names"]), read_strings(handle["group"])
    codebook = int(attrs.get("codebook_size", 0))
    sequences = []
    for i, length in enumerate(lengths):
        t = table[i, :length].astype(np.int64)
        if length < 1 or length > table.shape[1] or (t < 0).any() or (codebook and (t >= codebook).any()):
            raise MyoError(f"{path}: sequence {i} ({names[i]!r}) has tokens outside 0..{codebook - 1} or a bad length {length}")
        sequences.append(t)
    return TokenSet(sequences, captions, names, groups, attrs)

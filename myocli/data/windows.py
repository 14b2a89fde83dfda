"""Fixed-length training windows cut from whole sequences: a torch Dataset.

The sample stream is a pure function of (seed, sample index): sample i belongs to epoch
i // N (N sequences), whose order and crop offsets come from a generator seeded with
(seed, epoch). That makes training reproducible, lets a resumed run see exactly the
batches an uninterrupted run would have seen (the trainer just skips the ones done), and
lets Accelerate shard the stream across processes without a random sampler.

Sequences shorter than the window are padded with zeros (the mean, in normalised units)
and masked out of the loss, because most real clips are short (HDM05's median is under
two seconds) and dropping them would throw most of the data away.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset


class FeatureWindows(Dataset):
    """Windows of `window` frames (padded and masked when a sequence is shorter), `num_samples` in all,
    each from a whole sequence at a random offset; an epoch draws every sequence `repeats[i]` times
    (default once), in an order fixed by (seed, epoch)."""

    def __init__(self, sequences: list[np.ndarray], window: int, num_samples: int, seed: int = 0, repeats=None):
        if not sequences:
            raise ValueError("no sequences to cut training windows from")
        self.sequences = [np.ascontiguousarray(s, dtype=np.float32) for s in sequences]
        # An epoch is a list of (sequence) entries, a sequence repeated as often as `repeats` says.
        repeats = np.ones(len(self.sequences), int) if repeats is None else np.asarray(repeats, int)
        if repeats.shape != (len(self.sequences),) or repeats.min() < 1:
            raise ValueError("repeats needs one count of 1 or more per sequence")
        self.entries = np.repeat(np.arange(len(self.sequences)), repeats)
        self.lengths = np.array([len(s) for s in self.sequences])
        self.window = window
        self.num_samples = num_samples
        self.seed = seed
        self.feature_dim = self.sequences[0].shape[-1]

    def __len__(self) -> int:
        return self.num_samples

    @lru_cache(maxsize=4)  # noqa: B019 - a handful of epochs, freed with the dataset
    def _epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, epoch))
        order = self.entries[rng.permutation(len(self.entries))]
        room = np.maximum(self.lengths[order] - self.window, 0)
        starts = (rng.random(len(order)) * (room + 1)).astype(np.int64)
        return order, starts

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once: (windows (B, window, D), mask (B, window))."""
        windows = np.zeros((len(indices), self.window, self.feature_dim), dtype=np.float32)
        mask = np.zeros((len(indices), self.window), dtype=bool)
        for row, index in enumerate(indices):
            sequence, start = self.locate(index)
            piece = self.sequences[sequence][start : start + self.window]
            windows[row, : len(piece)] = piece
            mask[row, : len(piece)] = True
        return torch.from_numpy(windows), torch.from_numpy(mask)

    def locate(self, index: int) -> tuple[int, int]:
        """Sample `index` is the window of sequence `sequence` that starts at frame `start`."""
        count = len(self.entries)
        order, starts = self._epoch_plan(index // count)
        return int(order[index % count]), int(starts[index % count])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        windows, mask = self.__getitems__([index])
        return windows[0], mask[0]


def balanced_repeats(captions: list[list[str]], most: int = 16) -> np.ndarray:
    """Windows per epoch for each sequence so that rare motions are drawn more often: a motion (the
    sequences sharing one set of captions) with n sequences, against the commonest one's m, gets
    round(sqrt(m / n)) windows per sequence, at most `most`. Square-root balancing: one DeepMimic
    clip among dozens of takes of each HDM05 action is seen several times an epoch without
    being repeated so often that the generator learns it by heart."""
    keys = [tuple(sorted(set(c))) for c in captions]
    counts = Counter(keys)
    commonest = max(counts.values())
    return np.array([int(np.clip(round(np.sqrt(commonest / counts[k])), 1, most)) for k in keys])


def keep_batch(batch):
    """collate_fn for a dataset whose __getitems__ already returns the batch."""
    return batch


class CaptionedWindows(FeatureWindows):
    """FeatureWindows with a caption per window, for text-to-motion training.

    A batch is (windows (B, window, D), mask (B, window), text, frames (B,)): `text` is what
    `text_fn(captions)` makes of the captions (byte ids, or embeddings), one caption drawn
    per sample from its sequence's captions by (seed, index), "" for an uncaptioned one;
    `frames` is the window's real length. Sequence lengths should be multiples of the
    model's patch so that every window's real part is too.
    """

    def __init__(self, sequences, captions: list[list[str]], text_fn, window: int, num_samples: int, seed: int = 0, repeats=None):
        super().__init__(sequences, window, num_samples, seed, repeats)
        self.captions = [[c for c in caps if c.strip()] for caps in captions]
        self.text_fn = text_fn

    def __getitems__(self, indices: list[int]):
        windows, mask = super().__getitems__(indices)
        chosen = []
        for index in indices:
            options = self.captions[self.locate(index)[0]]
            chosen.append(options[int(np.random.default_rng((self.seed, index, 1)).integers(len(options)))] if options else "")
        return windows, mask, self.text_fn(chosen), mask.sum(dim=1)

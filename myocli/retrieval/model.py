"""The text-motion retrieval evaluator: a motion encoder and a text encoder into one embedding.

Text-to-motion papers judge generated motion with such an evaluator (R-precision, FID,
MM-Dist; docs/evaluation.md), trained contrastively on real clips and their captions and then
frozen. Ours reads myo28 motion features (motion/features.py), so any generator's output,
positions in metres, can be scored the same way as a real clip.

    motion  features (T, D), normalised -> linear -> two stride-2 convolutions (T/4 steps)
            -> transformer encoder -> masked mean -> linear -> unit vector
    text    caption bytes -> the SSM's byte-level encoder (ssm/model.ByteTextEncoder)
            -> linear -> unit vector; or (text_encoder set) the caption's vector from a
            frozen pretrained encoder (ssm/text.py) -> two-layer MLP -> unit vector

The loss is a symmetric InfoNCE over the batch in which every pair with the same caption
counts as a match (datasets repeat one caption over many clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from myocli.config import DictConfig
from myocli.motion import features as feat
from myocli.ssm.model import ByteTextEncoder

DOWNSAMPLE = 4  # the two stride-2 convolutions of the motion encoder


@dataclass
class RetrievalConfig(DictConfig):
    type: str = "motion-text-retrieval"
    skeleton: str = "myo28"
    feature_dim: int = feat.FEATURE_DIM
    feature_version: int = feat.FEATURE_VERSION
    fps: float = 20.0
    max_frames: int = 200  # longer motions are cut to their middle max_frames frames
    width: int = 256  # motion encoder
    depth: int = 2
    heads: int = 4
    embed_dim: int = 128  # the shared embedding space
    # Text: our own byte-level encoder (field names as ByteTextEncoder reads them), or (text_encoder
    # set: the folder inside the checkpoint) a frozen pretrained one whose text_encoder_dim-wide vector is read.
    text_encoder: str = ""
    text_encoder_dim: int = 0
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_text_bytes: int = 160
    temperature: float = 0.07  # of the InfoNCE logits
    dropout: float = 0.1


class MotionEncoder(nn.Module):
    def __init__(self, c: RetrievalConfig):
        super().__init__()
        self.input = nn.Linear(c.feature_dim, c.width)
        self.down = nn.Sequential(
            nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), nn.GELU(),
        )  # fmt: skip
        self.position = nn.Parameter(torch.zeros(c.max_frames // DOWNSAMPLE + 1, c.width))
        layer = nn.TransformerEncoderLayer(c.width, c.heads, 4 * c.width, dropout=c.dropout, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.width)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) normalised features, mask (B, T) real frames -> (B, width)."""
        h = self.down(self.input(x).transpose(1, 2)).transpose(1, 2)
        # A downsampled step is real when any of the frames it reads is (each is 4 frames wide).
        steps = h.shape[1]
        real = F.max_pool1d(mask[:, None].float(), DOWNSAMPLE, DOWNSAMPLE, ceil_mode=True)[:, 0, :steps] > 0
        h = self.layers(h + self.position[:steps], src_key_padding_mask=~real)
        weights = real.unsqueeze(-1).to(h.dtype)
        return self.norm((h * weights).sum(1) / weights.sum(1).clamp(min=1))


class MotionTextRetrieval(nn.Module):
    def __init__(self, c: RetrievalConfig):
        super().__init__()
        self.config = c
        self.motion = MotionEncoder(c)
        self.motion_out = nn.Linear(c.width, c.embed_dim)
        if c.text_encoder:
            self.text = nn.Sequential(nn.Linear(c.text_encoder_dim, c.text_width), nn.GELU())
        else:
            self.text = ByteTextEncoder(c)
        self.text_out = nn.Linear(c.text_width, c.embed_dim)
        # Feature statistics of the training set (set_stats), saved with the weights.
        self.register_buffer("mean", torch.zeros(c.feature_dim))
        self.register_buffer("std", torch.ones(c.feature_dim))

    def set_stats(self, mean, std) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def embed_motion(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, T, D) and their mask -> unit vectors (B, embed_dim)."""
        return F.normalize(self.motion_out(self.motion(x, mask)), dim=-1)

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """Byte ids (B, L) (ssm/model.byte_ids), or the pretrained encoder's vectors (B, text_encoder_dim)
        -> unit vectors (B, embed_dim)."""
        return F.normalize(self.text_out(self.text(text)), dim=-1)

    def forward(self, x, mask, ids, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss: symmetric InfoNCE over the batch with same-caption pairs as matches; also the share of
        motions whose best-scoring caption in the batch is a match (a training-time accuracy)."""
        motion, text = self.embed_motion(x, mask), self.embed_text(ids)
        logits = motion @ text.T / self.config.temperature
        groups = {caption: k for k, caption in enumerate(dict.fromkeys(captions))}
        label = torch.tensor([groups[c] for c in captions], device=logits.device)
        matches = (label[:, None] == label[None, :]).float()
        targets = matches / matches.sum(1, keepdim=True)  # symmetric, so rows serve both directions
        loss = 0.5 * (torch.sum(-targets * F.log_softmax(logits, 1), 1).mean() + torch.sum(-targets * F.log_softmax(logits.T, 1), 1).mean())
        accuracy = matches.gather(1, logits.argmax(1, keepdim=True)).mean()
        return loss, accuracy

"""VQ-VAE motion tokenizer: 1-D convolutions over time, an EMA codebook, optional residual VQ.

Architecture as published for T2M-GPT / MotionGPT (docs/design.md, "Published figures to compare with"): the encoder downsamples
time by 2 per stage (two stages: 4 frames -> 1 token, 20 fps -> 5 tokens/s) with dilated
residual blocks, the decoder mirrors it with nearest-neighbour upsampling. The quantizer
keeps its codebook as an exponential moving average of the encoder outputs assigned to
each code (mu 0.99) and re-seeds codes whose running count falls below one (codes hardly
anyone uses) with random encoder outputs, so the codebook stays alive. Padding frames of
short clips never reach the codebook. With `num_quantizers > 1` each further codebook quantizes what the
previous ones left over (residual VQ, as MoMask does), with quantizer dropout in training
so that the first codebooks alone stay a usable coarse code.

The model works on normalised features (`myocli.motion.features`); the training set's
mean and std are buffers, so they travel inside `model.safetensors`. Codebook updates are
all-reduced across processes, so data-parallel ranks keep identical codebooks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from myocli.config import DictConfig
from myocli.motion import features as feat


@dataclass
class VQVAEConfig(DictConfig):
    type: str = "vqvae"
    feature_dim: int = feat.FEATURE_DIM
    feature_version: int = feat.FEATURE_VERSION
    skeleton: str = "myo28"
    fps: float = 20.0
    width: int = 512  # channels of every conv layer
    depth: int = 3  # residual blocks per stage
    dilation_growth: int = 3  # dilations 1, 3, 9, ...
    down_stages: int = 2  # each halves time: 2 stages = 4x
    codebook_size: int = 512
    code_dim: int = 512
    num_quantizers: int = 1  # > 1: residual VQ
    quantizer_dropout: float = 0.2  # residual VQ: chance a training step uses only the first n codebooks
    ema_decay: float = 0.99
    commitment_weight: float = 0.02
    position_loss_weight: float = 0.5  # MotionGPT's "velocity" term: extra smooth-L1 on the local positions
    seed: int = 0  # quantizer dropout draws from (seed, step), identical on every rank

    @property
    def downsample(self) -> int:
        return 2**self.down_stages



class ResidualBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.project = nn.Conv1d(width, width, 1)

    def forward(self, x):
        return x + self.project(F.relu(self.conv(F.relu(x))))


def residual_stack(width: int, depth: int, growth: int, reverse: bool) -> nn.Sequential:
    dilations = [growth**i for i in range(depth)]
    return nn.Sequential(*(ResidualBlock(width, d) for d in (dilations[::-1] if reverse else dilations)))


class Encoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers = [nn.Conv1d(c.feature_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_stages):
            layers += [nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), residual_stack(c.width, c.depth, c.dilation_growth, False)]
        layers.append(nn.Conv1d(c.width, c.code_dim, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, feature_dim, T) -> (B, code_dim, T / downsample)
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers = [nn.Conv1d(c.code_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_stages):
            layers += [
                residual_stack(c.width, c.depth, c.dilation_growth, True),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(c.width, c.width, 3, padding=1),
            ]
        layers += [nn.Conv1d(c.width, c.width, 3, padding=1), nn.ReLU(), nn.Conv1d(c.width, c.feature_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):  # (B, code_dim, L) -> (B, feature_dim, L * downsample)
        return self.net(z)


def _all_reduce_sum(*tensors: torch.Tensor) -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t)


def _from_rank_zero(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast(tensor, 0)
    return tensor


class EMAQuantizer(nn.Module):
    """One codebook with EMA updates and dead-code reset."""

    def __init__(self, codebook_size: int, code_dim: int, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.zeros(codebook_size, code_dim))
        self.register_buffer("code_sum", torch.zeros(codebook_size, code_dim))
        self.register_buffer("code_count", torch.zeros(codebook_size))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def _random_rows(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """codebook_size rows drawn from x, the same on every rank (rank 0's draw)."""
        picks = torch.randint(len(x), (len(self.codebook),), generator=generator).to(x.device)
        return _from_rank_zero(x[picks].contiguous())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of x (N, code_dim)."""
        distances = (x * x).sum(1, keepdim=True) - 2 * x @ self.codebook.t() + (self.codebook * self.codebook).sum(1)[None]
        return distances.argmin(dim=1)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, indices: torch.Tensor, generator: torch.Generator) -> None:
        onehot = F.one_hot(indices, len(self.codebook)).type(x.dtype)  # (N, K)
        counts, sums = onehot.sum(0), onehot.t() @ x
        _all_reduce_sum(counts, sums)
        self.code_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        dead = self.code_count < 1.0  # identical on every rank: the counts were all-reduced
        if dead.any():
            # A re-seeded code starts over as one fresh sample, so it is not dead again at once.
            self.code_sum.copy_(torch.where(dead.unsqueeze(1), self._random_rows(x, generator), self.code_sum))
            self.code_count.masked_fill_(dead, 1.0)
        self.codebook.copy_(self.code_sum / self.code_count.unsqueeze(1))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """x (N, code_dim) -> (quantized with straight-through gradient, indices, commitment loss).

        In training, only the rows marked `valid` (not padding) update the codebook and seed
        dead codes; `generator` makes the draws repeatable.
        """
        rows = x if valid is None or not valid.any() else x[valid]
        if self.training:
            generator = generator or torch.Generator().manual_seed(0)
            if not bool(self.initialised):  # seed the codebook with encoder outputs
                self.codebook.copy_(self._random_rows(rows.detach(), generator))
                self.code_sum.copy_(self.codebook)
                self.code_count.fill_(1.0)
                self.initialised.fill_(True)
            indices = self.nearest(x.detach())
            self._update(rows.detach(), indices if rows is x else indices[valid], generator)
        else:
            indices = self.nearest(x)
        quantized = self.codebook[indices]
        # Every row, padding included, is pulled towards its code: latents that nothing held
        # would drift without bound and drag the encoder's weights (and the real latents) along.
        commitment = F.mse_loss(x, quantized.detach())
        return x + (quantized - x).detach(), indices, commitment

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return self.codebook[indices]


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quantizers = nn.ModuleList(
            EMAQuantizer(config.codebook_size, config.code_dim, config.ema_decay) for _ in range(config.num_quantizers)
        )
        self.register_buffer("mean", torch.zeros(config.feature_dim))
        self.register_buffer("std", torch.ones(config.feature_dim))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def set_stats(self, mean, std) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def denormalise(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.std + self.mean

    def _step_generator(self, salt: int) -> torch.Generator:
        """Random draws of this training step: a function of (seed, step), so identical on every
        rank and in a resumed run, whatever else used the global RNG."""
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + int(self.step) * 101 + salt)

    def _active_quantizers(self) -> int:
        """How many codebooks this training step uses (all, unless quantizer dropout fires)."""
        count = len(self.quantizers)
        if not self.training or count == 1 or self.config.quantizer_dropout <= 0:
            return count
        generator = self._step_generator(salt=100)
        if torch.rand((), generator=generator) < self.config.quantizer_dropout:
            return int(torch.randint(1, count + 1, (), generator=generator))
        return count

    def quantize(self, z: torch.Tensor, valid: torch.Tensor | None = None):
        """z (B, code_dim, L), valid (B, L) or None -> (quantized (B, code_dim, L), codes (B, L, Q), commitment loss)."""
        batch, dim, length = z.shape
        valid_rows = None if valid is None else valid.reshape(-1)
        with torch.autocast(device_type=z.device.type, enabled=False):  # distances in float32
            residual = z.float().permute(0, 2, 1).reshape(-1, dim)
            total = torch.zeros_like(residual)
            codes, commitment = [], residual.new_zeros(())
            for q, quantizer in enumerate(self.quantizers[: self._active_quantizers()]):
                generator = self._step_generator(salt=q) if self.training else None
                quantized, indices, loss = quantizer(residual, valid_rows, generator)
                total = total + quantized
                residual = residual - quantized.detach()
                codes.append(indices)
                commitment = commitment + loss
        quantized = total.reshape(batch, length, dim).permute(0, 2, 1)
        return quantized, torch.stack(codes, -1).reshape(batch, length, -1), commitment

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Normalised features x (B, T, D), T a multiple of `downsample`; mask (B, T) marks real frames.

        Returns (reconstruction (B, T, D), loss, logs). The loss is computed here, in forward,
        so that data-parallel training (DDP wraps forward) synchronises its gradients.
        """
        if self.training:
            self.step += 1
        # A token is real when the last of its frames is (windows are padded at the end only).
        valid = None if mask is None else mask[:, self.config.downsample - 1 :: self.config.downsample]
        quantized, _codes, commitment = self.quantize(self.encoder(x.permute(0, 2, 1)), valid)
        reconstruction = self.decoder(quantized).permute(0, 2, 1)
        weights = torch.ones(x.shape[:2], device=x.device) if mask is None else mask.float()
        denominator = weights.sum().clamp(min=1.0)

        def smooth_l1(block: slice) -> torch.Tensor:
            error = F.smooth_l1_loss(reconstruction[..., block].float(), x[..., block].float(), reduction="none")
            return (error.mean(-1) * weights).sum() / denominator

        features = smooth_l1(slice(None))
        positions = smooth_l1(feat.LOCAL_POSITIONS)
        c = self.config
        loss = features + c.position_loss_weight * positions + c.commitment_weight * commitment
        logs = {"loss": loss.detach(), "reconstruction": features.detach(), "commitment": commitment.detach()}
        return reconstruction, loss, logs

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, T, D), T a multiple of `downsample` -> codes (B, T / downsample, Q)."""
        return self.quantize(self.encoder(x.permute(0, 2, 1)))[1]

    @torch.no_grad()
    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, T, D) -> the quantized code the decoder reads (B, T / downsample, code_dim):
        the sum of every codebook's vector (what `myo ssm train --latent` generates in)."""
        return self.quantize(self.encoder(x.permute(0, 2, 1)))[0].permute(0, 2, 1)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, L, code_dim) -> normalised features (B, L * downsample, D); differentiable."""
        return self.decoder(z.permute(0, 2, 1)).permute(0, 2, 1)

    def code_latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, L, Q) -> the latents they stand for (B, L, code_dim): the sum of their codebook vectors."""
        return sum(q.lookup(codes[..., i]) for i, q in enumerate(self.quantizers[: codes.shape[-1]]))

    def latent_scale(self) -> torch.Tensor:
        """Per-dimension spread (code_dim,) of the first codebook's vectors: the unit in which moves of a
        latent are measured (physics refinement, myocli/motion/refine.py)."""
        return self.quantizers[0].codebook.std(0).clamp(min=1e-3)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, L, Q) -> normalised features (B, L * downsample, D). Q may be fewer than trained."""
        return self.decode_latents(self.code_latents(codes))

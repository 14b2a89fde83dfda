"""State-space (Mamba-style) text-to-motion generator: a flow-matching denoiser built from selective SSM blocks.

Reading order:
  selective_scan      h_t = exp(delta_t A) h_{t-1} + delta_t B_t x_t,  y_t = C_t h_t  (Mamba's S6
                      recurrence), computed either in parallel (a log-depth doubling scan, for
                      training) or step by step (the recurrent form). Both give the same numbers.
  SelectiveSSM        one direction of a Mamba mixer: causal depthwise conv, input-dependent
                      step, B and C, the scan, the skip D.
  BiMambaBlock        both directions over time (the denoiser sees the whole sequence), gated
                      as in Mamba, modulated by the condition (adaptive LayerNorm, as in DiT).
  ByteTextEncoder     a small transformer over UTF-8 bytes, trained from scratch (the default);
                      a pretrained encoder can replace it (myocli/ssm/text.py).
  MotionFlow          the generator: frames are grouped in patches of 4 (so the SSM runs at
                      5 steps a second, like the tokenizer), the blocks predict the flow
                      velocity, a small head predicts the length from the text. In latent
                      mode a step is one latent vector of a trained tokenizer instead
                      (myocli/ssm/latent.py), which its decoder turns into 4 frames.

The objective is rectified flow (flow matching): x_t = (1 - t) noise + t data, and the model
predicts data - noise. Sampling integrates that velocity from t = 0 to 1 with Euler steps, and
classifier-free guidance mixes the conditional and unconditional velocities (the text is
dropped for `cond_dropout` of the training samples). The physics-aware loss works on the
clean motion the model implies, `x_t + (1 - t) v` (myocli/motion/physics_loss.py).

Padding: a padded frame gets a zero step (delta = 0) and a zero input, so it leaves the
scan's state as it was: the backward direction starts from the last real frame exactly as
it would without padding (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from myocli.config import DictConfig
from myocli.motion import features as feat

PARALLEL, RECURRENT = "parallel", "recurrent"


@dataclass
class SSMConfig(DictConfig):
    type: str = "ssm-flow"
    skeleton: str = "myo28"
    feature_dim: int = feat.FEATURE_DIM
    feature_version: int = feat.FEATURE_VERSION
    fps: float = 20.0
    patch_frames: int = 4  # frames per SSM step
    # Latent mode (myocli/ssm/latent.py): the flow runs over a tokenizer's latent, one
    # latent_dim vector per SSM step (patch_frames is then the tokenizer's downsampling).
    latent_tokenizer: str = ""  # registry label of the tokenizer; "" = pose features
    latent_tokenizer_sha256: str = ""
    latent_dim: int = 0
    max_frames: int = 200  # longest motion (training windows are cut to this)
    width: int = 256
    depth: int = 4  # bidirectional Mamba blocks
    state_size: int = 16  # N, per channel
    expand: int = 2  # inner width = expand * width
    conv_kernel: int = 4
    dt_rank: int = 0  # 0: ceil(width / 16), as in Mamba
    # Text: our own byte-level encoder, or (text_encoder set) a frozen pretrained one whose
    # pooled output (text_encoder_dim wide) is projected in.
    text_encoder: str = ""
    text_encoder_dim: int = 0
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_text_bytes: int = 160
    cond_dropout: float = 0.1  # share of training samples without text (classifier-free guidance)
    # Loss weights. physics_weight scales the sum of the physics terms (0: off).
    physics_weight: float = 0.1
    length_weight: float = 0.1
    # Sampling defaults.
    sample_steps: int = 16
    guidance: float = 2.5
    # Physics refinement after sampling, in gradient steps (0: off). None stands for the default of
    # myocli/motion/refine.py: the trainer writes that number in, the engine reads None as it.
    refine_steps: int | None = None
    # With a static text encoder: pull a prompt's vector this far towards its nearest training caption's
    # (0: not at all; only prompts near one, text/known.py), so new wording conditions like known wording.
    text_snap: float = 0.0

    @property
    def inner(self) -> int:
        return self.expand * self.width

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.width / 16)

    @property
    def max_patches(self) -> int:
        return self.max_frames // self.patch_frames

    @property
    def rows_per_patch(self) -> int:
        """Rows of the flow's data per SSM step: patch_frames feature frames, or one latent."""
        return 1 if self.latent_tokenizer else self.patch_frames

    @property
    def row_dim(self) -> int:
        """Width of one row of the flow's data: a feature frame, or a latent vector."""
        return self.latent_dim if self.latent_tokenizer else self.feature_dim


# ---------------------------------------------------------------------------------------------
# The selective scan.


def _doubling_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t along dim 1 with h_{-1} = 0, in log2(L) vectorised steps (no autograd).

    Hillis-Steele doubling on the associative pairs (a, b): after the step with offset k each
    position holds the combined map of the 2k positions ending at it. O(L log L) work in a
    handful of large elementwise kernels: what a GPU wants.
    """
    a, b = a.clone(), b.clone()
    length, offset = a.shape[1], 1
    while offset < length:
        carried = a[:, offset:] * b[:, :-offset]  # from the old values, before either is updated
        a[:, offset:] = a[:, offset:] * a[:, :-offset]
        b[:, offset:] += carried
        offset *= 2
    return b


def _loop_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same recurrence one position at a time (no autograd): O(L) work in L small kernels.
    On a CPU this is 3-27x faster than doubling at our sizes (benchmarks/ssm_scan.py)."""
    h = torch.empty_like(b)
    state = torch.zeros_like(b[:, 0])
    for t in range(a.shape[1]):
        state = torch.addcmul(b[:, t], a[:, t], state)
        h[:, t] = state
    return h


def auto_scan_method(a: torch.Tensor) -> str:
    """The kernel `auto` picks: doubling on a GPU (log depth), the loop on a CPU (faster there). A
    test swaps this to run the GPU's choice through the whole model on a CPU."""
    return "doubling" if a.is_cuda else "loop"


def linear_scan_kernel(a: torch.Tensor, b: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t along dim 1, without autograd; method auto (auto_scan_method),
    doubling or loop. All three give the same numbers to rounding."""
    if method == "auto":
        method = auto_scan_method(a)
    return _doubling_scan(a, b) if method == "doubling" else _loop_scan(a, b)


class LinearScan(torch.autograd.Function):
    """The scan with a hand-written backward, itself a scan run backwards in time:
    g_t = dL/dh_t + a_{t+1} g_{t+1}, then dL/db_t = g_t and dL/da_t = g_t h_{t-1}. Autograd through
    the scan's steps would keep every intermediate (and for doubling spend most of its time filling zeros)."""

    @staticmethod
    def forward(ctx, a, b, method):
        h = linear_scan_kernel(a, b, method)
        ctx.save_for_backward(a, h)
        ctx.method = method
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=1)
        g = linear_scan_kernel(a_next.flip(1), grad_h.flip(1), ctx.method).flip(1)
        grad_a = torch.zeros_like(a)
        grad_a[:, 1:] = g[:, 1:] * h[:, :-1]
        return grad_a, g, None


def parallel_linear_scan(a: torch.Tensor, b: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t along dim 1 (h_{-1} = 0), differentiable, all positions at once."""
    return LinearScan.apply(a, b, method)


def selective_scan(x, delta, A, B, C, scan: str = PARALLEL) -> torch.Tensor:
    """Mamba's S6 recurrence. x, delta: (batch, L, E); A: (E, N); B, C: (batch, L, N) -> y (batch, L, E)."""
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (batch, L, E, N), in (0, 1]
    drive = (delta * x).unsqueeze(-1) * B.unsqueeze(2)  # (batch, L, E, N)
    if scan == PARALLEL:
        states = parallel_linear_scan(decay, drive)
        return torch.einsum("blen,bln->ble", states, C)
    state = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])
    outputs = []
    for t in range(x.shape[1]):
        state = decay[:, t] * state + drive[:, t]
        outputs.append(torch.einsum("ben,bn->be", state, C[:, t]))
    return torch.stack(outputs, dim=1)


class SelectiveSSM(nn.Module):
    """One direction of a Mamba mixer over (batch, L, E) inputs already projected to the inner width."""

    def __init__(self, c: SSMConfig):
        super().__init__()
        self.kernel = c.conv_kernel
        self.conv = nn.Conv1d(c.inner, c.inner, c.conv_kernel, groups=c.inner)  # causal: padded on the left by hand
        self.x_proj = nn.Linear(c.inner, c.rank + 2 * c.state_size, bias=False)
        self.dt_proj = nn.Linear(c.rank, c.inner)
        # Mamba's initialisation: steps between 1e-3 and 1e-1 (log-uniform), A = -(1..N).
        dt = torch.exp(torch.rand(c.inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.arange(1, c.state_size + 1, dtype=torch.float32)).repeat(c.inner, 1))
        self.D = nn.Parameter(torch.ones(c.inner))
        self.rank, self.state_size = c.rank, c.state_size

    def _selective(self, u):
        """The input-dependent step, B and C of each position: u (batch, L, E)."""
        dt, B, C = self.x_proj(u).split([self.rank, self.state_size, self.state_size], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def forward(self, x, mask, scan: str = PARALLEL):
        """x: (batch, L, E); mask: (batch, L) bool, True on real positions."""
        keep = mask.unsqueeze(-1).to(x.dtype)
        if scan == RECURRENT:
            return self._recurrent(x, keep)
        x = x * keep
        u = F.silu(self.conv(F.pad(x.transpose(1, 2), (self.kernel - 1, 0))).transpose(1, 2))
        delta, B, C = self._selective(u)
        delta = delta * keep  # padded positions leave the state untouched
        return selective_scan(u, delta, -torch.exp(self.A_log), B, C, PARALLEL) + u * self.D

    def _recurrent(self, x, keep):
        """The same function one position at a time through `step` (what a streaming decoder runs)."""
        state = self.initial_state(x.shape[0], x)
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], keep[:, t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=1)

    def initial_state(self, batch: int, like: torch.Tensor):
        return like.new_zeros(batch, self.conv.in_channels, self.kernel - 1), like.new_zeros(batch, self.conv.in_channels, self.state_size)

    def step(self, x_t, keep_t, state):
        """One position: x_t (batch, E), keep_t (batch, 1) -> (y_t, new state). The state is the
        conv's last kernel-1 inputs and the SSM state h (batch, E, N)."""
        window, h = state
        x_t = x_t * keep_t
        window = torch.cat([window, x_t.unsqueeze(-1)], dim=-1)  # (batch, E, kernel)
        u = F.silu((window * self.conv.weight.squeeze(1)).sum(-1) + self.conv.bias)
        delta, B, C = self._selective(u)
        delta = delta * keep_t
        h = torch.exp(delta.unsqueeze(-1) * -torch.exp(self.A_log)) * h + (delta * u).unsqueeze(-1) * B.unsqueeze(1)
        y = torch.einsum("ben,bn->be", h, C) + u * self.D
        return y, (window[..., 1:], h)


class BiMambaBlock(nn.Module):
    """Pre-norm residual block: x + gate * out(ssm_fwd(x) + flip(ssm_bwd(flip(x))) * silu(z)), with the
    norm's shift and scale and the gate computed from the condition (zero-initialised: a block starts as identity)."""

    def __init__(self, c: SSMConfig):
        super().__init__()
        self.norm = nn.LayerNorm(c.width, elementwise_affine=False)
        self.modulation = nn.Linear(c.width, 3 * c.width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.in_proj = nn.Linear(c.width, 2 * c.inner)
        self.forward_ssm = SelectiveSSM(c)
        self.backward_ssm = SelectiveSSM(c)
        self.out_proj = nn.Linear(c.inner, c.width)

    def forward(self, x, cond, mask, scan: str = PARALLEL):
        shift, scale, gate = self.modulation(cond).unsqueeze(1).chunk(3, dim=-1)
        h, z = self.in_proj(self.norm(x) * (1 + scale) + shift).chunk(2, dim=-1)
        reverse = _reverse_valid(mask)
        y = self.forward_ssm(h, mask, scan) + _gather(self.backward_ssm(_gather(h, reverse), _gather(mask, reverse), scan), reverse)
        return x + gate * self.out_proj(y * F.silu(z))


def _reverse_valid(mask):
    """Per row, the index order that reverses the real positions and leaves the padding at the end."""
    length = mask.shape[1]
    positions = torch.arange(length, device=mask.device).expand_as(mask)
    valid = mask.sum(dim=1, keepdim=True)
    return torch.where(positions < valid, valid - 1 - positions, positions)


def _gather(x, order):
    return torch.gather(x, 1, order if x.dim() == 2 else order.unsqueeze(-1).expand_as(x))


# ---------------------------------------------------------------------------------------------
# Conditioning.


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal features of flow time t in [0, 1]: (batch,) -> (batch, width)."""
    half = width // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = 1000 * t.unsqueeze(-1) * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ByteTextEncoder(nn.Module):
    """Captions as UTF-8 bytes (ids 1..256, 0 pads) -> a small transformer -> masked mean pool."""

    def __init__(self, c: SSMConfig):
        super().__init__()
        self.embed = nn.Embedding(257, c.text_width, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(c.max_text_bytes, c.text_width))
        layer = nn.TransformerEncoderLayer(c.text_width, c.text_heads, 4 * c.text_width, dropout=0.1, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, c.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.text_width)

    def forward(self, ids):
        real = ids > 0
        h = self.layers(self.embed(ids) + self.position[: ids.shape[1]], src_key_padding_mask=~real)
        real = real.unsqueeze(-1).float()
        return self.norm((h * real).sum(1) / real.sum(1).clamp(min=1))


def has_text(text) -> torch.Tensor:
    """Rows of a text input (byte ids or pooled embeddings) that hold a caption: all-zero rows do not."""
    return (text != 0).any(dim=1)


def byte_ids(captions: list[str], max_bytes: int) -> torch.Tensor:
    """Captions -> (batch, longest) byte ids for ByteTextEncoder (an empty caption is all padding)."""
    rows = [list(text.encode("utf-8")[:max_bytes]) for text in captions]
    ids = torch.zeros(len(rows), max(1, max(map(len, rows), default=1)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long) + 1
    return ids


# ---------------------------------------------------------------------------------------------
# The generator.


class MotionFlow(nn.Module):
    def __init__(self, c: SSMConfig):
        super().__init__()
        self.config = c
        patch = c.rows_per_patch * c.row_dim
        if c.text_encoder:
            self.text_in = nn.Linear(c.text_encoder_dim, c.width)
        else:
            self.text = ByteTextEncoder(c)
            self.text_in = nn.Linear(c.text_width, c.width)
        self.null_text = nn.Parameter(torch.zeros(c.width))  # the "no caption" condition
        self.time_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.patch_in = nn.Linear(patch, c.width)
        self.position = nn.Parameter(torch.zeros(c.max_patches, c.width))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(BiMambaBlock(c) for _ in range(c.depth))
        self.norm_out = nn.LayerNorm(c.width)
        self.patch_out = nn.Linear(c.width, patch)
        nn.init.zeros_(self.patch_out.weight)
        nn.init.zeros_(self.patch_out.bias)
        self.length_head = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.max_patches))
        # Normalisation of the data (features or latents, the training set's), saved with the weights.
        self.register_buffer("mean", torch.zeros(c.row_dim))
        self.register_buffer("std", torch.ones(c.row_dim))

    def set_stats(self, mean, std) -> None:
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(std))

    def text_condition(self, text, drop=None) -> torch.Tensor:
        """Byte ids (own encoder) or pooled embeddings (pretrained encoder) -> (batch, width); rows
        where `drop` is True (or whose caption is empty) get the learned no-caption vector."""
        cond = self.text_in(text if self.config.text_encoder else self.text(text))
        empty = ~has_text(text)
        drop = empty if drop is None else drop | empty
        return torch.where(drop.unsqueeze(-1), self.null_text.expand_as(cond), cond)

    def forward(self, x_t, t, text, mask, drop=None):
        """One training evaluation: (velocity like x_t, length logits (batch, max_patches))."""
        text_cond = self.text_condition(text, drop)
        return self.velocity(x_t, t, text_cond, mask), self.length_logits(text_cond)

    def velocity(self, x_t, t, text_cond, mask, scan: str = PARALLEL):
        """x_t: (batch, rows, row_dim) normalised, rows a multiple of rows_per_patch; t: (batch,);
        text_cond: (batch, width); mask: (batch, rows // rows_per_patch) -> velocity like x_t."""
        batch, patches = mask.shape
        h = self.patch_in(x_t.reshape(batch, patches, -1)) + self.position[:patches]
        cond = text_cond + self.time_mlp(timestep_embedding(t, self.config.width))
        for block in self.blocks:
            h = block(h, cond, mask, scan)
        return self.patch_out(self.norm_out(h)).reshape(x_t.shape)

    def length_logits(self, text_cond):
        """Distribution over lengths of 1..max_patches patches: (batch, max_patches)."""
        return self.length_head(text_cond)

    @torch.no_grad()
    def sample(self, text_cond, patches: torch.Tensor, generator: torch.Generator, steps: int | None = None,
               guidance: float | None = None, scan: str = PARALLEL) -> torch.Tensor:  # fmt: skip
        """Euler integration of the guided flow from noise: text_cond (batch, width) -> normalised
        data (batch, max(patches) * rows_per_patch, row_dim); samples shorter than the longest are padded."""
        c = self.config
        steps, guidance = steps or c.sample_steps, c.guidance if guidance is None else guidance
        batch, longest = text_cond.shape[0], int(patches.max())
        mask = torch.arange(longest, device=patches.device) < patches.unsqueeze(-1)
        x = torch.randn(batch, longest * c.rows_per_patch, c.row_dim, generator=generator).to(text_cond.device)
        null = self.null_text.expand_as(text_cond)
        both_cond, both_mask = torch.cat([text_cond, null]), torch.cat([mask, mask])
        for k in range(steps):
            t = torch.full((2 * batch,), k / steps, device=x.device)
            conditional, unconditional = self.velocity(torch.cat([x, x]), t, both_cond, both_mask, scan).chunk(2)
            x = x + (unconditional + guidance * (conditional - unconditional)) / steps
        return x * mask.repeat_interleave(c.rows_per_patch, dim=1).unsqueeze(-1)

"""The SSM generator's latent space: a trained motion tokenizer's continuous code (`myo ssm train --latent`).

Latent diffusion (MLD, Motion Mamba) generates in an autoencoder's latent instead of in
pose features: the decoder turns any latent near the data into a whole-body motion with
the skeleton's proportions, so the generator spends its capacity on *which* motion, not on
keeping bones the right length. Our autoencoder is the VQ-VAE tokenizer: its latent is the
quantized code before the decoder, the sum of the codebook vectors of every quantizer
(one vector per 4 frames, `code_dim` wide). The generator is trained on those vectors and
the tokenizer's decoder turns what it samples back into features. The decoder is frozen;
gradients of the physics terms flow through it into the generator.

The tokenizer stays in the registry (like the language model's): the SSM checkpoint names
it and its weights' sha256, and loading refuses a tokenizer that changed since.
"""

from __future__ import annotations

import numpy as np

from myocli import registry


class LatentSpace:
    def __init__(self, ref, model, sha256: str):
        self.ref, self.model, self.sha256 = ref, model, sha256
        for p in model.parameters():
            p.requires_grad_(False)

    @classmethod
    def load(cls, spec: str) -> LatentSpace:
        """A tokenizer chosen for a new generator (`--latent`)."""
        from myocli.tokenizer.codec import load_tokenizer

        ref, model, manifest = load_tokenizer(spec)
        return cls(ref, model, manifest["files"][registry.WEIGHTS]["sha256"])

    @classmethod
    def of(cls, config, label: str) -> LatentSpace:
        """The tokenizer a latent-mode generator (its SSMConfig) was trained on, unchanged since."""
        from myocli.tokenizer.codec import load_parent

        ref, model = load_parent(config.latent_tokenizer, config.latent_tokenizer_sha256, label, "the latent of")
        return cls(ref, model, config.latent_tokenizer_sha256)

    @property
    def dim(self) -> int:
        return self.model.config.code_dim

    @property
    def frames_per_latent(self) -> int:
        return self.model.config.downsample

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Unnormalised features (T, D), T a multiple of frames_per_latent -> latents (T / frames_per_latent, code_dim)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))[None].to(self.model.mean.device)
        return self.model.latents(self.model.normalise(x))[0].cpu().numpy()

    def decode(self, latents):
        """Latents (batch, L, code_dim) tensor on the model's device -> unnormalised features (batch, L * frames_per_latent, D), differentiable."""
        from myocli.tokenizer.codec import latent_features

        return latent_features(self.model, latents)

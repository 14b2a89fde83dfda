"""Physics refinement of a generated motion: gradient steps on the generator's own sample.

A generator draws a sample (an SSM's latent or pose features); `refine` then takes a few
Adam steps on that sample to lower the sampling-time physics terms of the motion it decodes
to (`physics_loss.contact_terms`: feet sliding while on the floor, joints below it), plus an
anchor that keeps the sample near what was drawn, so the action stays the one the caption
asked for. This is guidance at sampling time, in the spirit of PhysDiff's physics projection
and of the foot clean-up step of animation pipelines, done through the generator's own
decoder: in latent mode the tokenizer's decoder keeps the result a whole-body motion with
myo28's bones.

Why at sampling time as well as in training: the training term (`--physics-weight`) lowers
penetration and floating but not skating (benchmarks/RESULTS.md, "Latent mode"), because
most of the sliding comes from the tokenizer's decoder; nearby latents that do not slide
exist, and this finds them.
"""

from __future__ import annotations

DEFAULT_STEPS = 10  # of every generator (SSMConfig.refine_steps, the LM's Sampling, `myo generate`, `myo lm eval`)
LEARNING_RATE = 0.1  # per Adam step, in the sample's normalised units (chosen on the validation set: benchmarks/refine_sweep.py)
ANCHOR_WEIGHT = 1.0  # mean squared distance from the drawn sample, normalised units
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


class Adam:
    """torch.optim.Adam's update (its defaults, no weight decay) on one tensor, in a few lines: building
    torch.optim.Adam imports torch._dynamo, about a second of every `myo generate`."""

    def __init__(self, x, lr: float):
        import torch

        self.x, self.lr, self.step_count = x, lr, 0
        self.mean, self.square = torch.zeros_like(x), torch.zeros_like(x)

    def step(self, grad) -> None:
        import torch

        self.step_count += 1
        (b1, b2), t = BETAS, self.step_count
        with torch.no_grad():
            self.mean.lerp_(grad, 1 - b1)
            self.square.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denominator = (self.square.sqrt() / (1 - b2**t) ** 0.5).add_(EPS)
            self.x.addcdiv_(self.mean, denominator, value=-self.lr / (1 - b1**t))


def refine(sample, to_features, fps: float, steps: int):
    """sample: (batch, rows, dim) normalised; to_features: differentiable map from a sample to unnormalised
    features (batch, T, FEATURE_DIM) -> the refined sample (same shape, no gradient). 0 steps: unchanged.

    Every row must be a real frame (no padding): the floor, the contacts and the anchor see them all.
    Only the sample is changed; weights inside `to_features` get no gradient."""
    import torch  # here, not above: the command line reads DEFAULT_STEPS without loading torch

    from myocli.motion import features as feat
    from myocli.motion.physics_loss import contact_terms

    if steps <= 0:
        return sample
    drawn = sample.detach()
    x = drawn.clone().requires_grad_(True)
    optimiser = Adam(x, LEARNING_RATE)
    with torch.enable_grad():
        for _ in range(steps):
            terms = contact_terms(feat.generated_positions_torch(to_features(x)), fps)
            energy = terms["skating"] + terms["penetration"] + ANCHOR_WEIGHT * ((x - drawn) ** 2).flatten(1).mean(1)
            # Gradient for the sample only: the decoder's weights are not ours to touch.
            (grad,) = torch.autograd.grad(energy.sum(), x)
            optimiser.step(grad)
    return x.detach()

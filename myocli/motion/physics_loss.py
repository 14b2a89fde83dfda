"""Differentiable physics terms on a predicted motion, for training generators (`myo ssm train`).

They are the training-time versions of the plausibility metrics in myocli/motion/metrics.py,
computed on global positions (`features.from_features_torch`) and in centimetres, so that
each is of order one. The real motion the prediction stands for says when a foot is on the
floor (its contact features), because that is a property of the motion being made, not of
the prediction's current mistakes. Per sample (batch,), over real frames only:

    skating       horizontal movement of a foot point (heel or ball) between two frames in
                  which the real motion has it in contact, cm per frame
    penetration   depth below the floor (y = 0) of every joint, summed over joints, cm
    floating      in frames where the real motion stands on something, how much higher the
                  lowest foot point is than the real one's, cm
    bone_length   mean absolute deviation of the 27 bones from myo28's lengths, cm

`contact_terms` are the sampling-time versions of skating and penetration, for a generated
motion with no real one behind it (`myocli/motion/refine.py`): contact is read from the
motion itself.

No simulator is involved: for these four quantities a formula on positions is exact, cheap
and differentiable, where a physics engine's contact solver would be neither of the last two.
"""

from __future__ import annotations

import torch

from myocli import skeleton as sk
from myocli.motion import features as feat
from myocli.motion.metrics import SKATING_SPEED_M_S

TERMS = ("skating", "penetration", "floating", "bone_length")
_BONE_LENGTHS = torch.tensor(sk.CANONICAL_BONE_LENGTHS, dtype=torch.float32)
_PARENTS = torch.tensor(sk.PARENTS[1:], dtype=torch.long)


def _masked_mean(values, weights):
    return (values * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp(min=1)


def physics_terms(predicted, real, frame_mask) -> dict[str, torch.Tensor]:
    """predicted, real: features in metres (batch, T, FEATURE_DIM); frame_mask (batch, T) bool -> {term: (batch,)}."""
    positions = feat.from_features_torch(predicted)
    real_positions = feat.from_features_torch(real)
    frames = frame_mask.to(predicted.dtype)
    feet = list(sk.FOOT_CONTACT_JOINTS)
    contact = (real[..., feat.FOOT_CONTACTS] > 0.5).to(predicted.dtype) * frames.unsqueeze(-1)  # (batch, T, 4)

    both = contact[:, 1:] * contact[:, :-1]
    step = positions[:, 1:, feet] - positions[:, :-1, feet]
    slide = torch.sqrt((step[..., [0, 2]] ** 2).sum(-1) + 1e-8) * 100
    skating = _masked_mean(slide, both)

    depth = torch.relu(-positions[..., 1]).sum(-1) * 100  # (batch, T)
    penetration = _masked_mean(depth, frames)

    standing = (contact.sum(-1) > 0).to(predicted.dtype)
    lowest = positions[:, :, feet, 1].min(-1).values
    real_lowest = real_positions[:, :, feet, 1].min(-1).values
    floating = _masked_mean(torch.relu(lowest - real_lowest) * 100, standing)

    bones = torch.linalg.vector_norm(positions[:, :, 1:] - positions[:, :, _PARENTS.to(positions.device)], dim=-1)
    deviation = (bones - _BONE_LENGTHS.to(bones)).abs().mean(-1) * 100
    bone_length = _masked_mean(deviation, frames)
    return {"skating": skating, "penetration": penetration, "floating": floating, "bone_length": bone_length}


# Sampling time: contact read from the motion itself.
SLIDE_ALLOWANCE_M_S = SKATING_SPEED_M_S / 2  # a contact foot slower than this is left alone


def contact_terms(positions, fps: float) -> dict[str, torch.Tensor]:
    """positions (batch, T, 28, 3) on the floor, metres -> {"skating", "penetration"}: (batch,) each.

    skating       mean squared horizontal speed above SLIDE_ALLOWANCE_M_S, (m/s)^2, of the foot
                  points that are below 5 cm in two adjacent frames
    penetration   mean squared depth below the floor of every joint, cm^2

    Which feet are in contact is decided without gradient: otherwise the cheapest way to stop
    a foot sliding would be to lift it just above the contact height and let it slide there.
    """
    feet = positions[:, :, list(sk.FOOT_CONTACT_JOINTS)]
    low = (feet[..., 1] < sk.FOOT_CONTACT_HEIGHT_M).detach()
    contact = (low[:, 1:] & low[:, :-1]).to(positions.dtype)
    step = feet[:, 1:, :, [0, 2]] - feet[:, :-1, :, [0, 2]]
    speed = torch.sqrt((step**2).sum(-1) + 1e-12) * fps
    skating = _masked_mean(torch.relu(speed - SLIDE_ALLOWANCE_M_S) ** 2, contact)
    penetration = (torch.relu(-positions[..., 1]) * 100).pow(2).flatten(1).mean(1)
    return {"skating": skating, "penetration": penetration}

"""The physics replay of generated motions (`myo generate --physics`, `myo demo --physics`): each motion
followed by the simulated humanoid under a tracking policy (rl/track.py), which keeps what the body
can do and records how far the motion was from it.

Light at import (the commands read its default for their --help): the simulation is imported by the
functions that run it.
"""

from __future__ import annotations

# Copies of the body tried every 0.1 s by --physics (myocli/rl/track.py) for a controller whose
# reward has a skating penalty (the `generated` preset). On 65 generated walks 32 skated least of 16,
# 32 and 64 (benchmarks/RESULTS.md); a 3-s walk took 0.4 s on one core on average (less when the
# body strays early: the replay stops there). A controller without the penalty replays alone: the
# search raises its own reward, and for one that does not count skating that meant chasing the
# input's sliding feet (77 generated walks under the CMU walker: skating 0.35 alone, 0.52 searched).
DEFAULT_PHYSICS_SEARCH = 32


def load_controller(spec: str | None, search: int | None):
    """The tracking policy of --physics (ref, config, agent, copies searched; None without one), loaded
    before any generation so that a bad one fails first."""
    if spec is None:
        return None
    from myocli.rl.track import load_policy

    ref, config, agent = load_policy(spec)
    return ref, config, agent, default_physics_search(config) if search is None else search


def default_physics_search(config) -> int:
    """Copies searched by --physics for a policy (its PolicyConfig) when the command does not say."""
    return DEFAULT_PHYSICS_SEARCH if config.skate_weight > 0 else 1


def simulate(controller, records: list[dict], motions: list, fps: float) -> list | None:
    """Each motion (T, 28, 3) replayed under the controller: the simulated positions (None without a
    controller). Each output record gains the physics figures before and after."""
    if controller is None:
        return None
    from myocli.rl.track import track

    ref, config, agent, search = controller
    simulated = []
    for record, positions in zip(records, motions, strict=True):
        result = track(agent, config, positions, fps, f"sample {record['sample']}", search=search, seed=record["seed"])
        simulated.append(result.positions)
        summary = result.summary()
        record["physics"] = {"policy": ref.label, "search": search, "fell_at_seconds": summary["fell_at_seconds"],
                             "mean_joint_error_mm": summary["mean_joint_error_mm"], "frames": len(result.positions),
                             **result.contact_figures(positions, fps), "floor_contact_simulated": result.floor_contact()}  # fmt: skip
    return simulated

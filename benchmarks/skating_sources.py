"""Where foot skating comes from: a tokenizer's own reconstructions, and a tracking policy's simulation.

The measurements behind the skating figures in benchmarks/RESULTS.md (foot skating ratio,
docs/evaluation.md (foot skating); penetration in mm):
- --tokenizers: each clip of --data (at least one second, the first --clips of them) encoded and
  decoded by each tokenizer, against the clips themselves: what any generator that decodes
  through that tokenizer starts from.
- --policy with --motion (one or more): each motion tracked by the policy from its first frame (as
  `myo rl eval` does), the kinematic input against the simulated result over the frames simulated;
  and the simulated toes' skating steps sorted by what the input's toe did in the same step (up in
  the air, sliding on the floor, or slower than skating on it) and by whether the simulated toe was
  on the floor (a flat sole's toe height, plus 5 mm) or above it; and the root's mean speed along the
  floor, input and simulated, and how the two correlate across the motions; and the skating of the
  pose the policy was asked to follow (the humanoid's pose of the input, rl/reference.py). Each motion is also
  sorted by its input alone (`motion_kind`): a walk, standing (upright, root slower than 0.3 m/s)
  or down (the pelvis below 0.6 m: a generator's "walk" that sits or lies down), and the means are
  given per kind as well. --search N replays as `myo rl eval --search N` does (N copies tried
  every 0.1 s, the best kept; `myo generate --physics` uses 32 for a `generated`-preset controller).
- --kinds with --motion: just that sorting, one "KIND PATH" line per motion (to pick training clips).

Run from the repository root (checkpoints in ./checkpoints or $MYO_HOME):
    python benchmarks/skating_sources.py --data datasets/tok_test.h5 --tokenizers quality-rvq6 quality-vq --clips 20
    python benchmarks/skating_sources.py --policy rl/walk@3 --motion datasets/cmu_walk.h5:0
    myo generate "a person walks forward" --model lm/quality-it --seconds 3 -n 10 --seed 0 -o walks/w
    python benchmarks/skating_sources.py --policy rl/genwalk --motion walks/w_*.npy
    python benchmarks/skating_sources.py --policy rl/genwalk --motion walks/w_*.npy --search 32
    python benchmarks/skating_sources.py --kinds --motion walks/w_*.npy
"""

from __future__ import annotations

import argparse

UPRIGHT_PELVIS_M = 0.6  # a pelvis below this is sitting, kneeling or lying (standing: 0.85-1.0 m)
WALKING_SPEED_M_S = 0.3  # a root slower than this on average is standing about (generated walks: 0.5-1.1 m/s)


def tokenizer_reconstructions(data: str, tokenizers: list[str], clips: int) -> None:
    import numpy as np

    from myocli.data.h5 import read_dataset
    from myocli.lm.evaluate import plausibility
    from myocli.motion import features as feat
    from myocli.tokenizer import codec as tok

    dataset = read_dataset(data)
    chosen = [s for s in dataset.sequences if len(s) >= dataset.fps and s.captions][:clips]
    print(f"{len(chosen)} clips of {data}")
    print("real clips", plausibility([s.motion.astype(np.float64) for s in chosen], dataset.fps))
    for spec in tokenizers:
        _, model, _ = tok.load_tokenizer(spec)
        rebuilt = []
        for sequence in chosen:
            features = feat.to_features(sequence.motion, dataset.fps).astype(np.float32)
            rebuilt.append(feat.generated_positions(tok.decode(model, tok.encode(model, features))))
        print(spec, plausibility(rebuilt, dataset.fps))


def skating_causes(kinematic, simulated, fps: float) -> dict[str, int]:
    """Toe-steps where the simulated motion skates (metrics.skating_toes), counted by what the
    input's toe did in the same step."""
    import numpy as np

    from myocli import skeleton as sk
    from myocli.motion import metrics

    kinematic = kinematic[: len(simulated)]
    simulated_skates = metrics.skating_toes(simulated, fps)
    input_up = ~metrics.low_toes(kinematic)
    input_slides = metrics.skating_toes(kinematic, fps)
    still = simulated_skates & ~input_up & ~input_slides
    # A toe on a sole flat on the floor stands as high as in myo28's rest pose (1 cm above the heel).
    toes = list(sk.TOE_JOINTS)
    flat = sk.rest_pose(floor=True)[toes, 1] + 0.005
    on_floor = np.minimum(simulated[1:, toes, 1], simulated[:-1, toes, 1]) < flat
    return {
        "input toe up": int((simulated_skates & input_up).sum()),
        "input toe up, simulated toe on the floor": int((simulated_skates & input_up & on_floor).sum()),
        "input toe slides too": int((simulated_skates & input_slides).sum()),
        "input toe slower than 0.5 m/s, simulated toe on the floor": int((still & on_floor).sum()),
        "input toe slower than 0.5 m/s, simulated toe above it": int((still & ~on_floor).sum()),
    }


def root_speed(positions, fps: float) -> float:
    """Mean horizontal speed of the root over a motion, m/s (a body that falls behind a walk is slower)."""
    import numpy as np

    return float(np.linalg.norm(np.diff(positions[:, 0, [0, 2]], axis=0), axis=-1).mean() * fps) if len(positions) > 1 else 0.0


def motion_kind(positions, fps: float) -> str:
    """'walk', 'standing' or 'down': what a motion does, from the motion alone (see the module docstring)."""
    if positions[:, 0, 1].min() < UPRIGHT_PELVIS_M:
        return "down"
    return "walk" if root_speed(positions, fps) >= WALKING_SPEED_M_S else "standing"


def print_kinds(motions: list[str]) -> None:
    """One 'KIND PATH' line per motion, for picking clips with awk or grep."""
    from myocli.data.h5 import DEFAULT_FPS
    from myocli.data.motion_input import load_motion

    for motion in motions:
        source = load_motion(motion)
        print(motion_kind(source.motion, source.fps or DEFAULT_FPS), motion)


def simulated_motions(policy: str, motions: list[str], search: int = 1) -> None:
    """Each motion tracked from its first frame; kinematic and simulated figures over the frames simulated."""
    from collections import Counter

    import numpy as np

    from myocli.data.h5 import DEFAULT_FPS
    from myocli.data.motion_input import load_motion
    from myocli.motion import metrics
    from myocli.rl.track import load_policy, track

    _, config, agent = load_policy(policy)
    rows, kinds, causes = [], [], Counter()
    for motion in motions:
        source = load_motion(motion)
        fps = source.fps or DEFAULT_FPS  # a .npy does not say its rate
        result = track(agent, config, source.motion, fps, motion, search=search)
        row = {"tracked": result.summary()["tracked_fraction"], "error_mm": result.mean_error_mm}
        kinds.append(motion_kind(source.motion, fps))
        print(f"{policy} on {motion} ({kinds[-1]}): tracked {row['tracked']:.0%}, {row['error_mm']:.1f} mm")
        row |= result.contact_figures(source.motion, fps)  # skating_ratio_STAGE and penetration_mm_STAGE
        for stage in ("kinematic", "simulated"):
            print(f"  {stage}: skating ratio {row[f'skating_ratio_{stage}']:.3f}, penetration {row[f'penetration_mm_{stage}']:.1f} mm")
        for stage, m in (("kinematic", np.asarray(source.motion)[: len(result.positions)]), ("simulated", result.positions)):
            row[f"root_speed_{stage}"] = root_speed(m, fps)
        print(f"  root speed {row['root_speed_kinematic']:.2f} -> {row['root_speed_simulated']:.2f} m/s")
        row["skating_ratio_asked"] = metrics.foot_skating_ratio(result.asked[: len(result.positions)], fps)
        print(f"  the humanoid's pose of the input, which the policy follows: skating ratio {row['skating_ratio_asked']:.3f}")
        rows.append(row)
        causes.update(skating_causes(source.motion, result.positions, fps))
    print("simulated toe-steps that skate, by what the input's toe did:", dict(causes))
    if len(rows) > 1:
        for kind in ("all", "walk", "standing", "down"):
            chosen = [row for row, k in zip(rows, kinds, strict=True) if kind in ("all", k)]
            if chosen:
                print_means(f"{kind} ({len(chosen)})", chosen)
        # Does the body go at its input's pace? (A controller with one gait speed scores about 0.)
        input_speed, simulated_speed = ([row[f"root_speed_{stage}"] for row in rows] for stage in ("kinematic", "simulated"))
        print(f"correlation of the simulated root speed with the input's, across motions: {np.corrcoef(input_speed, simulated_speed)[0, 1]:.2f}")


def print_means(label: str, rows: list[dict[str, float]]) -> None:
    """One line of means over `rows` (simulated_motions' figures per motion, one dict each)."""
    import numpy as np

    mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    # The motions pair up (each input with its own simulation): the spread of the differences says
    # whether the two means differ by more than the choice of motions does.
    change = np.array([row["skating_ratio_simulated"] - row["skating_ratio_kinematic"] for row in rows])
    lower, higher = int((change < 0).sum()), int((change > 0).sum())
    spread = change.std(ddof=1) / np.sqrt(len(change)) if len(change) > 1 else float("nan")
    print(f"mean of {label}: tracked {mean['tracked']:.0%}, {mean['error_mm']:.1f} mm; "
          f"skating {mean['skating_ratio_kinematic']:.3f} -> {mean['skating_ratio_simulated']:.3f} "
          f"(lower in {lower}, higher in {higher}; change {change.mean():+.3f} +- {spread:.3f} standard error); "
          f"penetration {mean['penetration_mm_kinematic']:.1f} -> {mean['penetration_mm_simulated']:.1f} mm; "
          f"root speed {mean['root_speed_kinematic']:.2f} -> {mean['root_speed_simulated']:.2f} m/s; "
          f"the pose followed skates {mean['skating_ratio_asked']:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--tokenizers", nargs="+", default=[])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--policy")
    parser.add_argument("--motion", nargs="+", help="motions (.npy, FILE.h5:INDEX or FILE.h5:NAME) for --policy or --kinds")
    parser.add_argument("--kinds", action="store_true", help="print each motion's kind (walk, standing, down)")
    parser.add_argument("--search", type=int, default=1, help="copies tried every 0.1 s around the policy (myo rl eval --search)")
    args = parser.parse_args()
    if not args.tokenizers and not args.policy and not args.kinds:
        parser.error("give --tokenizers (with --data), --policy or --kinds (with --motion)")
    if args.tokenizers and not args.data:
        parser.error("--tokenizers needs --data")
    if (args.policy or args.kinds) and not args.motion:
        parser.error("--policy and --kinds need --motion")
    if args.search < 1:
        parser.error("--search must be 1 or more (1: the policy alone)")
    from myocli.errors import MyoError

    try:
        if args.tokenizers:
            tokenizer_reconstructions(args.data, args.tokenizers, args.clips)
        if args.kinds:
            print_kinds(args.motion)
        if args.policy:
            simulated_motions(args.policy, args.motion, args.search)
    except MyoError as exc:  # bad input: one line, as the myo commands give it
        parser.exit(1, f"Error: {exc}\n")


if __name__ == "__main__":
    main()

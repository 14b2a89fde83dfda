"""`myo rl`: train a PPO controller that makes the simulated myo28 humanoid track motions, and evaluate it."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from myocli.cli import training as t
from myocli.cli.numbers import MAX_FPS, SEED_MAX, number


class Environment(str, Enum):
    tracking = "tracking"
    humanoid_v5 = "humanoid-v5"


app = typer.Typer(
    help="Physics: a PPO controller that makes the simulated myo28 humanoid (MuJoCo) follow motions.\n\n"
    "Example: myo rl train --data datasets/cmu_walk.h5 --clip 02_01 --name walker && myo rl eval rl/walker --motion datasets/cmu_walk.h5:0 --mp4 walk_sim.mp4",
    no_args_is_help=True,
)


@app.command()
def train(
    name: str = typer.Option(..., "--name", callback=t.check_name, help="Registry name: the policy becomes rl/NAME@<next version>."),
    data: Path | None = typer.Option(None, "--data", help="Clips to track (myo28 .h5 from `myo data convert`)."),
    clip: list[str] = typer.Option([], "--clip", help="Track only this sequence of --data (by name; repeat for several). Default: every clip."),
    env: Environment = typer.Option(Environment.tracking, "--env", help="tracking (the myo28 humanoid following --data), or humanoid-v5 (Gymnasium's Humanoid, to compare with published PPO)."),
    config: str | None = typer.Option(None, "--config", help="Preset (tracking; generated: for generated motions, following pose rather than place and rewarding planted feet; humanoid-v5) or a YAML file with model: and train: sections (default: the preset named after --env)."),
    init: str | None = typer.Option(None, "--init", help="Start from this tracking policy's weights and observation statistics (rl/NAME, or rl/NAME@VERSION), e.g. to train a walker longer at a lower --lr, or to carry a policy over to a changed humanoid (same hinges)."),
    num_envs: int | None = number(None, "--num-envs", low=1, help="Simulated copies stepped together (default: the config's)."),
    total_steps: int | None = number(None, "--total-steps", low=1, help="Environment steps over all copies (default: the config's)."),
    lr: t.LearningRate = None,
    seed: t.Seed = None,
    max_minutes: t.MaxMinutes = None,
    save_every: int = number(20, "--save-every", low=1, help="Save the training state every N PPO iterations."),
    log_every: int = number(1, "--log-every", low=1, help="Print a progress line every N iterations when stderr is not a terminal."),
    resume: t.Resume = False,
    debug: t.Debug = False,
    keep_state: t.KeepState = False,
    as_json: t.AsJson = False,
) -> None:
    """Train a PPO controller and register it as rl/NAME.

    Example: myo rl train --data datasets/cmu_walk.h5 --clip 02_01 --name walker --total-steps 6000000
    """
    from myocli.rl.train import RLRun, preflight, train_rl

    if config is not None:
        t.config_callback("rl")(config)
    overrides = {k: v for k, v in {"num_envs": num_envs, "total_steps": total_steps, "learning_rate": lr, "seed": seed}.items() if v is not None}
    run = RLRun(name=name, data=data, clips=clip, env=env.value, config=config, init=init, train_overrides=overrides, max_minutes=max_minutes or 0.0,
                save_every=save_every, log_every=log_every, resume=resume, keep_state=keep_state, debug=debug)  # fmt: skip

    def describe(summary):
        yield f"  trained for {summary['seconds'] / 60:.1f} min"
        if tracking := summary["metrics"].get("tracking"):
            yield (f"  tracked {100 * tracking['mean_tracked_fraction']:.0f}% of each clip on average, "
                   f"mean joint error {tracking['mean_joint_error_mm']:.1f} mm")  # fmt: skip
        else:
            yield f"  episodic return {summary['metrics']['train'].get('charts/episodic_return', float('nan')):.1f}"

    # PPO steps its simulations in one process: the Accelerate options (--gpus, precision, batch size,
    # gradient accumulation) do not apply, so this command declares the shared options it takes one by one.
    t.run_trainer({"as_json": as_json}, run, preflight, train_rl, describe)


@app.command("eval")
def evaluate(
    policy: str = typer.Argument(..., help="Policy: rl/NAME, rl/NAME@VERSION, or a checkpoint folder."),
    motion: str = typer.Option(..., "--motion", help="Motion to track: a .npy (T, 28, 3), or FILE.h5:INDEX or FILE.h5:NAME (a sequence by its name)."),
    mp4: Path | None = typer.Option(None, "--mp4", help="Also render the simulated motion (beside the reference) to this .mp4."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also save the simulated motion as a .npy."),
    fps: float | None = number(None, "--fps", low=1, high=MAX_FPS, help="Frame rate of a .npy motion (default 20; an .h5 says its own)."),
    search: int = number(1, "--search", low=1, high=1024, help="Every 0.1 s, try this many copies of the body around the policy's actions and keep the one its reward and critic rate best (1: the policy alone, which measures the policy; `myo generate --physics` uses 32 for a controller trained with a skating penalty)."),
    seed: int = number(0, "--seed", low=0, high=SEED_MAX, help="Random seed of the --search noise (with --search above 1)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document: tracking error per joint, time before falling, floor contact by both engines."),
) -> None:
    """Track a motion with a trained policy: per-joint error, time before falling, and how deep the body's shapes (capsules, box soles) sink into the floor (by MuJoCo and, as a cross-check, PyBullet).

    Example: myo rl eval rl/walker --motion datasets/cmu_walk.h5:0 --json
    """
    from myocli.cli.outputs import check_not_inputs, check_outputs
    from myocli.data.motion_input import load_motion, parse_spec
    from myocli.rl.track import load_policy, track

    outputs = [p for p in (mp4, output) if p is not None]
    check_not_inputs(outputs, [parse_spec(motion)[0]], "--mp4/-o")
    if mp4 is not None:
        check_outputs([mp4], overwrite, option="--mp4", suffixes=(".mp4",), contents="a video")
    if output is not None:
        check_outputs([output], overwrite, option="-o", suffixes=(".npy",), contents="the simulated motion")
    source = load_motion(motion)
    ref, config, agent = load_policy(policy)
    rate = source.fps or fps or 20.0
    result = track(agent, config, source.motion, rate, source.caption, search=search, seed=seed)
    _write(result, source.motion, rate, output, mp4, source.caption)
    summary = {"policy": ref.label, "motion": motion, "search": search, "seed": seed} | result.summary() | {"floor_contact": result.floor_contact()}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    state = f"fell after {result.fell_at:.2f} s" if result.fell_at is not None else "stayed up to the end"
    if search > 1:
        state += f" (the best of {search} copies every 0.1 s)"
    slid = ", the reference following the body along the floor" if result.followed_root else ""
    typer.echo(f"{motion}: {result.seconds:.2f} s, {state}; mean joint error {result.mean_error_mm:.1f} mm{slid} "
               f"(the humanoid's own pose of the reference: {summary['kinematic_floor_mm']:.1f} mm)")  # fmt: skip
    worst = sorted(summary["joint_error_mm"].items(), key=lambda kv: -kv[1])[:5]
    typer.echo("  worst joints: " + ", ".join(f"{name} {mm:.0f} mm" for name, mm in worst))
    contact = summary["floor_contact"]
    typer.echo(f"  body shapes below the floor: {contact['mujoco_penetration_mm']:.2f} mm by MuJoCo, {contact['pybullet_penetration_mm']:.2f} mm "
               f"by PyBullet (frames and bodies touching agree {100 * contact['touching_agreement']:.0f}%)")  # fmt: skip
    for path in outputs:
        typer.echo(f"  wrote {path}")


def _write(result, reference, fps: float, output: Path | None, mp4: Path | None, caption: str) -> None:
    from myocli.cli.outputs import save_motion

    if output is not None:
        save_motion(output, result.positions)
    if mp4 is not None:
        from myocli.render.api import render_motion

        render_motion([reference, result.positions], mp4, fps=fps, captions=[f"reference: {caption}", "simulated"])

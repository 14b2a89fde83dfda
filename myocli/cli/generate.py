"""`myo generate`: text -> motion, and motion -> text, continuation and in-betweening, from a trained model.

A language model (lm/NAME, myocli/lm/engine.py) does all four tasks; a state-space generator
(ssm/NAME, myocli/ssm/engine.py) does text-to-motion, with the same outputs.

Each motion sample is written as STEM_I.npy, (T, 28, 3) float32 metres at the model's
frame rate, with STEM_I.json beside it (prompt, task, model, seed, fps, ...), and
STEM_I.mp4 with --mp4. Sample I is drawn with seed + I, so it does not depend on
--num-samples. Motion-to-text prints one line of text per sample.

Numbers are checked as the options are read (cli/numbers.py), before any model loads. A model
makes lengths in whole steps (0.2 s for both kinds at 20 fps): --seconds below one step is a
usage error naming the shortest; one between two steps is rounded to the nearest, with a note on
stderr saying to what.

This module reads the options and prints; the work (loading, drawing, writing) is in
cli/generation.py, which `myo demo`'s page calls too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from myocli.cli import generation
from myocli.cli.generation import Request, Sampling, Task
from myocli.cli.numbers import SEED_MAX, number
from myocli.cli.outputs import check_outputs, check_stem
from myocli.errors import OptionError
from myocli.lm.sampling import DEFAULT_REFINE_STEPS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from myocli.rl import replay


def generate(
    prompt: str | None = typer.Argument(None, help="What the motion shows (text-to-motion), e.g. \"a person does one squat\"."),
    task: Task = typer.Option(Task.t2m, "--task", help="t2m (text -> motion), m2t (motion -> text), predict (continue --motion), inbetween (refill the middle of --motion)."),
    motion: str | None = typer.Option(None, "--motion", help="Input motion of m2t, predict and inbetween: a .npy (T, 28, 3) at the model's frame rate, or FILE.h5:INDEX or FILE.h5:NAME."),
    model: str | None = typer.Option(None, "--model", help="lm/NAME or ssm/NAME (a language model or a state-space generator), optionally @VERSION, or a checkpoint folder (default: your newest language model, instruction-tuned first, else your newest state-space generator, else the built-in ssm/myo-base)."),
    output: str | None = typer.Option(None, "--output", "-o", help="Path stem of the outputs: STEM_0.npy, STEM_0.json, ... (default: from the prompt or the input, in the current folder)."),
    num_samples: int = number(1, "--num-samples", "-n", low=1, high=1000, help="Samples to draw; sample I uses seed + I."),
    seed: int = number(0, "--seed", low=0, high=SEED_MAX, help="Random seed of sample 0."),
    seconds: float | None = number(None, "--seconds", above=0, help="Length of the motion (t2m), of the continuation (predict) or of the middle (inbetween); default: the model decides (inbetween: as long as the original middle). Models make lengths in steps (0.2 s for the built-in): a length between two is rounded to the nearest, with a note on stderr; one below the shortest is refused."),
    temperature: float = number(DEFAULT_TEMPERATURE, "--temperature", low=0, help="Language models: sampling temperature; 0 is greedy decoding, higher gives more varied (and more often wrong) motions."),
    top_k: int = number(0, "--top-k", low=0, help="Language models: sample among the k likeliest tokens (0: all)."),
    top_p: float = number(DEFAULT_TOP_P, "--top-p", above=0, high=1, help="Language models: sample among the likeliest tokens holding this much probability (1: all)."),
    guidance: float | None = number(None, "--guidance", low=0, help="SSM models: classifier-free guidance scale (default: the model's; 1 is none, higher follows the text more closely)."),
    steps: int | None = number(None, "--steps", low=1, high=1000, help="SSM models: flow integration steps (default: the model's; more is slower and smoother)."),
    refine_steps: int | None = number(None, "--refine-steps", low=0, high=1000, help=f"Gradient steps of physics refinement of each motion, which stop feet sliding on the floor and keep joints above it (default: {DEFAULT_REFINE_STEPS}, unless an SSM model's config says otherwise; 0 turns it off)."),
    mp4: bool = typer.Option(False, "--mp4", help="Also render each motion sample to STEM_I.mp4 beside its .npy."),
    physics: str | None = typer.Option(None, "--physics", help="Replay each motion in the physics simulator under a tracking policy (rl/NAME) and write the simulated motion beside it as STEM_I_physics.npy (and .mp4 with --mp4); foot skating and penetration are given for both motions over the frames simulated (up to a fall)."),
    physics_search: int | None = number(None, "--physics-search", low=1, high=1024, help=f"With --physics: every 0.1 s, try this many copies of the body around the policy's actions and keep the one the policy's own reward and critic rate best (1: the policy alone, faster). Default: {replay.DEFAULT_PHYSICS_SEARCH} for a controller trained with a skating penalty (`--config generated`; on 77 generated walks it skated about 40% less than 1), else 1. The noise is drawn from each sample's seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document with the output paths and metadata (the text, for m2t)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Generate motion from text with a trained language model or SSM generator (or, with a language model,
    text from motion, a continuation, an in-between).

    Example: myo generate "a person does one squat" --seconds 3 --num-samples 2 --mp4
    """
    try:
        generation.check_options(prompt, task, motion, seconds, output, mp4)
        if physics is not None and task == Task.m2t:
            raise OptionError("motion-to-text makes no motion to simulate", "--physics")
        if physics_search is not None and physics is None:
            raise OptionError("applies to the physics replay; add --physics rl/NAME", "--physics-search")
        stem = _stem(output, prompt, task, motion)
        _check_files(stem, task, motion, num_samples, mp4, bool(physics), overwrite)  # before any model loads
        model, note = (model, "") if model else generation.default_model(task)
        request = Request(task, prompt, motion, None, seconds, num_samples, seed, Sampling(temperature, top_k, top_p, guidance, steps, refine_steps))
        _run(model, request, stem, mp4, as_json, physics, physics_search, note)
    except OptionError as exc:  # a value that does not fit: a usage error of its option, as Typer's own checks give
        raise typer.BadParameter(str(exc), param_hint=exc.option) from exc


def _run(model: str, request: Request, stem: Path, mp4: bool, as_json: bool, physics: str | None, physics_search: int | None, note: str) -> None:
    """Load, check, draw, simulate, write, report: what is wrong with the request fails before the model loads where it can."""
    from myocli.data.motion_input import load_motion

    generation.check_task(generation.kind_of(model), model, request.task, request.sampling)
    request.source = load_motion(request.motion) if request.motion else None  # a wrong file fails before the model loads
    controller = replay.load_controller(physics, physics_search)
    generator = generation.Generator.load(model)
    length_note = generator.check(request)  # within what this model makes
    sys.stderr.write(note + length_note)  # only once the model is known to fit the request
    warning = generator.known(request.prompt)[1]
    if warning:
        sys.stderr.write(f"Warning: {warning}\n")
    results, motions = generator.draw(request)
    if motions:
        simulated = replay.simulate(controller, results, motions, generator.fps)
        caption = request.prompt or f"{request.task.value}: {request.motion}"
        generation.write_all(stem, results, motions, generator.fps, mp4, caption, simulated)
    _report(results, request.task, mp4, as_json)


def _stem(output: str | None, prompt: str | None, task: Task, motion: str | None) -> Path:
    """The path stem of the outputs: -o, else one from the prompt (t2m) or the input motion and the task."""
    return Path(output) if output else Path(generation.output_stem(prompt, task, motion))


def _check_files(stem: Path, task: Task, motion: str | None, num_samples: int, mp4: bool, physics: bool, overwrite: bool) -> None:
    """Every file the samples would be written to: none the input motion, none there already
    (without --overwrite), and a stem that is not itself a file name."""
    from myocli.data.motion_input import parse_spec

    if task == Task.m2t:  # text only: nothing is written
        return
    check_stem(stem, (".npy", ".json", ".mp4"))
    files = [path for i in range(num_samples) for path in generation.sample_paths(stem, i, mp4, physics).values()]
    check_outputs(files, overwrite, inputs=[parse_spec(motion)[0]] if motion else [])


def _report(results: list[dict], task: Task, mp4: bool, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"samples": results}, indent=2) + "\n")
        return
    for record in results:
        if task == Task.m2t:
            typer.echo(record["text"])
        else:
            typer.echo(f"Wrote {record['npy']} ({record['frames']} frames, {record['seconds']:.1f} s)" + (f" and {record['mp4']}" if mp4 else ""))
            if "physics" in record:
                p = record["physics"]
                fell = "stayed up" if p["fell_at_seconds"] is None else f"fell after {p['fell_at_seconds']:.2f} s; figures up to the fall"
                typer.echo(f"  simulated {record['physics_npy']} ({fell}): skating ratio {p['skating_ratio_kinematic']:.3f} -> "
                           f"{p['skating_ratio_simulated']:.3f}, penetration {p['penetration_mm_kinematic']:.1f} -> {p['penetration_mm_simulated']:.1f} mm")  # fmt: skip

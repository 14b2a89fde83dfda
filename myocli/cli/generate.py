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
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from myocli.cli.numbers import SEED_MAX, number
from myocli.cli.outputs import check_outputs, check_stem, input_stem, prompt_stem
from myocli.errors import MyoError
from myocli.lm.sampling import DEFAULT_REFINE_STEPS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P

# Copies of the body tried every 0.1 s by --physics (myocli/rl/track.py) for a controller whose
# reward has a skating penalty (the `generated` preset). On 65 generated walks 32 skated least of 16,
# 32 and 64 (benchmarks/RESULTS.md); a 3-s walk took 0.4 s on one core on average (less when the
# body strays early: the replay stops there). A controller without the penalty replays alone: the
# search raises its own reward, and for one that does not count skating that meant chasing the
# input's sliding feet (77 generated walks under the CMU walker: skating 0.35 alone, 0.52 searched).
DEFAULT_PHYSICS_SEARCH = 32


class Task(str, Enum):
    t2m = "t2m"
    m2t = "m2t"
    predict = "predict"
    inbetween = "inbetween"


def _default_model(task: Task) -> tuple[str, str]:
    """The user's newest language model (instruction-tuned first), else (text-to-motion, which an SSM
    does too) their newest state-space generator, else the built-in default: (spec, the note that says which on stderr)."""
    from myocli import registry
    from myocli.builtin import DEFAULT_MODEL

    ref = registry.newest("lm", prefer=lambda manifest: manifest.get("config", {}).get("instruction_tuned"))
    if ref is not None:
        return str(ref.path), f"Using {ref.label} (the newest language model, instruction-tuned first; choose with --model)\n"
    if task != Task.t2m:
        raise MyoError(f"--task {task.value} needs a language model, and there is none in the registry ({registry.home()}); "
                       "train one with `myo lm pretrain`, or pass --model")  # fmt: skip
    ref = registry.newest("ssm")
    if ref is not None:
        return str(ref.path), f"Using {ref.label} (the newest state-space generator; choose with --model)\n"
    try:
        ref = registry.resolve(DEFAULT_MODEL)
    except MyoError as exc:
        raise MyoError(f"no generator in the registry ({registry.home()}) and no built-in model ({exc}); "
                       "train one with `myo lm pretrain` or `myo ssm train`, or pass --model") from exc  # fmt: skip
    return DEFAULT_MODEL, f"Using the built-in model {ref.label} (no generator of yours under {registry.home()}; choose with --model)\n"


def _check_options(prompt: str | None, task: Task, motion: str | None, seconds: float | None, output: str | None, mp4: bool) -> None:
    """How the options go together (each number's own range is checked where it is declared, cli/numbers.py)."""
    if task == Task.t2m:
        if prompt is None or not prompt.strip():
            raise typer.BadParameter('the text prompt is empty; describe the motion, e.g. myo generate "a person walks forward"', param_hint="PROMPT")
        if motion:
            raise typer.BadParameter("text-to-motion takes no motion; use --task predict, inbetween or m2t with --motion", param_hint="--motion")
    else:
        if not motion:
            raise typer.BadParameter(f"--task {task.value} needs --motion FILE (a .npy (T, 28, 3) or FILE.h5:INDEX)", param_hint="--motion")
        if prompt:
            raise typer.BadParameter(f"--task {task.value} takes no text prompt; the motion is the input", param_hint="PROMPT")
    if task == Task.m2t:
        for given, option in ((seconds is not None, "--seconds"), (output, "--output"), (mp4, "--mp4")):
            if given:
                raise typer.BadParameter(f"motion-to-text prints its text (use --json for scripts); {option} applies to motion answers", param_hint=option)


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
    physics_search: int | None = number(None, "--physics-search", low=1, high=1024, help=f"With --physics: every 0.1 s, try this many copies of the body around the policy's actions and keep the one the policy's own reward and critic rate best (1: the policy alone, faster). Default: {DEFAULT_PHYSICS_SEARCH} for a controller trained with a skating penalty (`--config generated`; on 77 generated walks it skated about 40% less than 1), else 1. The noise is drawn from each sample's seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document with the output paths and metadata (the text, for m2t)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Generate motion from text with a trained language model or SSM generator (or, with a language model,
    text from motion, a continuation, an in-between).

    Example: myo generate "a person does one squat" --seconds 3 --num-samples 2 --mp4
    """
    _check_options(prompt, task, motion, seconds, output, mp4)
    if physics is not None and task == Task.m2t:
        raise typer.BadParameter("motion-to-text makes no motion to simulate", param_hint="--physics")
    if physics_search is not None and physics is None:
        raise typer.BadParameter("applies to the physics replay; add --physics rl/NAME", param_hint="--physics-search")
    stem = _stem(output, prompt, task, motion)
    _check_files(stem, task, motion, num_samples, mp4, bool(physics), overwrite)  # before any model loads
    model, note = (model, "") if model else _default_model(task)
    if _kind_of(model) == "ssm":
        if task != Task.t2m:
            raise typer.BadParameter(f"{model} is a state-space generator, which does text-to-motion only; use a language model for --task {task.value}", param_hint="--task")
        controller = _load_controller(physics, physics_search)
        _generate_ssm(model, prompt, stem, num_samples, seed, seconds, mp4, as_json, controller,
                      guidance=guidance, steps=steps, refine_steps=refine_steps, note=note)  # fmt: skip
        return
    for value, option in ((guidance, "--guidance"), (steps, "--steps")):
        if value is not None:
            raise typer.BadParameter("applies to state-space generators (--model ssm/NAME); language models sample with --temperature, --top-k, --top-p", param_hint=option)
    from myocli.data.motion_input import load_motion
    from myocli.lm.engine import LMEngine, Sampling

    source = load_motion(motion) if motion else None  # a wrong file fails before the model loads
    controller = _load_controller(physics, physics_search)
    engine = LMEngine.load(model)
    if source is not None and source.fps is not None and abs(source.fps - engine.fps) > 1e-6:
        raise MyoError(f"{motion} is at {source.fps:g} fps but {engine.lm.ref.label} works at {engine.fps:g} fps; re-convert it with --fps {engine.fps:g}")
    if task == Task.inbetween and not engine.config.instruction_tuned:
        raise MyoError(f"{engine.lm.ref.label} was only pretrained; in-betweening needs an instruction-tuned model (`myo lm instruct`)")

    length_note = _check_length(seconds, engine.config.seconds_per_token, engine.codes_for_seconds)  # within what this model makes
    sys.stderr.write(note + length_note)  # only once the model is known to fit the request
    sampling = Sampling(temperature, top_k, top_p, seed, DEFAULT_REFINE_STEPS if refine_steps is None else refine_steps)
    results, motions = [], []
    for sample in range(num_samples):  # every sample first: a failure then leaves no outputs at all
        record = {
            "task": task.value, "prompt": prompt, "motion_input": motion, "model": engine.lm.ref.label,
            "model_sha256": engine.lm.manifest["files"]["model.safetensors"]["sha256"], "tokenizer": engine.config.tokenizer,
            "seed": seed + sample, "sample": sample, "temperature": temperature, "top_k": top_k, "top_p": top_p, "fps": engine.fps,
            **({} if task == Task.m2t else {"refine_steps": sampling.refine_steps}),
        }  # fmt: skip
        if task == Task.m2t:
            results.append(record | {"text": engine.motion_to_text(source.motion, motion, sampling, sample)})
            continue
        if task == Task.t2m:
            positions, new = engine.text_to_motion(prompt, seconds, sampling, sample), None
        else:
            answer = (engine.predict if task == Task.predict else engine.inbetween)(source.motion, motion, seconds, sampling, sample)
            positions, new = answer.motion, answer.new_frames
        record |= {"frames": len(positions), "seconds": round(len(positions) / engine.fps, 3)}
        if new is not None:
            record["generated_frames"] = [new.start, new.stop if new.stop is not None else len(positions)]
        results.append(record)
        motions.append(positions)
    if motions:
        simulated = _simulate(controller, results, motions, engine.fps)
        _write_all(stem, results, motions, engine.fps, mp4, prompt or f"{task.value}: {motion}", simulated)
    _report(results, task, mp4, as_json)


def _stem(output: str | None, prompt: str | None, task: Task, motion: str | None) -> Path:
    """The path stem of the outputs: -o, else one from the prompt (t2m) or the input motion and the
    task, distinct for different prompts and for different sequences of one file."""
    if output:
        return Path(output)
    return Path(prompt_stem(prompt) if task == Task.t2m else f"{input_stem(motion)}_{task.value}")


def _check_files(stem: Path, task: Task, motion: str | None, num_samples: int, mp4: bool, physics: bool, overwrite: bool) -> None:
    """Every file the samples would be written to: none the input motion, none there already
    (without --overwrite), and a stem that is not itself a file name."""
    from myocli.data.motion_input import parse_spec

    if task == Task.m2t:  # text only: nothing is written
        return
    check_stem(stem, (".npy", ".json", ".mp4"))
    files = [path for i in range(num_samples) for path in _sample_paths(stem, i, mp4, physics).values()]
    check_outputs(files, overwrite, inputs=[parse_spec(motion)[0]] if motion else [])


def _check_length(seconds: float | None, step: float, count) -> str:
    """--seconds against what the loaded model makes: whole steps of `step` seconds (0.2 s for the SSM's
    patches and the LM's tokens at 20 fps), counted by the engine's own `count(seconds)`, which refuses a
    length beyond the model's longest. One below a single step is a usage error naming the shortest; one
    between two steps is rounded to the nearest, and the returned note (for stderr) says so: the
    motion will not last what was asked."""
    if seconds is None:
        return ""
    if seconds < step - 1e-9:
        raise typer.BadParameter(f"{seconds:g}: the shortest motion this model makes is {step:g} s (it makes lengths in steps of {step:g} s)",
                                 param_hint="--seconds")  # fmt: skip
    made = count(seconds) * step
    if abs(made - seconds) < 1e-6:
        return ""
    return f"Note: --seconds {seconds:g} rounded to {made:g} s (this model makes lengths in steps of {step:g} s)\n"


def _kind_of(spec: str) -> str:
    from myocli import registry

    return registry.resolve(spec).kind


def _generate_ssm(spec: str, prompt: str, stem: Path, num_samples: int, seed: int, seconds: float | None,
                  mp4: bool, as_json: bool, controller, guidance: float | None, steps: int | None, refine_steps: int | None,
                  note: str = "") -> None:  # fmt: skip
    """guidance, steps, refine_steps: the SSM's sampling options, each None for the model's own."""
    from myocli.ssm.engine import SSMEngine

    engine = SSMEngine.load(spec)
    length_note = _check_length(seconds, engine.config.patch_frames / engine.fps, engine.patches_for_seconds)  # within what this model makes
    sys.stderr.write(note + length_note)  # only once the model is known to fit the request
    known = _known_check(engine, prompt)
    results, motions = [], []
    for sample in range(num_samples):  # every sample first: a failure then leaves no outputs at all
        positions = engine.text_to_motion(prompt, seconds, seed + sample, steps, guidance, refine_steps=refine_steps)
        results.append({
            "task": "t2m", "prompt": prompt, "model": engine.ref.label, "model_sha256": engine.manifest["files"]["model.safetensors"]["sha256"],
            "seed": seed + sample, "sample": sample, "guidance": engine.config.guidance if guidance is None else guidance,
            "steps": steps or engine.config.sample_steps,
            "refine_steps": engine.config.refine_steps if refine_steps is None else refine_steps, "fps": engine.fps, "frames": len(positions), "seconds": round(len(positions) / engine.fps, 3),
        } | known)  # fmt: skip
        motions.append(positions)
    simulated = _simulate(controller, results, motions, engine.fps)
    _write_all(stem, results, motions, engine.fps, mp4, prompt, simulated)
    _report(results, Task.t2m, mp4, as_json)


def _known_check(engine, prompt: str) -> dict:
    """Warn on stderr when the prompt is far from every motion the model knows; the JSON fields saying so."""
    from myocli.text.known import FAR_BELOW

    nearest = engine.nearest_known(prompt)
    if not nearest:
        return {}
    far = nearest[0][1] < FAR_BELOW
    if far:
        names = "; ".join(f'"{caption}" ({similarity:.2f})' for caption, similarity in nearest)
        sys.stderr.write(f"Warning: {prompt!r} is far from every motion {engine.ref.label} was trained on (similarity below {FAR_BELOW}); "
                         f"the nearest are {names}. It makes a motion all the same; `myo ckpt show {engine.ref.label}` lists what it knows.\n")  # fmt: skip
    return {"far_from_known": far, "nearest_known": [{"caption": c, "similarity": s} for c, s in nearest]}


def _load_controller(spec: str | None, search: int | None):
    """The tracking policy of --physics (ref, config, agent, copies searched), loaded before any
    generation so a bad one fails first."""
    if spec is None:
        return None
    from myocli.rl.track import load_policy

    ref, config, agent = load_policy(spec)
    return ref, config, agent, default_physics_search(config) if search is None else search


def default_physics_search(config) -> int:
    """Copies searched by --physics for a policy (its PolicyConfig) when the command does not say."""
    return DEFAULT_PHYSICS_SEARCH if config.skate_weight > 0 else 1


def _simulate(controller, records: list[dict], motions: list, fps: float) -> list | None:
    """Each motion replayed under the controller; its record gains the physics figures before and after."""
    if controller is None:
        return None
    from myocli.rl.track import track

    ref, config, agent, search = controller
    simulated = []
    for record, positions in zip(records, motions, strict=True):
        result = track(agent, config, positions, fps, f"sample {record['sample']}", search=search, seed=record["seed"])
        simulated.append(result.positions)
        summary = result.summary()
        record["physics"] = {"policy": ref.label, "search": search, "fell_at_seconds": summary["fell_at_seconds"], "mean_joint_error_mm": summary["mean_joint_error_mm"],
                             "frames": len(result.positions)} | result.contact_figures(positions, fps) \
                            | {"floor_contact_simulated": result.floor_contact()}  # fmt: skip
    return simulated


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


def _write_all(stem: Path, records: list[dict], motions: list, fps: float, mp4: bool, caption: str, simulated: list | None = None) -> None:
    """Every sample's files, or (on any failure, Ctrl-C included) none of this command's."""
    from myocli.cli.outputs import all_or_none

    physical = simulated is not None
    every = [path for record in records for path in _sample_paths(stem, record["sample"], mp4, physical).values()]
    with all_or_none(every):
        for i, (record, positions) in enumerate(zip(records, motions, strict=True)):
            physics = simulated[i] if simulated is not None else None
            record |= _write(stem, record["sample"], positions, record, fps, mp4, caption, physics)


def _write(stem: Path, sample: int, positions, record: dict, fps: float, mp4: bool, caption: str, physics=None) -> dict:
    """One sample's files: the videos first (the step most likely to fail), the JSON last."""
    from myocli.atomic import atomic_path
    from myocli.cli.outputs import save_motion

    paths = _sample_paths(stem, sample, mp4, physics is not None)
    if mp4:
        from myocli.render.api import render_motion

        render_motion(positions, paths["mp4"], fps=fps, captions=[caption])
        if physics is not None:
            render_motion(physics, paths["physics_mp4"], fps=fps, captions=[f"{caption} (simulated)"])
    for key, motion in (("npy", positions), ("physics_npy", physics)):
        if motion is not None:
            save_motion(paths[key], motion)
    names = {kind: str(path) for kind, path in paths.items()}
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps(record | names, indent=2) + "\n")
    return names


def _sample_paths(stem: Path, sample: int, mp4: bool, physics: bool = False) -> dict[str, Path]:
    paths = {suffix: Path(f"{stem}_{sample}.{suffix}") for suffix in ("npy", "json", *(("mp4",) if mp4 else ()))}
    if physics:
        paths |= {f"physics_{suffix}": Path(f"{stem}_{sample}_physics.{suffix}") for suffix in ("npy", *(("mp4",) if mp4 else ()))}
    return paths

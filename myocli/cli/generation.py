"""The work of `myo generate`, shared by the command and by `myo demo`'s page: a generator loaded once,
a request checked against it, its samples drawn (a JSON record and a motion each) and written to
STEM_I.npy/.json (and .mp4), with their physics replay (rl/replay.py) when asked.

No option parsing and no printing: a value that does not fit the model raises OptionError naming
the option (the command shows it as a usage error, the page as a message), and what the caller
should tell the user (a rounded length, a prompt far from what the model knows) is returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from myocli.cli.outputs import input_stem, prompt_stem
from myocli.errors import MyoError, OptionError
from myocli.lm.sampling import DEFAULT_REFINE_STEPS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P


class Task(str, Enum):
    t2m = "t2m"
    m2t = "m2t"
    predict = "predict"
    inbetween = "inbetween"


@dataclass
class Sampling:
    """The generator's knobs as the user gave them; None means the model's own (or the command's default)."""

    temperature: float = DEFAULT_TEMPERATURE  # language models
    top_k: int = 0
    top_p: float = DEFAULT_TOP_P
    guidance: float | None = None  # state-space generators
    steps: int | None = None
    refine_steps: int | None = None  # both


@dataclass
class Request:
    """One generate action. `motion` names the input motion in records and captions (the --motion
    spec, or an uploaded file's name); `source` is that motion, loaded."""

    task: Task
    prompt: str | None = None
    motion: str | None = None
    source: object = None  # myocli.data.motion_input.MotionInput
    seconds: float | None = None
    num_samples: int = 1
    seed: int = 0
    sampling: Sampling = field(default_factory=Sampling)


def output_stem(prompt: str | None, task: Task, motion: str | None) -> str:
    """The default path stem of the outputs: one from the prompt (t2m) or the input motion and the
    task, distinct for different prompts and for different sequences of one file."""
    return prompt_stem(prompt) if task == Task.t2m else f"{input_stem(motion)}_{Task(task).value}"


def default_model(task: Task) -> tuple[str, str]:
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


def check_options(prompt: str | None, task: Task, motion: str | None, seconds: float | None, output: str | None, mp4: bool) -> None:
    """How the options go together (each number's own range is checked where it is declared, cli/numbers.py);
    `output` and `mp4`: whether -o and --mp4 were given."""
    if task == Task.t2m:
        if prompt is None or not prompt.strip():
            raise OptionError('the text prompt is empty; describe the motion, e.g. myo generate "a person walks forward"', "PROMPT")
        if motion:
            raise OptionError("text-to-motion takes no motion; use --task predict, inbetween or m2t with --motion", "--motion")
    else:
        if not motion:
            raise OptionError(f"--task {task.value} needs --motion FILE (a .npy (T, 28, 3) or FILE.h5:INDEX)", "--motion")
        if prompt:
            raise OptionError(f"--task {task.value} takes no text prompt; the motion is the input", "PROMPT")
    if task == Task.m2t:
        for given, option in ((seconds is not None, "--seconds"), (output, "--output"), (mp4, "--mp4")):
            if given:
                raise OptionError(f"motion-to-text prints its text (use --json for scripts); {option} applies to motion answers", option)


def kind_of(spec: str) -> str:
    from myocli import registry

    return registry.resolve(spec).kind


def check_task(kind: str, spec: str, task: Task, sampling: Sampling) -> None:
    """What a kind of model cannot be asked, refused before it loads."""
    if kind == "ssm":
        if task != Task.t2m:
            raise OptionError(f"{spec} is a state-space generator, which does text-to-motion only; use a language model for --task {Task(task).value}", "--task")
        return
    for value, option in ((sampling.guidance, "--guidance"), (sampling.steps, "--steps")):
        if value is not None:
            raise OptionError("applies to state-space generators (--model ssm/NAME); language models sample with --temperature, --top-k, --top-p", option)


def tasks_of(kind: str, instruction_tuned: bool) -> tuple[Task, ...]:
    """The tasks a model does: a state-space generator text-to-motion only; a language model all four,
    in-betweening only once instruction-tuned."""
    if kind == "ssm":
        return (Task.t2m,)
    return (Task.t2m, Task.m2t, Task.predict, *((Task.inbetween,) if instruction_tuned else ()))


class Generator:
    """A language model (lm/NAME) or a state-space generator (ssm/NAME), loaded once, behind the calls
    both front ends make."""

    def __init__(self, kind: str, engine):
        self.kind, self.engine = kind, engine

    @classmethod
    def load(cls, spec: str) -> Generator:
        if kind_of(spec) == "ssm":
            from myocli.ssm.engine import SSMEngine

            return cls("ssm", SSMEngine.load(spec))
        from myocli.lm.engine import LMEngine

        return cls("lm", LMEngine.load(spec))

    @property
    def label(self) -> str:
        return (self.engine.ref if self.kind == "ssm" else self.engine.lm.ref).label

    @property
    def fps(self) -> float:
        return self.engine.fps

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tasks_of(self.kind, self.kind == "lm" and bool(self.engine.config.instruction_tuned))

    @property
    def step_seconds(self) -> float:
        """The length of one step of what the model makes (0.2 s for the built-in)."""
        config = self.engine.config
        return config.patch_frames / self.fps if self.kind == "ssm" else config.seconds_per_token

    @property
    def longest_seconds(self) -> float:
        config = self.engine.config
        return config.max_frames / self.fps if self.kind == "ssm" else config.max_motion_tokens * config.seconds_per_token

    def check(self, request: Request) -> str:
        """A request against the loaded model: its input motion and length. Returns the note on a rounded
        length ("" for none)."""
        source = request.source
        if source is not None and source.fps is not None and abs(source.fps - self.fps) > 1e-6:
            raise MyoError(f"{request.motion} is at {source.fps:g} fps but {self.label} works at {self.fps:g} fps; re-convert it with --fps {self.fps:g}")
        if request.task == Task.inbetween and Task.inbetween not in self.tasks:
            raise MyoError(f"{self.label} was only pretrained; in-betweening needs an instruction-tuned model (`myo lm instruct`)")
        count = self.engine.patches_for_seconds if self.kind == "ssm" else self.engine.codes_for_seconds
        return check_length(request.seconds, self.step_seconds, count)

    def known(self, prompt: str | None) -> tuple[dict, str | None]:
        """The prompt against the motions the model was trained on: the record's fields saying how near
        it is, and a warning when it is far from all of them (None otherwise, or when the model cannot tell)."""
        from myocli.text.known import FAR_BELOW

        nearest = self.engine.nearest_known(prompt) if self.kind == "ssm" and prompt else []
        if not nearest:
            return {}, None
        far = nearest[0][1] < FAR_BELOW
        warning = None
        if far:
            names = "; ".join(f'"{caption}" ({similarity:.2f})' for caption, similarity in nearest)
            warning = (f"{prompt!r} is far from every motion {self.label} was trained on (similarity below {FAR_BELOW}); "
                       f"the nearest are {names}. It makes a motion all the same; `myo ckpt show {self.label}` lists what it knows.")  # fmt: skip
        return {"far_from_known": far, "nearest_known": [{"caption": c, "similarity": s} for c, s in nearest]}, warning

    def draw(self, request: Request) -> tuple[list[dict], list]:
        """Every sample of the request: (records, motions); a motion-to-text request has text in its records
        and no motions. Sample I uses seed + I."""
        if self.kind == "ssm":
            return self._draw_ssm(request)
        return self._draw_lm(request)

    def _draw_ssm(self, request: Request) -> tuple[list[dict], list]:
        engine, s = self.engine, request.sampling
        known = self.known(request.prompt)[0]
        records, motions = [], []
        for sample in range(request.num_samples):  # every sample first: a failure then leaves no outputs at all
            seed = request.seed + sample
            positions = engine.text_to_motion(request.prompt, request.seconds, seed, s.steps, s.guidance, refine_steps=s.refine_steps)
            records.append({
                "task": "t2m", "prompt": request.prompt, "model": engine.ref.label, "model_sha256": engine.manifest["files"]["model.safetensors"]["sha256"],
                "seed": seed, "sample": sample, "guidance": engine.config.guidance if s.guidance is None else s.guidance,
                "steps": s.steps or engine.config.sample_steps,
                "refine_steps": engine.config.refine_steps if s.refine_steps is None else s.refine_steps, "fps": engine.fps, "frames": len(positions), "seconds": round(len(positions) / engine.fps, 3),
            } | known)  # fmt: skip
            motions.append(positions)
        return records, motions

    def _draw_lm(self, request: Request) -> tuple[list[dict], list]:
        from myocli.lm.engine import Sampling as LMSampling

        engine, s, task = self.engine, request.sampling, Task(request.task)
        sampling = LMSampling(s.temperature, s.top_k, s.top_p, request.seed, DEFAULT_REFINE_STEPS if s.refine_steps is None else s.refine_steps)
        source, motion = request.source, request.motion
        records, motions = [], []
        for sample in range(request.num_samples):  # every sample first: a failure then leaves no outputs at all
            record = {
                "task": task.value, "prompt": request.prompt, "motion_input": motion, "model": engine.lm.ref.label,
                "model_sha256": engine.lm.manifest["files"]["model.safetensors"]["sha256"], "tokenizer": engine.config.tokenizer,
                "seed": request.seed + sample, "sample": sample, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "fps": engine.fps,
                **({} if task == Task.m2t else {"refine_steps": sampling.refine_steps}),
            }  # fmt: skip
            if task == Task.m2t:
                records.append(record | {"text": engine.motion_to_text(source.motion, motion, sampling, sample)})
                continue
            if task == Task.t2m:
                positions, new = engine.text_to_motion(request.prompt, request.seconds, sampling, sample), None
            else:
                answer = (engine.predict if task == Task.predict else engine.inbetween)(source.motion, motion, request.seconds, sampling, sample)
                positions, new = answer.motion, answer.new_frames
            record |= {"frames": len(positions), "seconds": round(len(positions) / engine.fps, 3)}
            if new is not None:
                record["generated_frames"] = [new.start, new.stop if new.stop is not None else len(positions)]
            records.append(record)
            motions.append(positions)
        return records, motions


def check_length(seconds: float | None, step: float, count) -> str:
    """A length against what the loaded model makes: whole steps of `step` seconds (0.2 s for the SSM's
    patches and the LM's tokens at 20 fps), counted by the engine's own `count(seconds)`, which refuses a
    length beyond the model's longest. One below a single step is refused naming the shortest; one
    between two steps is rounded to the nearest, and the returned note (for stderr) says so: the
    motion will not last what was asked."""
    if seconds is None:
        return ""
    if seconds < step - 1e-9:
        raise OptionError(f"{seconds:g}: the shortest motion this model makes is {step:g} s (it makes lengths in steps of {step:g} s)", "--seconds")
    made = count(seconds) * step
    if abs(made - seconds) < 1e-6:
        return ""
    return f"Note: --seconds {seconds:g} rounded to {made:g} s (this model makes lengths in steps of {step:g} s)\n"


def write_all(stem: Path, records: list[dict], motions: list, fps: float, mp4: bool, caption: str, simulated: list | None = None) -> None:
    """Every sample's files, or (on any failure, Ctrl-C included) none of this command's. Each record
    gains the paths of its files."""
    from myocli.cli.outputs import all_or_none

    physical = simulated is not None
    every = [path for record in records for path in sample_paths(stem, record["sample"], mp4, physical).values()]
    with all_or_none(every):
        for i, (record, positions) in enumerate(zip(records, motions, strict=True)):
            physics = simulated[i] if simulated is not None else None
            record |= _write(stem, record["sample"], positions, record, fps, mp4, caption, physics)


def _write(stem: Path, sample: int, positions, record: dict, fps: float, mp4: bool, caption: str, physics=None) -> dict:
    """One sample's files: the videos first (the step most likely to fail), the JSON last."""
    from myocli.atomic import atomic_path
    from myocli.cli.outputs import save_motion

    paths = sample_paths(stem, sample, mp4, physics is not None)
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


def sample_paths(stem: Path, sample: int, mp4: bool, physics: bool = False) -> dict[str, Path]:
    paths = {suffix: Path(f"{stem}_{sample}.{suffix}") for suffix in ("npy", "json", *(("mp4",) if mp4 else ()))}
    if physics:
        paths |= {f"physics_{suffix}": Path(f"{stem}_{sample}_physics.{suffix}") for suffix in ("npy", *(("mp4",) if mp4 else ()))}
    return paths

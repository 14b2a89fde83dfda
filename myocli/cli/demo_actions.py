"""What `myo demo`'s page does, as plain functions of plain values (no Gradio here, so pytest can call them;
cli/demo_page.py lays them out).

The model is loaded once (`Demo.load`). Each action checks its inputs with the checks and messages of
`myo generate` (cli/generation.py, the options' ranges in cli/generate.py), draws through the same
Generator, and writes the same STEM_I.npy/.json/.mp4 files into a folder of its own under the demo's
work folder, plus a .bvh of each motion (as `myo export --bvh` writes it). Several samples are shown
as one video, side by side (as `myo render A B -o V.mp4` makes it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from myocli.cli import generation
from myocli.cli.generation import Generator, Request, Sampling, Task
from myocli.cli.numbers import check_option
from myocli.errors import MyoError, OptionError
from myocli.rl import replay

# Samples side by side in one video: more panels get too narrow to watch (`myo generate -n` has no such limit).
MAX_SAMPLES = 4
# The size of each panel when several share a video; one sample is rendered as `myo generate --mp4` renders it.
PANEL = (480, 360)
# Uploads the page reads: a myo28 .npy as `myo generate --motion` takes it, or a BVH converted as `myo data convert` does.
UPLOAD_SUFFIXES = (".npy", ".bvh")
# What the "From a motion" tab offers besides the model's own tasks: render and export, which every model allows.
WATCH = "watch"

EXAMPLES = [
    "a person walks forward",
    "someone jogs in a circle to the left",
    "a person does one squat",
    "a gymnast does a cartwheel",
    "a person jumps forward on both feet",
    "a person waves with the right hand",
]


@dataclass
class Result:
    """What the page shows after an action."""

    video: Path | None = None  # the motion(s); several side by side
    physics_video: Path | None = None  # the physics replay, when asked for
    files: list[Path] = field(default_factory=list)  # downloads: .npy, .json, .bvh of each sample
    summary: str = ""  # Markdown: what was made, notes and warnings
    records: list[dict] = field(default_factory=list)


class Demo:
    """The loaded model (and physics controller, if any) and the folder each action writes into."""

    def __init__(self, generator: Generator, workdir: Path, controller=None, note: str = ""):
        self.generator, self.workdir, self.controller, self.note = generator, Path(workdir), controller, note
        self._lock = threading.Lock()  # one action at a time: the model is shared, and refinement takes gradients through it
        self._runs = 0

    @classmethod
    def load(cls, model: str | None, workdir: Path, physics: str | None = None) -> Demo:
        """`model` as `myo generate --model` takes it (None: the same default, said in `note`); `physics`
        an rl/NAME controller for the physics replay (None: none)."""
        spec, note = (model, "") if model else generation.default_model(Task.t2m)
        controller = replay.load_controller(physics, None)
        return cls(Generator.load(spec), workdir, controller, note.strip())

    # What the page says about the model.
    def abilities(self) -> dict[Task, str]:
        """Each task the "From a motion" tab could offer, with what the loaded model lacks for it ("" when it can)."""
        g = self.generator
        lacking = "a language model" if g.kind == "ssm" else "an instruction-tuned language model (`myo lm instruct`)"
        return {task: "" if task in g.tasks else lacking for task in (Task.m2t, Task.predict, Task.inbetween)}

    def description(self) -> str:
        """Markdown: the model, what it does and what it cannot, and the physics replay."""
        g = self.generator
        kind = "a state-space text-to-motion generator" if g.kind == "ssm" else "a motion language model"
        lines = [f"**Model**: `{g.label}`, {kind}; motions at {g.fps:g} fps, lengths in steps of {g.step_seconds:g} s up to "
                 f"{g.longest_seconds:g} s."]  # fmt: skip
        names = {Task.m2t: "motion-to-text", Task.predict: "prediction", Task.inbetween: "in-betweening"}
        cannot = [names[task] for task, why in self.abilities().items() if why]
        if cannot:
            lacking = next(why for why in self.abilities().values() if why)
            how = " (start `myo demo --model lm/NAME` with one trained by `myo lm pretrain`)" if g.kind == "ssm" else ""
            lines.append(f"**It cannot do** {either(cannot)} of an uploaded motion: that needs {lacking}{how}.")
        if self.controller is None:
            lines.append("**Physics replay**: off (no controller; train one with `myo rl train` and start `myo demo --physics rl/NAME`).")
        else:
            lines.append(f"**Physics replay**: under `{self.controller[0].label}`.")
        return "\n\n".join(lines)

    def defaults(self) -> Sampling:
        """The loaded model's own settings, shown on the page as the knobs' starting values."""
        from myocli.lm.sampling import DEFAULT_REFINE_STEPS

        config = self.generator.engine.config
        if self.generator.kind == "ssm":
            return Sampling(guidance=config.guidance, steps=config.sample_steps, refine_steps=config.refine_steps)
        return Sampling(refine_steps=DEFAULT_REFINE_STEPS)

    # The actions.
    def from_text(self, prompt: str | None, seconds: float | None = None, num_samples: int = 1, seed: int = 0,
                  sampling: Sampling | None = None, physics: bool = False) -> Result:  # fmt: skip
        """Text-to-motion, as `myo generate PROMPT --seconds S -n N --seed SEED --mp4 [--physics]` makes it."""
        generation.check_options(prompt, Task.t2m, None, seconds, None, True)
        request = self._request(Task.t2m, prompt, None, None, seconds, num_samples, seed, sampling)
        return self._motions(request, generation.output_stem(request.prompt, Task.t2m, None), physics)

    def from_motion(self, upload: str | Path | None, task: str = WATCH, seconds: float | None = None, num_samples: int = 1,
                    seed: int = 0, sampling: Sampling | None = None, physics: bool = False) -> Result:  # fmt: skip
        """An uploaded motion watched and exported, described (m2t), continued (predict) or with its middle
        refilled (inbetween), as `myo generate --task TASK --motion FILE` does."""
        if not upload:
            raise OptionError("no motion uploaded; give a .npy (T, 28, 3) or a .bvh file", "--motion")
        path = Path(upload)
        source = read_upload(path, self.generator.fps)
        if task == WATCH:
            return self._watch(path.name, source)
        try:
            task = Task(task)
        except ValueError as exc:
            raise OptionError(f"{task!r}: choose {WATCH}, m2t, predict or inbetween", "--task") from exc
        if task == Task.t2m:
            raise OptionError("text-to-motion takes a prompt, not a motion: use the From text tab", "--task")
        if task not in self.generator.tasks:
            raise OptionError(f"{self.generator.label} cannot do {task.value}: that needs {self.abilities()[task]}", "--task")
        generation.check_options(None, task, path.name, seconds, None, task != Task.m2t)
        if physics and task == Task.m2t:
            raise OptionError("motion-to-text makes no motion to simulate", "--physics")
        request = self._request(task, None, path.name, source, seconds, num_samples, seed, sampling)
        if task == Task.m2t:
            with self._lock:
                self.generator.check(request)
                records, _ = self.generator.draw(request)
            texts = "\n".join(f"- sample {r['sample']} (seed {r['seed']}): {_plain(r['text'])}" for r in records)
            return Result(summary=f"**What `{self.generator.label}` reads in {_plain(path.name)}**:\n\n{texts}", records=records)
        return self._motions(request, generation.output_stem(None, task, path.name), physics)

    # The steps shared by both.
    def _request(self, task: Task, prompt, motion, source, seconds, num_samples, seed, sampling) -> Request:
        """A request whose numbers pass `myo generate`'s own checks (and the page's sample limit)."""
        from myocli.cli.generate import generate as command

        sampling = sampling or self.defaults()
        numbers = {"seconds": seconds, "num_samples": _whole(num_samples, "--num-samples"), "seed": _whole(seed, "--seed"),
                   "temperature": sampling.temperature, "top_k": _whole(sampling.top_k, "--top-k"), "top_p": sampling.top_p,
                   "guidance": sampling.guidance, "steps": _whole(sampling.steps, "--steps"),
                   "refine_steps": _whole(sampling.refine_steps, "--refine-steps")}  # fmt: skip
        for name, value in numbers.items():
            check_option(command, name, value)
        if numbers["num_samples"] > MAX_SAMPLES:
            raise OptionError(f"{numbers['num_samples']}: the page shows up to {MAX_SAMPLES} samples side by side; use `myo generate -n` for more", "--num-samples")
        knobs = Sampling(numbers["temperature"], numbers["top_k"], numbers["top_p"], numbers["guidance"], numbers["steps"], numbers["refine_steps"])
        generation.check_task(self.generator.kind, self.generator.label, task, knobs)
        return Request(task, prompt, motion, source, seconds, numbers["num_samples"], numbers["seed"], knobs)

    def _motions(self, request: Request, stem_name: str, physics: bool) -> Result:
        """Draw, replay, write and render the request's motions, in a folder of this action's own."""
        if physics and self.controller is None:
            raise OptionError("no physics controller is loaded; start `myo demo --physics rl/NAME`", "--physics")
        with self._lock:
            note = self.generator.check(request).strip().removeprefix("Note: ")
            known, warning = self.generator.known(request.prompt)
            records, motions = self.generator.draw(request)
            stem = self._folder() / stem_name
            controller = self.controller if physics else None
            simulated = replay.simulate(controller, records, motions, self.generator.fps)
            caption = request.prompt or f"{request.task.value}: {request.motion}"
            one = len(motions) == 1  # one sample: `myo generate --mp4`'s own video; several: side by side
            generation.write_all(stem, records, motions, self.generator.fps, one, caption, simulated)
            video = Path(records[0]["mp4"]) if one else self._side_by_side(stem, motions, records, caption, "")
            physics_video = None
            if simulated is not None:
                physics_video = Path(records[0]["physics_mp4"]) if one else self._side_by_side(stem, simulated, records, caption, "_physics")
            files = []
            for record, positions in zip(records, motions, strict=True):
                files += [Path(record["npy"]), Path(record["json"]), _export_bvh(Path(record["npy"]).with_suffix(".bvh"), positions, self.generator.fps)]
                if "physics_npy" in record:
                    files.append(Path(record["physics_npy"]))
        return Result(video, physics_video, files, _summary(records, note, known, warning), records)

    def _watch(self, name: str, source) -> Result:
        """An uploaded motion rendered and exported: what `myo render` and `myo export --bvh` make of it."""
        from myocli.cli.outputs import all_or_none, input_stem, save_motion
        from myocli.render.api import render_motion

        fps = source.fps or self.generator.fps
        with self._lock:
            stem = self._folder() / input_stem(name)
            paths = [Path(f"{stem}{suffix}") for suffix in (".mp4", ".npy", ".bvh")]  # not with_suffix: "take.v2" keeps its ".v2"
            with all_or_none(paths):
                render_motion(source.motion, paths[0], fps=fps, captions=[name])
                save_motion(paths[1], source.motion)
                _export_bvh(paths[2], source.motion, fps)
        seconds = len(source.motion) / fps
        return Result(paths[0], None, paths[1:], f"**{_plain(name)}**: {len(source.motion)} frames at {fps:g} fps ({seconds:.1f} s).")

    def _side_by_side(self, stem: Path, motions: list, records: list[dict], caption: str, suffix: str) -> Path:
        from myocli.render.api import render_motion

        output = Path(f"{stem}_side_by_side{suffix}.mp4")
        captions = [f"{caption} (seed {record['seed']})" for record in records]
        return render_motion(motions, output, fps=self.generator.fps, size=PANEL, captions=captions)

    def _folder(self) -> Path:
        """A new folder for one action's files: names then never collide, and nothing is overwritten."""
        self._runs += 1
        folder = self.workdir / f"{self._runs:04d}"
        folder.mkdir(parents=True)
        return folder


def read_upload(path: Path, fps: float):
    """An uploaded motion as a MotionInput: a .npy read as `myo generate --motion` reads it, a .bvh converted
    at `fps` as `myo data convert` converts it. Errors name the file by the name it was uploaded with."""
    from myocli.data.motion_input import MotionInput, load_motion

    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return load_motion(str(path))
        if suffix == ".bvh":
            from myocli.data.convert import ConvertOptions, convert_file

            sequence = convert_file(path, ConvertOptions(fps=fps))[0]
            return MotionInput(sequence.motion.astype("float64"), sequence.captions[0] or path.stem, fps)
    except MyoError as exc:
        raise MyoError(str(exc).replace(str(path), path.name)) from exc  # the upload's temporary folder means nothing to the user
    raise MyoError(f"{path.name}: cannot read a {suffix or 'file without extension'}; upload a .npy (T, 28, 3) or a .bvh")


def message(exc: BaseException) -> str:
    """The line the page shows for a failure: `myo generate`'s own text after its `Error: `, a bad value
    named by its option as on the command line."""
    if isinstance(exc, OptionError):
        return f"Invalid value for {exc.option}: {exc}"
    if isinstance(exc, MyoError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (the demo's terminal shows the traceback)"


def _whole(value, option: str):
    """A whole number given as a float (web forms and API clients send 2.0): its int, or a usage error."""
    if value is None or isinstance(value, int):
        return value
    if not float(value).is_integer():
        raise OptionError(f"{value:g}: must be a whole number", option)
    return int(value)


def _export_bvh(path: Path, positions, fps: float) -> Path:
    from myocli.data.bvh_export import write_bvh

    return write_bvh(path, positions, fps)


def _summary(records: list[dict], note: str, known: dict, warning: str | None) -> str:
    """Markdown: each sample's length (and physics figures), the rounded length, the nearest known motions."""
    lines = [f"**Note**: {_plain(note)}"] if note else []
    if warning:
        lines.append(f"**Warning**: {_plain(warning)}")
    for record in records:
        line = f"- sample {record['sample']} (seed {record['seed']}): {record['frames']} frames, {record['seconds']:.1f} s"
        if "physics" in record:
            p = record["physics"]
            fell = "stayed up" if p["fell_at_seconds"] is None else f"fell after {p['fell_at_seconds']:.2f} s"
            line += (f"; simulated: {fell}, skating {p['skating_ratio_kinematic']:.3f} -> {p['skating_ratio_simulated']:.3f}, "
                     f"penetration {p['penetration_mm_kinematic']:.1f} -> {p['penetration_mm_simulated']:.1f} mm")  # fmt: skip
        lines.append(line)
    if known.get("nearest_known"):
        nearest = ", ".join(f"{_plain(n['caption'])} ({n['similarity']:.2f})" for n in known["nearest_known"])
        lines.append(f"Nearest known motions: {nearest}.")
    return "\n\n".join(lines)


def _plain(text: str) -> str:
    """Text shown as typed in Markdown: its markup characters escaped (a prompt is the user's, not the page's)."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()<>#+-.!|~" else c for c in str(text))


def either(names: list[str]) -> str:
    """["a", "b", "c"] -> "a, b or c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

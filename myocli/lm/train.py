"""Stages 2 and 3: pretrain the motion language model, then tune it on instructions, and register it.

Pretraining (`myo lm pretrain`) starts a T5 from a size preset, reading text as bytes (ByT5's
tokenizer) or through a static text encoder (`--text-encoder`, myocli/lm/static_text.py), or
from a pretrained model (`--base-model`) with its own tokenizer. It trains it on text-to-motion,
motion-to-text and prediction pairs made from a token file (`myo tokenizer encode`), with the
first, plain instruction of each task.
Instruction tuning (`myo lm instruct`) starts from a pretrained LM checkpoint and trains on
all four tasks, each phrased through the many instructions of configs/lm/instructions.json,
at the lower learning rate of the config's `instruct:` section; it keeps its parent's text side
(and copies its static text encoder, if any, into the new checkpoint).

Both read the token file's record of its tokenizer (registry label and weights sha256) and
refuse tokens made by a tokenizer the registry does not have, or by another one than the
model was trained on. The loop, resume and bookkeeping are the shared ones (train/loop.py,
train/runs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from myocli import registry
from myocli.data.h5 import require_captions
from myocli.errors import MyoError
from myocli.lm import prompts
from myocli.train import runs
from myocli.train.loop import TrainOptions

KIND = "lm"
SECTIONS = ("model", "train", "instruct")
VAL_EXAMPLES_PER_TASK = 32


@dataclass
class LMRun:
    stage: str  # "pretrain" or "instruct"
    tokens: Path
    name: str
    config: str | None = None  # preset or YAML; instruct defaults to the one its parent was pretrained with
    val_tokens: Path | None = None
    base_model: str | None = None  # pretrain: a pretrained T5 to start from
    text_encoder: str | None = None  # pretrain: a static text encoder folder to read text through
    init: str | None = None  # instruct: the pretrained LM checkpoint to start from
    resume: bool = False
    debug: bool = False
    keep_state: bool = False
    train_overrides: dict = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        return prompts.PRETRAIN_TASKS if self.stage == "pretrain" else prompts.TASKS


def _parent_lm(run: LMRun) -> tuple[registry.CheckpointRef, dict]:
    ref = registry.resolve(run.init, KIND)
    return ref, registry.read_manifest(ref.path)


def _settings(run: LMRun) -> dict:
    """Model sizes, training options and the model's origin for a new run."""
    from myocli.config import load_config
    from myocli.lm.model import LMConfig

    settings: dict = {"stage": run.stage}
    config_spec = run.config
    if run.stage == "instruct":
        parent, manifest = _parent_lm(run)
        settings["init"] = {"name": parent.label, "sha256": manifest["files"][registry.WEIGHTS]["sha256"]}
        if config_spec is None:
            config_spec = manifest.get("training", {}).get("config_source", "tiny")
            if not Path(config_spec).is_file():
                raise MyoError(f"{parent.label} was trained with the config {config_spec}, which is gone; give --config")
    config, source = load_config(KIND, config_spec or "tiny", SECTIONS)
    train = config["train" if run.stage == "pretrain" else "instruct"] | run.train_overrides
    try:
        model = LMConfig.from_dict(config["model"])
        options = TrainOptions.from_dict(train).check()
    except (MyoError, ValueError, TypeError) as exc:
        raise MyoError(f"{source}: {exc}") from exc
    if run.debug:
        options.for_debug()
    return settings | {"model": model.to_dict(), "train": options.to_dict(), "config_source": source, "base_model": run.base_model,
                       "text_encoder": run.text_encoder}  # fmt: skip


def preflight(run: LMRun) -> None:
    """Cheap checks of names, files and settings, before anything starts (or is launched)."""
    registry.check_name(run.name)
    for option, path in (("--tokens", run.tokens), ("--val-tokens", run.val_tokens)):
        if path is not None:
            runs.require_file(option, path, "myo tokenizer encode")
    if run.stage == "instruct" and (run.base_model or run.text_encoder):
        raise MyoError("--base-model and --text-encoder are for `myo lm pretrain`; instruction tuning keeps its parent's")
    if run.text_encoder:
        from myocli.text import static

        if run.base_model:
            raise MyoError("--text-encoder and --base-model: give one; a pretrained T5 reads text through its own tokenizer and embeddings")
        if not static.is_static(Path(run.text_encoder)):
            raise MyoError(f"--text-encoder {run.text_encoder}: not a static text encoder folder (encoder.json, tokenizer.json, "
                           "embeddings.safetensors; python -m myocli.text.minilm makes one), which is what the language model reads")  # fmt: skip
    if run.resume:
        runs.check_resume(KIND, run.name, run.train_overrides, {"text_encoder": run.text_encoder} if run.text_encoder else {})
    else:
        _settings(run)


def _read_tokens(path: Path, debug: bool, limit: int):
    from myocli.data.tokens import read_tokens

    tokens = read_tokens(path)
    if debug:
        tokens.tokens, tokens.captions, tokens.names, tokens.groups = (
            tokens.tokens[:limit], tokens.captions[:limit], tokens.names[:limit], tokens.groups[:limit])  # fmt: skip
    return tokens


def _tokenizer_of(tokens, where: Path) -> dict:
    """The motion tokenizer a token file was made with, checked against the registry."""
    label, sha = tokens.attrs.get("tokenizer"), tokens.attrs.get("tokenizer_sha256")
    if not label or not sha:
        raise MyoError(f"{where}: does not say which tokenizer made it; re-create it with `myo tokenizer encode`")
    try:
        manifest = registry.read_manifest(registry.resolve(str(label), "tokenizer").path)
    except MyoError as exc:
        raise MyoError(f"{where} was made with {label}, which is not in the registry ({exc}); the model needs it to turn codes into motion") from exc
    if manifest["files"][registry.WEIGHTS]["sha256"] != sha:
        raise MyoError(f"{where} was made with other weights than the registry's {label}; re-encode it with `myo tokenizer encode`")
    return {
        "tokenizer": str(label),
        "tokenizer_sha256": str(sha),
        "codebook_size": int(tokens.attrs["codebook_size"]),
        "downsample": int(tokens.attrs["downsample"]),
        "fps": float(tokens.attrs["fps"]),
    }


class PairDataset:
    """Training pairs as a pure function of their index (so a resumed run sees the same ones):
    a sequence, a task, a caption, an instruction and a crop, all drawn from rng(seed, index)."""

    def __init__(self, prompter, codes, captions, tasks, templates, max_codes: int, seconds_per_code: float, length: int, seed: int):
        self.prompter, self.codes, self.tasks, self.templates = prompter, codes, tasks, templates
        self.captions = [[c for c in caps if c.strip()] for caps in captions]
        self.max_codes, self.seconds_per_code, self.length, self.seed = max_codes, seconds_per_code, length, seed
        # Sequences that can make at least one of the tasks (long enough, captioned where the task needs text).
        self.usable = [i for i in range(len(codes)) if self._tasks_for(i)]

    def _tasks_for(self, sequence: int) -> list[str]:
        length = min(len(self.codes[sequence]), self.max_codes)
        has_text = bool(self.captions[sequence])
        return [t for t in self.tasks if length >= prompts.MINIMUM_CODES[t] and (has_text or t not in ("t2m", "m2t"))]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        rng = np.random.default_rng([self.seed, index])
        sequence = self.usable[int(rng.integers(len(self.usable)))]
        codes = self.codes[sequence]
        if len(codes) > self.max_codes:
            start = int(rng.integers(len(codes) - self.max_codes + 1))
            codes = codes[start : start + self.max_codes]
        captions = self.captions[sequence]
        tasks = self._tasks_for(sequence)
        task = tasks[int(rng.integers(len(tasks)))]
        caption = captions[int(rng.integers(len(captions)))] if captions else ""
        template = self.templates[task][int(rng.integers(len(self.templates[task])))]
        return prompts.training_example(self.prompter, task, codes, caption, template, rng, self.seconds_per_code)


def collate(batch, pad: int):
    """Pad inputs with the pad id (masked) and answers with -100 (ignored by the loss)."""
    import torch

    inputs, answers = zip(*batch, strict=True)
    width, answer_width = max(map(len, inputs)), max(map(len, answers))
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), answer_width), -100, dtype=torch.long)
    for row, (x, y) in enumerate(batch):
        input_ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad).long(), "labels": labels}


def train_lm(run: LMRun) -> dict | None:
    """Train (or resume) and register a language model; returns a summary for the CLI (None on other ranks)."""
    import torch
    from accelerate import PartialState

    preflight(run)
    tokens = _read_tokens(run.tokens, run.debug, runs.DEBUG_SEQUENCES)
    origin = _tokenizer_of(tokens, run.tokens)
    val = _read_tokens(run.val_tokens, run.debug, runs.DEBUG_SEQUENCES // 2) if run.val_tokens else None
    for option, path, token_set in (("--tokens", run.tokens, tokens), ("--val-tokens", run.val_tokens, val)):
        if token_set is not None:  # before the run exists: nothing to clean up
            require_captions(token_set.names, token_set.captions, f"{option} {path}", "language-model training")
    if val is not None and _tokenizer_of(val, run.val_tokens)["tokenizer_sha256"] != origin["tokenizer_sha256"]:
        raise MyoError(f"--val-tokens {run.val_tokens} was made with another tokenizer than --tokens {run.tokens}")
    state = PartialState(cpu=not torch.cuda.is_available())
    used = runs.trained_on({"tokens": run.tokens, "val": run.val_tokens}, run.debug, state.num_processes)
    ref, settings = runs.open_run(KIND, run.name, run.resume, lambda: _settings(run), used, run.train_overrides, state)
    with runs.removed_if_nothing_saved(ref, state):
        return _train(run, ref, settings, tokens, val, origin)


def _build(run: LMRun, settings: dict, origin: dict):
    """The model to train, its text tokenizer, vocabulary, config and static text encoder (or None), as the settings say."""
    from myocli.lm import model as lm
    from myocli.lm import static_text
    from myocli.lm.engine import load_lm
    from myocli.ssm import text as text_encoders

    if settings["stage"] == "instruct":
        parent = load_lm(settings["init"]["name"])
        if parent.manifest["files"][registry.WEIGHTS]["sha256"] != settings["init"]["sha256"]:
            raise MyoError(f"{parent.ref.label} changed since this run started; it cannot be resumed")
        if parent.config.tokenizer_sha256 != origin["tokenizer_sha256"]:
            raise MyoError(f"{run.tokens} was made with {origin['tokenizer']}, but {parent.ref.label} was trained on the codes of "
                           f"{parent.config.tokenizer}; encode the data with that tokenizer")  # fmt: skip
        parent.config.instruction_tuned = True
        return parent.model.train(), parent.text_tokenizer, parent.vocab, parent.config, parent.text_encoder
    config = lm.LMConfig.from_dict(settings["model"] | origin)
    text_encoder = text_encoders.attach(config, settings.get("text_encoder"))  # None without --text-encoder
    if settings["base_model"]:
        model, text_tokenizer, vocab = lm.from_pretrained(settings["base_model"], config)
    else:
        text_tokenizer = static_text.text_tokenizer(text_encoder) if text_encoder else lm.byte_tokenizer()
        model, vocab = lm.new_model(config, text_tokenizer, text_encoder)
    return model, text_tokenizer, vocab, config, text_encoder


def _train(run: LMRun, ref, settings: dict, tokens, val, origin: dict) -> dict | None:
    import torch
    from accelerate.utils import set_seed

    from myocli.lm import model as lm
    from myocli.ssm import text as text_encoders
    from myocli.train.accelerator import make_accelerator
    from myocli.train.loop import fit

    accelerator = make_accelerator(settings["train"]["mixed_precision"], settings["train"]["grad_accum"], log_dir=ref.path / "logs")
    options = TrainOptions.from_dict(settings["train"])
    set_seed(options.seed)
    model, text_tokenizer, vocab, config, text_encoder = _build(run, settings, origin)
    prompter = prompts.Prompter(text_tokenizer, vocab)
    templates = prompts.instructions() if settings["stage"] == "instruct" else {t: v[:1] for t, v in prompts.instructions().items()}
    first_codes = [t[:, 0] for t in tokens.tokens]  # a residual tokenizer's first codebook carries the coarse motion

    def pairs(codes, captions, tasks, length, seed):
        return PairDataset(prompter, codes, captions, tasks, templates, config.max_motion_tokens, config.seconds_per_token, length, seed)

    dataset = pairs(first_codes, tokens.captions, run.tasks, options.samples_needed(accelerator.num_processes), options.seed)
    if not dataset.usable:
        raise MyoError(f"--tokens {run.tokens}: no sequence is captioned and long enough for any of the tasks {', '.join(run.tasks)}")
    val_sets = {}
    if val is not None:
        val_codes = [t[:, 0] for t in val.tokens]
        for task in run.tasks:  # fixed pairs, one set per task
            only = pairs(val_codes, val.captions, (task,), 0, 1_000_003)
            if only.usable:
                val_sets[task] = [only[k] for k in range(VAL_EXAMPLES_PER_TASK)]

    def evaluate(unwrapped) -> dict:
        """Teacher-forced loss per task on the validation pairs, summed over ranks."""
        rank, world = accelerator.process_index, accelerator.num_processes
        sums = torch.zeros(2 * len(val_sets), device=accelerator.device, dtype=torch.float64)
        with torch.no_grad():
            for t, examples in enumerate(val_sets.values()):
                for start in range(rank * 8, len(examples), 8 * world):
                    batch = {k: v.to(accelerator.device) for k, v in collate(examples[start : start + 8], vocab.pad).items()}
                    logits = unwrapped(**batch).logits.float()
                    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=-100, reduction="sum")
                    sums[2 * t] += losses
                    sums[2 * t + 1] += (batch["labels"] != -100).sum()
        sums = accelerator.reduce(sums, "sum")
        return {f"loss_{task}": float(sums[2 * t] / sums[2 * t + 1].clamp(min=1)) for t, task in enumerate(val_sets)}

    def loss_fn(model, batch):
        loss = model(**batch).loss
        return loss, {"loss": loss}

    runs.announce(accelerator, KIND, ref, run.resume, model, settings["train"],
                  f" ({settings['stage']}, tasks {', '.join(run.tasks)}): {len(first_codes)} token sequences")
    state_dir = ref.path / registry.STATE
    result = fit(
        accelerator, model, dataset, loss_fn, options, state_dir, evaluate=evaluate if val_sets else None,
        resume=run.resume, label=ref.label, collate_fn=partial(collate, pad=vocab.pad),
    )  # fmt: skip

    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        extra = []
        if config.text_tokenizer == lm.SAVED:
            folder = ref.path / lm.TEXT_TOKENIZER_DIR
            text_tokenizer.save_pretrained(str(folder))
            extra = sorted(str(p.relative_to(ref.path)) for p in folder.rglob("*") if p.is_file())
        extra += text_encoders.save_into(text_encoder, ref)  # nothing without a static text encoder
        parents = [{"name": origin["tokenizer"], "sha256": origin["tokenizer_sha256"]}]
        registry.save(
            ref,
            config.to_dict(),
            registry.tensors_to_save(unwrapped),
            extra_files=extra,
            training=runs.training_record(settings, result, accelerator, run.debug)
            | {"stage": settings["stage"], "tasks": list(run.tasks)}
            | ({"text_encoder_source": settings["text_encoder"]} if settings.get("text_encoder") else {}),
            dataset=runs.fingerprints(settings, {"tokens": run.tokens, "val": run.val_tokens}),
            parents=parents + ([settings["init"]] if "init" in settings else []) + runs.parents(settings),
            metrics={"train": result.last_logs, "val": result.last_eval},
        )
    return runs.finish(accelerator, ref, result, run.keep_state)

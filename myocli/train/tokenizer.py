"""Stage 1: train the VQ-VAE motion tokenizer on a myo28 dataset and register it.

The run's settings (model config, training options, window, data fingerprints) are written
to run.json in the new checkpoint version as soon as it exists, so `--resume` rebuilds
exactly the same run: only --max-steps and --max-minutes may change on resume.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from myocli import registry
from myocli.errors import MyoError
from myocli.train.loop import TrainingInterrupted, TrainOptions

RUN_FILE = "run.json"
DEBUG_SEQUENCES = 8
DEBUG_STEPS = 5
RESUMABLE_OVERRIDES = ("max_steps", "max_minutes", "log_every", "eval_every", "save_every")


@dataclass
class TokenizerRun:
    data: Path
    name: str
    config: str = "tiny"
    val: Path | None = None
    resume: bool = False
    debug: bool = False
    keep_state: bool = False
    model_overrides: dict = field(default_factory=dict)
    train_overrides: dict = field(default_factory=dict)


def _settings(run: TokenizerRun) -> dict:
    """Model config, training options and window for a new run, from the config and overrides."""
    from myocli.config import load_config
    from myocli.models.vqvae import VQVAEConfig

    config, source = load_config("tokenizer", run.config)
    train = config["train"] | run.train_overrides
    window = int(train.pop("window", 64))
    try:
        model = VQVAEConfig.from_dict(config["model"] | run.model_overrides)
    except (TypeError, ValueError) as exc:
        raise MyoError(f"{source}: {exc}") from exc
    model.seed = int(train.get("seed", 0))
    options = TrainOptions.from_dict(train).check(source)
    if run.debug:
        options.max_steps = min(options.max_steps, DEBUG_STEPS)
        options.log_every = options.eval_every = options.save_every = 1
    if window < model.downsample or window % model.downsample:
        raise MyoError(f"{source}: window {window} must be a positive multiple of {model.downsample} (the downsampling)")
    return {"model": model.to_dict(), "train": options.to_dict(), "window": window, "config_source": source}


def _checkpoint_for(run: TokenizerRun, state) -> tuple[registry.CheckpointRef, dict]:
    """The version directory this run writes (new, or the one being resumed) and its settings."""
    from accelerate.utils import broadcast_object_list

    payload = [None]
    if state.is_main_process:
        try:
            if run.resume:
                ref = registry.resumable("tokenizer", registry.check_name(run.name))
                if ref is None:
                    raise MyoError(f"nothing to resume: no version of tokenizer/{run.name} has a saved training state under {registry.home()}")
                settings = json.loads((ref.path / RUN_FILE).read_text())
                extra = set(run.train_overrides) - set(RESUMABLE_OVERRIDES)
                if extra or run.model_overrides:
                    raise MyoError(f"--resume continues {ref.label} with its own settings; only --max-steps and --max-minutes can change")
                settings["train"] |= run.train_overrides
            else:
                settings = _settings(run)
                ref = registry.new_version("tokenizer", run.name)
                (ref.path / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
            payload = [(ref.kind, ref.name, ref.version, str(ref.path), settings)]
        except MyoError as exc:
            payload = [("error", str(exc))]
    if state.num_processes > 1:
        broadcast_object_list(payload)
    if payload[0][0] == "error":
        raise MyoError(payload[0][1])
    kind, name, version, path, settings = payload[0]
    return registry.CheckpointRef(kind, name, version, Path(path)), settings


def _read(path: Path, debug: bool, limit: int):
    from myocli.data.h5 import read_dataset

    dataset = read_dataset(path)
    if debug:
        dataset.sequences = dataset.sequences[:limit]
    return dataset


def train_tokenizer(run: TokenizerRun) -> dict | None:
    """Train (or resume) and register a tokenizer; returns a summary for the CLI (None on other ranks)."""
    import numpy as np
    import torch
    from accelerate import PartialState
    from accelerate.utils import set_seed

    from myocli import tokenizer as tok
    from myocli.data.windows import FeatureWindows, keep_batch
    from myocli.models.vqvae import VQVAE, VQVAEConfig
    from myocli.motion.stats import feature_stats
    from myocli.train.accelerator import make_accelerator
    from myocli.train.loop import fit

    # Read and check the data before anything is created in the registry.
    train_set = _read(run.data, run.debug, DEBUG_SEQUENCES)
    val_set = _read(run.val, run.debug, DEBUG_SEQUENCES // 2) if run.val else None
    ref, settings = _checkpoint_for(run, PartialState(cpu=not torch.cuda.is_available()))
    accelerator = make_accelerator(settings["train"]["mixed_precision"], settings["train"]["grad_accum"], log_dir=ref.path / "logs")
    options = TrainOptions.from_dict(settings["train"])
    model_config = VQVAEConfig.from_dict(settings["model"])
    model_config.fps = train_set.fps
    window = settings["window"]
    for where, dataset in ((run.data, train_set), (run.val, val_set)):
        if dataset is not None and abs(dataset.fps - train_set.fps) > 1e-6:
            raise MyoError(f"{where} is at {dataset.fps:g} fps but {run.data} at {train_set.fps:g}; convert both at one --fps")

    set_seed(options.seed)
    train_features = tok.sequence_features(train_set)
    usable = [f for f in train_features if len(f) >= model_config.downsample]
    if not usable:
        raise MyoError(f"{run.data}: no sequence has {model_config.downsample} frames or more; nothing to train on")
    mean, std = feature_stats(usable)
    model = VQVAE(model_config)
    model.set_stats(mean, std)
    normalised = [(f - mean) / std for f in usable]
    dataset = FeatureWindows(normalised, window, options.samples_needed(accelerator.num_processes), seed=options.seed)
    val_features = tok.sequence_features(val_set) if val_set else []

    def evaluate(unwrapped) -> dict:
        rank, world = accelerator.process_index, accelerator.num_processes
        with torch.no_grad():
            sums = tok.reconstruction_sums(unwrapped, val_features[rank::world])
        total = accelerator.reduce(torch.from_numpy(sums.as_array()).to(accelerator.device), "sum")
        summary = tok.ReconstructionSums.from_array(total.cpu().numpy(), len(unwrapped.quantizers), model_config.codebook_size).summary()
        return {k: v for k, v in summary.items() if isinstance(v, float)}

    def loss_fn(model, batch):
        windows, mask = batch
        _, loss, logs = model(windows, mask)
        return loss, logs

    if accelerator.is_main_process:
        accelerator.init_trackers("tokenizer", config={k: v for k, v in (settings["model"] | settings["train"]).items() if isinstance(v, int | float | str | bool)})
        verb = "Resuming" if run.resume else "Training"
        sys.stderr.write(
            f"{verb} {ref.label}: {len(usable)} sequences ({sum(map(len, usable))} frames), "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {accelerator.num_processes} process(es) on {accelerator.device}\n"
        )
    state_dir = ref.path / registry.STATE
    try:
        result = fit(
            accelerator, model, dataset, loss_fn, options, state_dir,
            evaluate=evaluate if val_features else None, resume=run.resume, label=ref.label, collate_fn=keep_batch,
        )  # fmt: skip
    except TrainingInterrupted:
        raise
    except BaseException:
        # A new run that failed before saving anything leaves no empty version behind.
        if accelerator.is_main_process and not run.resume and not state_dir.exists():
            shutil.rmtree(ref.path, ignore_errors=True)
        raise

    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        fingerprints = {"train": registry.dataset_fingerprint(run.data)}
        if run.val:
            fingerprints["val"] = registry.dataset_fingerprint(run.val)
        registry.save(
            ref,
            model_config.to_dict(),
            unwrapped.state_dict(),
            training=settings["train"] | {
                "window": window,
                "steps_done": result.steps_done,
                "stopped_early": result.stopped_early,
                "seconds": round(result.seconds, 1),
                "samples_per_second": round(result.samples_per_second, 1),
                "data_wait_fraction": round(result.data_wait_fraction, 4),
                "num_processes": accelerator.num_processes,
                "rank_weights_sha256": result.rank_digests,
                "device": str(accelerator.device),
                "config_source": settings["config_source"],
                "debug": run.debug,
                "train_sequences": len(usable),
                "train_frames": int(np.sum([len(f) for f in usable])),
            },
            dataset=fingerprints,
            parents=[],
            metrics={"train": result.last_logs, "val": result.last_eval},
        )
        if not run.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if not accelerator.is_main_process:
        return None
    return {"checkpoint": ref.label, "path": str(ref.path), "steps": result.steps_done, "val": result.last_eval, "train": result.last_logs}

"""Stage 1: train the VQ-VAE motion tokenizer on a myo28 dataset and register it.

The registry bookkeeping of a run (run.json, resume checks, new versions) is shared with
the other stages in myocli/train/runs.py; the loop in myocli/train/loop.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from myocli import registry
from myocli.errors import MyoError
from myocli.train import runs
from myocli.train.loop import TrainOptions

KIND = "tokenizer"


@dataclass
class TokenizerRun(runs.DatasetRun):
    """The tokenizer takes no options beyond those of every dataset run."""


def _settings(run: TokenizerRun) -> dict:
    """Model config, training options and window for a new run, from the config and overrides."""
    from myocli.config import load_config
    from myocli.tokenizer.model import VQVAEConfig

    config, source = load_config(KIND, run.config)
    train = config["train"] | run.train_overrides
    try:
        window = int(train.pop("window", 64))
        model = VQVAEConfig.from_dict(config["model"] | run.model_overrides)
        options = TrainOptions.from_dict(train).check()
    except (MyoError, ValueError, TypeError) as exc:
        raise MyoError(f"{source}: {exc}") from exc
    model.seed = options.seed
    if run.debug:
        options.for_debug()
    if window < model.downsample or window % model.downsample:
        raise MyoError(f"{source}: window {window} must be a positive multiple of {model.downsample} (the downsampling)")
    return {"model": model.to_dict(), "train": options.to_dict(), "window": window, "config_source": source}


def preflight(run: TokenizerRun) -> None:
    """Cheap checks of names, files and settings, before anything starts (or is launched)."""
    runs.check_inputs(run)
    if run.resume:
        runs.check_resume(KIND, run.name, run.train_overrides, run.model_overrides)
    else:
        _settings(run)


def train_tokenizer(run: TokenizerRun) -> dict | None:
    """Train (or resume) and register a tokenizer; returns a summary for the CLI (None on other ranks)."""
    from myocli.tokenizer import codec as tok

    preflight(run)
    # Read and check all the data before anything is created in the registry.
    train_set, val_set = runs.read_splits(run.data, run.val, run.debug)
    train_features = tok.sequence_features(train_set)
    ref, settings, state = runs.open_dataset_run(KIND, run, lambda: _settings(run))
    with runs.removed_if_nothing_saved(ref, state):
        return _train(run, ref, settings, train_set, train_features, val_set)


def _train(run: TokenizerRun, ref, settings: dict, train_set, train_features, val_set) -> dict | None:
    import numpy as np
    import torch
    from accelerate.utils import set_seed

    from myocli.data.windows import FeatureWindows, keep_batch
    from myocli.motion.stats import feature_stats
    from myocli.tokenizer import codec as tok
    from myocli.tokenizer.model import VQVAE, VQVAEConfig
    from myocli.train.accelerator import make_accelerator
    from myocli.train.loop import fit

    accelerator = make_accelerator(settings["train"]["mixed_precision"], settings["train"]["grad_accum"], log_dir=ref.path / "logs")
    options = TrainOptions.from_dict(settings["train"])
    model_config = VQVAEConfig.from_dict(settings["model"])
    model_config.fps = train_set.fps
    usable = [f for f in train_features if tok.can_encode(len(f), model_config.downsample)]
    if not usable:
        raise MyoError(f"{run.data}: no sequence has {model_config.downsample} frames or more; nothing to train on")

    set_seed(options.seed)
    mean, std = feature_stats(usable)
    model = VQVAE(model_config)
    model.set_stats(mean, std)
    normalised = [(f - mean) / std for f in usable]
    dataset = FeatureWindows(normalised, settings["window"], options.samples_needed(accelerator.num_processes), seed=options.seed)
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

    runs.announce(accelerator, KIND, ref, run.resume, model, settings["model"] | settings["train"],
                  f": {len(usable)} sequences ({sum(map(len, usable))} frames)")
    state_dir = ref.path / registry.STATE
    result = fit(
        accelerator, model, dataset, loss_fn, options, state_dir,
        evaluate=evaluate if val_features else None, resume=run.resume, label=ref.label, collate_fn=keep_batch,
    )  # fmt: skip

    training = {"window": settings["window"], "train_sequences": len(usable), "train_frames": int(np.sum([len(f) for f in usable]))}
    return runs.save_dataset_run(accelerator, ref, run, settings, result, model, model_config.to_dict(), training)

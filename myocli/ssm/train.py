"""Train the state-space text-to-motion generator (`myo ssm train`) and register it as ssm/NAME.

Training samples are windows of up to `max_frames` frames cut from the dataset's clips
(data/windows.CaptionedWindows), as normalised features (motion/features.py), each with
one of its clip's captions. With --latent tokenizer/NAME the windows are that tokenizer's
latents instead (one per 4 frames, myocli/ssm/latent.py), and the physics terms are those of
the motion its frozen decoder makes of them. A step draws a flow time t and noise per sample and minimises

    flow     the mean squared error of the predicted velocity (data - noise), real frames only
    length   cross-entropy of the length head against the window's length (captioned samples)
    physics  skating + penetration + floating + bone length (motion/physics_loss.py) of the
             clean motion the prediction implies, weighted by t (at small t the implied motion
             is a blur of many, and physics says little about a blur)

    loss = flow + length_weight * length + physics_weight * physics

Every term is logged on its own (TensorBoard, and the manifest), with physics_weight 0 too,
so runs with and without the physics term can be compared. The loop, resume and registry
bookkeeping are the shared ones (train/loop.py, train/runs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import registry
from myocli.errors import MyoError
from myocli.train import runs
from myocli.train.loop import TrainOptions

KIND = "ssm"
VAL_TIMES = (0.25, 0.5, 0.75)  # flow times of the validation loss (fixed, so evaluations compare)


@dataclass
class SSMRun(runs.DatasetRun):
    text_encoder: str | None = None
    latent: str | None = None  # a tokenizer (tokenizer/NAME) whose latent the flow runs over
    balance: bool = False  # draw rare motions more often (data/windows.balanced_repeats)


def _settings(run: SSMRun) -> dict:
    from myocli.config import load_config
    from myocli.motion.refine import DEFAULT_STEPS as DEFAULT_REFINE_STEPS
    from myocli.ssm.model import SSMConfig

    config, source = load_config(KIND, run.config)
    if any(key.startswith("latent_") for key in config["model"]):
        raise MyoError(f"{source}: the latent_* settings come from --latent tokenizer/NAME, not from a config file")
    latent_overrides = {}
    if run.latent:
        from myocli.ssm.latent import LatentSpace

        try:
            latent = LatentSpace.load(run.latent)
        except MyoError as exc:
            raise MyoError(f"--latent {run.latent}: {exc}") from exc
        latent_overrides = {"latent_tokenizer": latent.ref.label, "latent_tokenizer_sha256": latent.sha256,
                            "latent_dim": latent.dim, "patch_frames": latent.frames_per_latent}  # fmt: skip
    try:
        # The checkpoint records the refinement its engine will use unless told otherwise.
        defaults = {"refine_steps": DEFAULT_REFINE_STEPS}
        model = SSMConfig.from_dict(defaults | config["model"] | run.model_overrides | latent_overrides)
        options = TrainOptions.from_dict(config["train"] | run.train_overrides).check()
    except (MyoError, ValueError, TypeError) as exc:
        raise MyoError(f"{source}: {exc}") from exc
    if model.max_frames < model.patch_frames or model.max_frames % model.patch_frames:
        where = f" (the downsampling of --latent {run.latent})" if run.latent else ""
        raise MyoError(f"{source}: max_frames {model.max_frames} must be a positive multiple of patch_frames {model.patch_frames}{where}")
    if model.physics_weight < 0:
        raise MyoError(f"--physics-weight {model.physics_weight:g}: give 0 (off) or a positive weight")
    if run.debug:
        options.for_debug()
    return {"model": model.to_dict(), "train": options.to_dict(), "text_encoder": run.text_encoder, "balance": run.balance, "config_source": source}


def preflight(run: SSMRun) -> None:
    """Cheap checks of names, files and settings, before anything starts (or is launched)."""
    runs.check_inputs(run)
    if run.resume:
        given = {"text_encoder": run.text_encoder, "balance": run.balance}
        if run.latent:
            given["latent_tokenizer"] = runs.started_from("--latent", run.latent, "tokenizer")
        runs.check_resume(KIND, run.name, run.train_overrides, run.model_overrides | {k: v for k, v in given.items() if v})
    else:
        _settings(run)


def trimmed_features(dataset, patch: int) -> tuple[list[np.ndarray], list[list[str]]]:
    """Each clip's features cut to a whole number of patches, with its captions; clips shorter than one patch are left out."""
    from myocli.tokenizer import codec as tok

    kept = [(f[: len(f) // patch * patch], s.captions) for f, s in zip(tok.sequence_features(dataset), dataset.sequences, strict=True) if len(f) >= patch]
    return [f for f, _ in kept], [c for _, c in kept]


def train_ssm(run: SSMRun) -> dict | None:
    """Train (or resume) and register an SSM generator; returns a summary for the CLI (None on other ranks)."""
    preflight(run)
    return runs.train_on_datasets(KIND, run, "text-to-motion training", _settings, _train)


def flow_losses(model, batch, config, t, noise, drop, latent=None):
    """The loss terms of one batch at flow times t (batch,) with the given noise and text dropout;
    `latent` (a LatentSpace) decodes latent rows into features for the physics terms."""
    import torch
    import torch.nn.functional as F

    from myocli.motion.physics_loss import TERMS, physics_terms
    from myocli.ssm.model import has_text

    data, row_mask, text, rows = batch
    patch_mask = row_mask[:, :: config.rows_per_patch]
    t_ = t.view(-1, 1, 1)
    x_t = (1 - t_) * noise + t_ * data
    velocity, length_logits = model(x_t, t, text, patch_mask, drop)
    weights = row_mask.unsqueeze(-1).to(data.dtype)
    flow = (((velocity - (data - noise)) ** 2) * weights).sum() / (weights.sum() * data.shape[-1])
    captioned = ~drop & has_text(text)
    targets = (rows // config.rows_per_patch - 1).clamp(0, config.max_patches - 1)
    length = F.cross_entropy(length_logits[captioned], targets[captioned]) if captioned.any() else length_logits.sum() * 0
    unwrapped = model.module if hasattr(model, "module") else model
    mean, std = unwrapped.mean, unwrapped.std
    implied, real, frame_mask = (x_t + (1 - t_) * velocity) * std + mean, data * std + mean, row_mask
    if latent is not None:  # the physics is that of the motion the tokenizer's decoder makes of the latents
        implied = latent.decode(implied.float())
        with torch.no_grad():
            real = latent.decode(real.float())
        frame_mask = row_mask.repeat_interleave(config.patch_frames, dim=1)
    terms = physics_terms(implied.float(), real.float(), frame_mask)
    physics = {name: (t * terms[name]).mean() for name in TERMS}
    return flow, length, physics


def _train(run: SSMRun, ref, settings: dict, train_set, val_set) -> dict | None:
    import torch
    from accelerate.utils import set_seed

    from myocli.data.windows import CaptionedWindows, balanced_repeats, keep_batch
    from myocli.motion.physics_loss import TERMS
    from myocli.motion.stats import feature_stats
    from myocli.ssm import text as text_encoders
    from myocli.ssm.model import MotionFlow, SSMConfig
    from myocli.train.accelerator import make_accelerator
    from myocli.train.loop import fit

    accelerator = make_accelerator(settings["train"]["mixed_precision"], settings["train"]["grad_accum"], log_dir=ref.path / "logs")
    options = TrainOptions.from_dict(settings["train"])
    config = SSMConfig.from_dict(settings["model"])
    config.fps = train_set.fps
    pretrained = text_encoders.attach(config, settings["text_encoder"])
    latent = None
    if config.latent_tokenizer:
        from myocli.ssm.latent import LatentSpace
        from myocli.tokenizer.codec import check_dataset_fits

        latent = LatentSpace.of(config, ref.label)
        check_dataset_fits(latent.model, train_set, str(run.data))
        latent.model.to(accelerator.device)
    features, captions = trimmed_features(train_set, config.patch_frames)
    frame_count = int(sum(map(len, features)))
    if latent is not None:  # the flow's data: one latent per patch_frames frames
        features = [latent.encode(f) for f in features]
    if not any(any(c.strip() for c in caps) for caps in captions):
        raise MyoError(f"--data {run.data}: no clip of {config.patch_frames} frames or more has a caption; text-to-motion needs captioned clips")

    set_seed(options.seed)
    mean, std = feature_stats(features)
    model = MotionFlow(config)
    model.set_stats(mean, std)
    text_fn = text_encoders.text_inputs(config, pretrained)
    normalise = lambda fs: [(f - mean) / std for f in fs]  # noqa: E731
    window = config.max_patches * config.rows_per_patch
    repeats = balanced_repeats(captions) if settings.get("balance") else None
    dataset = CaptionedWindows(normalise(features), captions, text_fn, window, options.samples_needed(accelerator.num_processes), options.seed, repeats)

    val_batches = []
    if val_set is not None:
        val_features, val_captions = trimmed_features(val_set, config.patch_frames)
        if latent is not None:
            val_features = [latent.encode(f) for f in val_features]
        if val_features:
            fixed = CaptionedWindows(normalise(val_features), val_captions, text_fn, window, len(val_features), seed=1_000_003)
            val_batches = [fixed.__getitems__(list(range(i, min(i + 16, len(fixed))))) for i in range(0, len(fixed), 16)]

    def evaluate(unwrapped) -> dict:
        """Flow loss and physics terms at fixed times and noise, on this rank's share, summed over ranks."""
        rank, world = accelerator.process_index, accelerator.num_processes
        sums = torch.zeros(2 + len(TERMS), dtype=torch.float64, device=accelerator.device)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for k, batch in enumerate(val_batches):
                batch = tuple(x.to(accelerator.device) for x in batch)
                for t in VAL_TIMES:
                    noise = torch.randn(batch[0].shape, generator=generator).to(accelerator.device)
                    if k % world != rank:
                        continue
                    times = torch.full((len(batch[0]),), t, device=accelerator.device)
                    drop = torch.zeros(len(batch[0]), dtype=torch.bool, device=accelerator.device)
                    flow, _, physics = flow_losses(unwrapped, batch, config, times, noise, drop, latent)
                    sums += torch.tensor([float(flow), 1.0, *(float(physics[n]) / t for n in TERMS)], dtype=torch.float64, device=accelerator.device)
        sums = accelerator.reduce(sums, "sum")
        count = float(sums[1].clamp(min=1))
        return {"flow": float(sums[0]) / count} | {f"physics_{n}": float(sums[2 + i]) / count for i, n in enumerate(TERMS)}

    def loss_fn(model, batch):
        data = batch[0]
        t = torch.rand(len(data), device=data.device)
        noise = torch.randn_like(data)
        drop = torch.rand(len(data), device=data.device) < config.cond_dropout
        flow, length, physics = flow_losses(model, batch, config, t, noise, drop, latent)
        loss = flow + config.length_weight * length + config.physics_weight * sum(physics.values())
        return loss, {"loss": loss, "flow": flow, "length": length} | {f"physics/{n}": v for n, v in physics.items()}

    in_latent = f", in the latent of {config.latent_tokenizer}" if latent else ""
    runs.announce(accelerator, KIND, ref, run.resume, model, settings["model"] | settings["train"],
                  f": {len(features)} sequences ({frame_count} frames){in_latent}", f", physics weight {config.physics_weight:g}")  # fmt: skip
    result = fit(
        accelerator, model, dataset, loss_fn, options, ref.path / registry.STATE,
        evaluate=evaluate if val_batches else None, resume=run.resume, label=ref.label, collate_fn=keep_batch,
    )  # fmt: skip

    training = {"text_encoder_source": settings["text_encoder"], "train_sequences": len(features), "train_frames": frame_count}
    return runs.save_dataset_run(
        accelerator, ref, run, settings, result, model, config.to_dict(), training,
        models_used=[{"name": config.latent_tokenizer, "sha256": config.latent_tokenizer_sha256}] if latent else [],
        extra_files=text_encoders.save_into(pretrained, ref),
        # What the model was trained to make, for the far-prompt warning of `myo generate` (text/known.py),
        # which only a pretrained encoder's similarity can give.
        **({"known_captions": sorted({c for caps in captions for c in caps if c.strip()})[: text_encoders.MOST_KNOWN]} if pretrained else {}),
    )  # fmt: skip

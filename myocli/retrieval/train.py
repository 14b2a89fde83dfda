"""Train the text-motion retrieval evaluator (`myo retrieval train`) and register it as retrieval/NAME.

Samples are windows of up to `max_frames` frames of the training clips (data/windows.CaptionedWindows),
as normalised features, each with one of its clip's captions; the loss is the contrastive one of
retrieval/model.py. Validation embeds every whole validation clip and reports R@1/R@3 and
MM-Dist against the validation set's distinct captions (retrieval/evaluator.py), the figures the
evaluator will later give generated motions. Loop, resume and registry are the shared ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from myocli import registry
from myocli.errors import MyoError
from myocli.train import runs
from myocli.train.loop import TrainOptions

KIND = "retrieval"


@dataclass
class RetrievalRun(runs.DatasetRun):
    text_encoder: str | None = None  # a frozen pretrained encoder (ssm/text.py) instead of the byte-level one


def _settings(run: RetrievalRun) -> dict:
    from myocli.config import load_config
    from myocli.retrieval.model import DOWNSAMPLE, RetrievalConfig

    config, source = load_config(KIND, run.config)
    try:
        model = RetrievalConfig.from_dict(config["model"])
        options = TrainOptions.from_dict(config["train"] | run.train_overrides).check()
    except (MyoError, ValueError, TypeError) as exc:
        raise MyoError(f"{source}: {exc}") from exc
    if model.max_frames < DOWNSAMPLE or model.width % model.heads or model.text_width % model.text_heads:
        raise MyoError(f"{source}: max_frames must be at least {DOWNSAMPLE}, and width/text_width divisible by heads/text_heads")
    if run.debug:
        options.for_debug()
    return {"model": model.to_dict(), "train": options.to_dict(), "text_encoder": run.text_encoder, "config_source": source}


def preflight(run: RetrievalRun) -> None:
    """Cheap checks of names, files and settings, before anything starts (or is launched)."""
    runs.check_inputs(run)
    if run.resume:
        runs.check_resume(KIND, run.name, run.train_overrides, {"text_encoder": run.text_encoder} if run.text_encoder else {})
    else:
        _settings(run)


def captioned_clips(dataset, where: str) -> tuple[list, list[list[str]]]:
    """(features of each clip that has a caption and at least DOWNSAMPLE frames, their captions)."""
    from myocli.retrieval.model import DOWNSAMPLE
    from myocli.tokenizer import codec as tok

    kept = [(f, [c for c in s.captions if c.strip()]) for f, s in zip(tok.sequence_features(dataset), dataset.sequences, strict=True)]
    kept = [(f, caps) for f, caps in kept if caps and len(f) >= DOWNSAMPLE]
    if len({c for _, caps in kept for c in caps}) < 2:
        raise MyoError(f"{where}: a retrieval evaluator learns to tell captions apart, and fewer than two distinct captions "
                       f"are on clips of {DOWNSAMPLE} frames or more; caption the clips (see `myo data inspect`)")  # fmt: skip
    return [f for f, _ in kept], [caps for _, caps in kept]


def train_retrieval(run: RetrievalRun) -> dict | None:
    """Train (or resume) and register an evaluator; returns a summary for the CLI (None on other ranks)."""
    preflight(run)
    return runs.train_on_datasets(KIND, run, "retrieval training", _settings, _train)


def _train(run: RetrievalRun, ref, settings: dict, train_set, val_set) -> dict | None:
    from accelerate.utils import set_seed

    from myocli.data.windows import CaptionedWindows, keep_batch
    from myocli.motion.stats import feature_stats
    from myocli.retrieval.evaluator import Evaluator, captioned, check_rankable
    from myocli.retrieval.model import MotionTextRetrieval, RetrievalConfig
    from myocli.ssm import text as text_encoders
    from myocli.train.accelerator import make_accelerator
    from myocli.train.loop import fit

    accelerator = make_accelerator(settings["train"]["mixed_precision"], settings["train"]["grad_accum"], log_dir=ref.path / "logs")
    options = TrainOptions.from_dict(settings["train"])
    config = RetrievalConfig.from_dict(settings["model"])
    config.fps = train_set.fps
    pretrained = text_encoders.attach(config, settings.get("text_encoder"))
    features, captions = captioned_clips(train_set, f"--data {run.data}")
    val = None
    if val_set is not None:
        val = captioned(val_set)
        check_rankable(val[1], f"--val {run.val}", "give another set or leave --val out")

    set_seed(options.seed)
    mean, std = feature_stats(features)
    model = MotionTextRetrieval(config)
    model.set_stats(mean, std)
    text_input = text_encoders.text_inputs(config, pretrained)
    text_fn = lambda chosen: (text_input(chosen), chosen)  # noqa: E731 - the model's input, strings for matches
    dataset = CaptionedWindows([(f - mean) / std for f in features], captions, text_fn, config.max_frames,
                               options.samples_needed(accelerator.num_processes), options.seed)  # fmt: skip

    def evaluate(unwrapped) -> dict:
        """R@1, R@3 and MM-Dist of the whole validation clips against their own captions."""
        report = Evaluator(ref, unwrapped, pretrained).scores(val[0], val[1], val_set.fps)
        return {key: report[key] for key in ("r_at_1", "r_at_3", "mm_dist")}

    def loss_fn(model, batch):
        windows, mask, (ids, chosen), _ = batch
        loss, accuracy = model(windows, mask, ids, chosen)
        return loss, {"loss": loss, "batch_accuracy": accuracy}

    distinct = len({c for caps in captions for c in caps})
    runs.announce(accelerator, KIND, ref, run.resume, model, settings["model"] | settings["train"],
                  f": {len(features)} captioned clips, {distinct} distinct captions")
    result = fit(accelerator, model, dataset, loss_fn, options, ref.path / registry.STATE, evaluate=evaluate if val else None,
                 resume=run.resume, label=ref.label, collate_fn=keep_batch)  # fmt: skip

    training = {"train_clips": len(features), "text_encoder_source": settings.get("text_encoder")}
    return runs.save_dataset_run(accelerator, ref, run, settings, result, model, config.to_dict(), training,
                                 extra_files=text_encoders.save_into(pretrained, ref))  # fmt: skip

"""The one place an Accelerator is built, for every trainer."""

from __future__ import annotations

import logging
from pathlib import Path


def make_accelerator(mixed_precision: str, grad_accum: int, log_dir: Path | None):
    """Settings are checked beforehand by TrainOptions.check."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

    # T5 ties its embeddings; Accelerate then saves the shared tensor once and warns at every
    # save. The reload is exact (the LM resume test compares weights), so the warning is noise.
    logging.getLogger("accelerate.utils.other").addFilter(lambda record: "Removed shared tensor" not in record.getMessage())
    project = ProjectConfiguration(project_dir=str(log_dir), logging_dir=str(log_dir)) if log_dir else None
    return Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=grad_accum,
        log_with="tensorboard" if log_dir else None,
        project_config=project,
        cpu=not torch.cuda.is_available(),
        # The sample stream is already deterministic (myocli.data.windows): shard it as is.
        dataloader_config=DataLoaderConfiguration(split_batches=False, even_batches=True),
    )


def peak_gpu_memory_mib() -> float | None:
    """The most GPU memory this process's tensors held so far (MiB), for the manifest; None without CUDA."""
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None

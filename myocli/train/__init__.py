"""Training: one Accelerator factory, the `--gpus N` re-launcher, the shared loop, one module per stage."""

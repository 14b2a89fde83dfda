"""Training machinery every kind shares: one Accelerator factory, the `--gpus N` re-launcher, the loop and
the run's registry bookkeeping. Each kind's trainer is its package's train.py (tokenizer/train.py, ...)."""

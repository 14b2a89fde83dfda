"""The models that ship inside the package, and how they are rebuilt.

`checkpoints/` is a read-only registry in the usual layout (see myocli/registry.py), each model
with its MODEL_CARD.md; `build.py` rebuilds them from ../shared/data and `package.py` copies a
build in. `captions.csv` holds the sentences they were trained on, written for this project.
"""

# What `myo generate` uses when the user's registry holds no generator: the better of the
# built-in generators on the held-out HDM05 actor (benchmarks/RESULTS.md).
DEFAULT_MODEL = "ssm/myo-base"

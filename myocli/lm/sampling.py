"""How a language model's answers are sampled: temperature, top-k, top-p, seed, and the physics
refinement of motion answers. Light to import, so the command line can show the defaults.

DEFAULT_TEMPERATURE was chosen on the validation actor with the retrieval evaluator
(benchmarks/RESULTS.md): of 1.0, 0.8, 0.6 and 0.4, the temperature with the best R@1 whose
samples of one caption still differ as much as one actor's own repetitions do (multimodality
at least the real clips'). At 1.0 a third of the motions are some other action.
"""

from __future__ import annotations

from dataclasses import dataclass

from myocli.motion.refine import DEFAULT_STEPS as DEFAULT_REFINE_STEPS

DEFAULT_TEMPERATURE = 0.4
DEFAULT_TOP_P = 0.95


@dataclass
class Sampling:
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = DEFAULT_TOP_P
    seed: int = 0
    refine_steps: int = DEFAULT_REFINE_STEPS  # physics refinement of motion answers (myocli/motion/refine.py)

    def generator(self, sample: int = 0):
        import torch

        return torch.Generator().manual_seed(self.seed + sample)

"""The engine: meta-trains a compiled module as its Plan says, on torch.func."""

from mtdsl.engine.inner import SCORE_SUFFIX, score_key
from mtdsl.engine.meta import EvalStats, MetaLearner, StepStats

__all__ = ["EvalStats", "MetaLearner", "SCORE_SUFFIX", "StepStats", "score_key"]

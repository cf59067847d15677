"""Training: THE loop (`fit`), its steps, evaluation, history, checkpoints, threads,
gradient checking and the learning-rate range test."""

from kcourse.training.evaluation import evaluate, make_evaluator, predict_scores
from kcourse.training.fit import fit
from kcourse.training.gradcheck import check_gradients, gradcheck, relative_error
from kcourse.training.history import History
from kcourse.training.lr_range import lr_range_test, suggest_rates
from kcourse.training.steps import make_chunk, make_update, regularization
from kcourse.training.threads import set_threads

__all__ = ["History", "check_gradients", "evaluate", "fit", "gradcheck", "lr_range_test",
           "make_chunk", "make_evaluator", "make_update", "predict_scores",
           "regularization", "relative_error", "set_threads", "suggest_rates"]

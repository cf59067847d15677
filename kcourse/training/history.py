"""The record of a training run."""


class History:
    """Rows of a training run: one dict per log or evaluation point, in order.

    Attributes:
        rows: the dicts (`step`, `epoch`, `learning_rate`, `seconds`, and what was
            measured there: `loss`, `train_*` and `val_*` metrics, ...).
        history: the same as Keras' `History.history`: `{key: [values]}`.
        stopped: why training stopped early, if it did.
        diverged: whether the loss became NaN or infinite.
        best_step, best_score, best_weights: the kept model, when `fit` was asked
            to keep the best (`keep_best`).
        seconds: the training time, counted across resumes.
    """

    def __init__(self, rows=None):
        self.rows = list(rows or [])
        self.stopped = None
        self.diverged = False
        self.best_step, self.best_score, self.best_weights = 0, None, None
        self.seconds = 0.0

    def column(self, key):
        return [row.get(key) for row in self.rows]

    @property
    def history(self):
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        return {key: self.column(key) for key in keys}

    @property
    def last(self):
        return self.rows[-1] if self.rows else {}

    def __len__(self):
        return len(self.rows)

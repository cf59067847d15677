"""KerasTuner's grid oracle, resumable: `GridSearchOracle` keeps the order of the values
it tried and the trials whose next combination it has yet to make only in memory, so a
grid search reloaded with unfinished trials (a chief killed and started again, an
interrupted search resumed) fails with a KeyError of a trial id when the first
reloaded trial ends. `ResumableGridSearchOracle` rebuilds both from the reloaded
trials: every trial, sorted by its values, and each one's next combination to make
(the oracle skips a combination already tried)."""

import functools

import keras_tuner
from keras_tuner.src.tuners.gridsearch import LinkedList


class ResumableGridSearchOracle(keras_tuner.oracles.GridSearchOracle):
    def set_state(self, state):
        super().set_state(state)
        tried = [i for i in self.start_order if i in self.trials]
        key = functools.cmp_to_key(lambda a, b: self._compare(
            self.trials[a].hyperparameters.values, self.trials[b].hyperparameters.values))
        self._ordered_ids = LinkedList()
        for trial_id in sorted(tried, key=key):
            self._ordered_ids.insert(trial_id)
        self._populate_next = tried


def grid_search(hypermodel, **kwargs):
    """`keras_tuner.GridSearch` with the resumable oracle (the same arguments)."""
    oracle_args = {k: kwargs.pop(k) for k in ("objective", "max_trials", "seed")
                   if k in kwargs}
    return keras_tuner.Tuner(oracle=ResumableGridSearchOracle(**oracle_args),
                             hypermodel=hypermodel, **kwargs)

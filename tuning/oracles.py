"""KerasTuner's grid oracle, parallel and resumable.

`GridSearchOracle` makes a trial's values from those of a trial that has *ended* (so
that it can follow conditional hyperparameters): with several workers, one that asks
while the others run gets "idle" until one of them ends, so a grid search runs about
one trial at a time however many workers it has (and KerasTuner's worker asks again at
once, in a busy loop). It also keeps that walk's state only in memory, so a grid
search reloaded with unfinished trials (a chief killed and started again, an
interrupted search resumed) fails with a KeyError of a trial id.

`ResumableGridSearchOracle` hands out, for a space without conditions (every kcourse
search), the first combination in KerasTuner's order (the last hyperparameter varying
fastest, each from its default) that no trial has had: as many trials at once as there
are workers, and nothing to rebuild on reload (the values tried are in the oracle's
saved state). A space with conditions gets KerasTuner's own walk, its state rebuilt
from the reloaded trials.
"""

import functools
import itertools

import keras_tuner
from keras_tuner.src.tuners.gridsearch import LinkedList


class ResumableGridSearchOracle(keras_tuner.oracles.GridSearchOracle):
    def populate_space(self, trial_id):
        space = self.get_space().space
        if any(hp.conditions for hp in space):
            return super().populate_space(trial_id)
        grids = [[hp.default] + [v for v in hp.values if v != hp.default] for hp in space]
        for combination in itertools.product(*grids):
            values = {hp.name: v for hp, v in zip(space, combination)}
            if not self._duplicate(values):
                return {"status": "RUNNING", "values": values}
        return {"status": "IDLE" if self.ongoing_trials else "STOPPED", "values": None}

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
    """`keras_tuner.GridSearch` with the parallel, resumable oracle (its arguments)."""
    oracle_args = {k: kwargs.pop(k) for k in ("objective", "max_trials", "seed")
                   if k in kwargs}
    return keras_tuner.Tuner(oracle=ResumableGridSearchOracle(**oracle_args),
                             hypermodel=hypermodel, **kwargs)

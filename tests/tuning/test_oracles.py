"""The parallel, resumable grid oracle: a grid search reloaded with trials still running (a
killed chief, an interrupted search) runs every remaining value once, and as many
trials run at once as workers ask."""

import keras_tuner

from tuning.oracles import ResumableGridSearchOracle

VALUES = [-4.0, -3.0, -2.0, -1.0]


class Square(keras_tuner.Tuner):
    def run_trial(self, trial, *args, **kwargs):
        x = trial.hyperparameters.Choice("x", VALUES, ordered=True)
        self.ran.append(x)
        return {"score": -x * x}


def tuner(directory):
    tuner = Square(oracle=ResumableGridSearchOracle(objective=keras_tuner.Objective(
        "score", "max"), max_trials=len(VALUES), seed=1),
        hypermodel=lambda hp: hp.Choice("x", VALUES, ordered=True), directory=directory,
        project_name="grid", overwrite=False)
    tuner.ran = []
    return tuner


def test_a_reloaded_grid_search_with_running_trials_runs_the_rest_once(tmp_path):
    first = tuner(tmp_path)
    oracle = first.oracle
    a, b = oracle.create_trial("worker-1"), oracle.create_trial("worker-2")
    a.status = "COMPLETED"
    oracle.update_trial(a.trial_id, {"score": 0.0})
    oracle.end_trial(a)
    first.save()  # then the process dies, trial b still running
    again = tuner(tmp_path)
    again.search()
    trials = again.oracle.trials.values()
    assert sorted(t.hyperparameters.values["x"] for t in trials) == VALUES
    assert all(t.status == "COMPLETED" for t in trials)
    # the running trial runs again, the finished one does not
    assert sorted(again.ran) == sorted(v for v in VALUES
                                       if v != a.hyperparameters.values["x"])
    assert b.hyperparameters.values["x"] in again.ran


def test_as_many_grid_trials_at_once_as_workers_in_keras_tuner_order(tmp_path):
    oracle = tuner(tmp_path).oracle
    running = [oracle.create_trial(f"worker-{i}") for i in range(3)]
    assert [t.status for t in running] == ["RUNNING"] * 3  # KerasTuner's: idle third
    assert [t.hyperparameters.values["x"] for t in running] == VALUES[:3]
    running[0].status = "COMPLETED"
    oracle.update_trial(running[0].trial_id, {"score": 0.0})
    oracle.end_trial(running[0])
    assert oracle.create_trial("worker-0").hyperparameters.values["x"] == VALUES[3]
    assert oracle.create_trial("worker-3").status == "STOPPED"  # the grid is done

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.callbacks import SnapshotEnsemble, ensemble_accuracy, ensemble_predict
from kcourse.layers import Linear
from kcourse.losses import SoftmaxCrossEntropy
from kcourse.training import lr_range_test, suggest_rates
from kcourse.tracks.cifar_mlp.models import mlp
from kcourse.schedules import CyclicLearningRate
from kcourse.training import fit


def toy_data(n=300, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)
    return x, np.eye(10, dtype="float32")[labels]


def batches(x, y, batch_size=30, seed=None):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if seed is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def test_mlp_layers_in_the_course_order():
    model = mlp([50, 30, 20], batch_norm=True, dropout=0.1, lam=0.005, seed=0)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Linear", "BatchNormalization", "ReLU", "Dropout"] * 3 + ["Linear"]
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, Linear)]
    assert [tuple(k.shape) for k in kernels] == [(3072, 50), (50, 30), (30, 20), (20, 10)]
    assert len(model.losses) == 4  # lambda * ||W||^2 for every weight matrix, no biases
    assert model.get_layer("linear_1").bias is None  # BN's beta replaces it
    plain = mlp([50], init="xavier", seed=0)
    assert [type(l).__name__ for l in plain.layers[1:]] == ["Linear", "ReLU", "Linear"]
    assert plain.get_layer("linear_2").kernel.numpy().std() == pytest.approx(
        1 / np.sqrt(50), rel=0.05)  # W2 ~ N(0, 1/m)


def test_equal_shaped_layers_do_not_start_equal():
    model = mlp([10, 10, 10], input_dim=10, seed=3)
    w2, w3 = model.get_layer("linear_2").kernel.numpy(), model.get_layer("linear_3").kernel
    assert not np.allclose(w2, w3.numpy())
    again = mlp([10, 10, 10], input_dim=10, seed=3)
    np.testing.assert_array_equal(again.get_layer("linear_2").kernel.numpy(), w2)


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": []}, "hidden"), ({"hidden": [5, 0]}, "hidden"),
    ({"hidden": [5], "lam": -1}, "lambda"), ({"hidden": [5], "dropout": 1.0}, "dropout"),
])
def test_mlp_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlp(**kwargs)


def test_ensemble_average_and_vote():
    # three members, four examples, three classes
    probs = np.array([[[.6, .3, .1], [.1, .8, .1], [.4, .35, .25], [.2, .3, .5]],
                      [[.5, .4, .1], [.3, .3, .4], [.1, .45, .45], [.3, .4, .3]],
                      [[.1, .8, .1], [.2, .5, .3], [.1, .5, .4], [.6, .2, .2]]])
    # means: [.4 .5 .1], [.2 .53 .27], [.2 .43 .37], [.37 .3 .33]
    np.testing.assert_array_equal(ensemble_predict(probs, "average"), [1, 1, 1, 0])
    # votes: ex0 {0,0,1} -> 0 (the average says 1); ex1 {1,2,1} -> 1; ex2 {0,1,1} -> 1;
    # ex3 {2,1,0} a three-way tie -> the larger mean probability, 0
    np.testing.assert_array_equal(ensemble_predict(probs, "vote"), [0, 1, 1, 0])
    with pytest.raises(ValueError, match="method"):
        ensemble_predict(probs, "median")


def test_snapshots_at_cycle_ends_in_the_kcourse_trainer_and_resume(tmp_path):
    x, y = toy_data()
    model = mlp([16], input_dim=8, seed=0)
    schedule = CyclicLearningRate(1e-3, 0.2, 5)  # cycle of 10 updates, 10 batches/epoch
    optimizer = keras.optimizers.SGD(schedule)
    callback = SnapshotEnsemble(schedule.cycle_length(), optimizer, directory=tmp_path)
    history = fit(model, SoftmaxCrossEntropy(), batches(x, y, seed=0), batches(x, y),
                  optimizer=optimizer, max_steps=35, eval_every=5, callbacks=[callback],
                  verbose=0)
    assert history.last["step"] == 35 and history.last["epoch"] == pytest.approx(3.5)
    assert [step for step, _ in callback.snapshots] == [10, 20, 30]
    assert len(list(tmp_path.glob("snapshot_*.npz"))) == 3
    model.set_weights(callback.snapshots[-1][1])
    result = ensemble_accuracy(model, [w for _, w in callback.snapshots], x, y)
    assert len(result["members"]) == 3 and result["members"][-1] > 0.5
    assert 0 <= result["average"] <= 1 and 0 <= result["vote"] <= 1
    reloaded = SnapshotEnsemble(10, optimizer, directory=tmp_path)
    reloaded.on_train_begin()
    assert [s for s, _ in reloaded.snapshots] == [10, 20, 30]
    for a, b in zip(reloaded.snapshots[1][1], callback.snapshots[1][1]):
        np.testing.assert_array_equal(a, b)


def test_snapshots_in_model_fit():
    x, y = toy_data()
    model = mlp([16], input_dim=8, batch_norm=True, seed=0)
    model.compile(keras.optimizers.SGD(CyclicLearningRate(1e-3, 0.1, 5)),
                  SoftmaxCrossEntropy())
    callback = SnapshotEnsemble(10)
    model.fit(x, y, batch_size=30, epochs=3, verbose=0, callbacks=[callback])
    assert [step for step, _ in callback.snapshots] == [10, 20, 30]
    # weights include the batch-norm moving averages
    assert len(callback.snapshots[0][1]) == len(model.get_weights())


def test_suggest_rates_finds_the_rise_and_the_peak():
    rates = np.logspace(-4, 0, 41)
    accuracy = np.clip(0.1 + 0.4 * (np.log10(rates) + 3), 0.1, 0.5)  # rises from 1e-3
    accuracy[np.log10(rates) > -1.5] -= 0.6 * (np.log10(rates[np.log10(rates) > -1.5]) + 1.5)
    rows = [{"learning_rate": r, "val_accuracy": a} for r, a in zip(rates, accuracy)]
    suggestion = suggest_rates(rows)
    assert 1e-3 <= suggestion["eta_min"] <= 2e-3
    assert 10 ** -2.1 <= suggestion["eta_max"] <= 10 ** -1.4
    with pytest.raises(ValueError, match="too few"):
        suggest_rates(rows[:2])


@pytest.mark.parametrize("ramp", ["linear", "exponential"])
def test_lr_range_test_raises_the_rate(ramp):
    x, y = toy_data()
    rows, suggestion = lr_range_test(mlp([16], input_dim=8, seed=0), SoftmaxCrossEntropy(),
                                     batches(x, y, seed=0), batches(x, y), eta_min=1e-4,
                                     eta_max=0.5, epochs=4, points=20, ramp=ramp)
    rates = np.array([row["learning_rate"] for row in rows])
    assert rates[0] == pytest.approx(1e-4, rel=1e-3) and rates[-1] == pytest.approx(0.5)
    assert len(rates) == 21 and np.all(np.diff(rates) > 0)
    steps = np.diff(rates) if ramp == "linear" else np.diff(np.log(rates))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-3)  # even steps (on a log scale)
    assert 1e-4 <= suggestion["eta_min"] <= suggestion["eta_max"] <= 0.5
    assert suggestion["peak_val_accuracy"] > 0.5  # four classes: chance is 0.25
    with pytest.raises(ValueError, match="ramp"):
        lr_range_test(mlp([4], input_dim=8), SoftmaxCrossEntropy(), batches(x, y),
                      batches(x, y), ramp="cosine")


def test_fit_needs_a_length():
    x, y = toy_data()
    with pytest.raises(ValueError, match="epochs or max_steps"):
        fit(mlp([4], input_dim=8), SoftmaxCrossEntropy(), batches(x, y),
            optimizer=keras.optimizers.SGD(0.1))

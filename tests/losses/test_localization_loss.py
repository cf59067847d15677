import keras
import numpy as np
import pytest

from kcourse.losses.localization import LocalizationLoss, localization_loss_terms
from kcourse.metrics import BoxIoU, LocalizationScore, ObjectAccuracy


def numpy_loss(y_true, y_pred):
    """The course's written definition, one example (or cell) at a time:
    BCE(p_c, sigmoid(s)) + p_c * (MSE(box) + CE(class))."""
    out = np.zeros(y_true.shape[:-1])
    for index in np.ndindex(*y_true.shape[:-1]):
        t, p = y_true[index], y_pred[index]
        prob = 1 / (1 + np.exp(-p[0]))
        bce = -(t[0] * np.log(prob) + (1 - t[0]) * np.log(1 - prob))
        mse = np.mean((p[1:5] - t[1:5]) ** 2)
        scores = np.exp(p[5:] - p[5:].max())
        ce = -np.log(scores[int(t[5])] / scores.sum())
        out[index] = bce + t[0] * (mse + ce)
    return out


def data(shape, rng, rate=0.6, classes=10):
    y_true = np.zeros(shape + (6,))
    y_true[..., 0] = rng.random(shape) < rate
    y_true[..., 1:5] = rng.uniform(0, 1, shape + (4,))
    y_true[..., 5] = rng.integers(0, classes, shape)
    y_true *= y_true[..., :1]
    y_pred = rng.normal(size=shape + (5 + classes,)) * 2
    return y_true, y_pred


def test_localization_loss_matches_numpy_with_and_without_objects():
    rng = np.random.default_rng(0)
    y_true, y_pred = data((12,), rng)
    assert 0 < y_true[:, 0].sum() < 12  # both kinds of examples
    expected = numpy_loss(y_true, y_pred)
    per_example = LocalizationLoss(reduction=None, dtype="float64")(y_true, y_pred)
    np.testing.assert_allclose(per_example, expected, rtol=1e-10)
    mean = LocalizationLoss(dtype="float64")(y_true, y_pred)
    assert float(mean) == pytest.approx(expected.mean(), rel=1e-10)
    # without an object only the BCE term counts: box and class predictions are free
    empty = y_true[:, 0] == 0
    moved = y_pred.copy()
    moved[:, 1:] += 100.0
    again = LocalizationLoss(reduction=None, dtype="float64")(y_true, moved)
    np.testing.assert_allclose(np.asarray(again)[empty], expected[empty], rtol=1e-10)
    p = y_true[:, 0]
    bce = np.log1p(np.exp(-y_pred[:, 0])) * p + np.log1p(np.exp(y_pred[:, 0])) * (1 - p)
    np.testing.assert_allclose(np.asarray(per_example)[empty], bce[empty], rtol=1e-10)


def test_course_solution_differs_masking_per_example():
    """The course's solution averaged the box and class terms over every image of the
    batch; kcourse masks them per example, so an all-empty batch has only the BCE."""
    rng = np.random.default_rng(1)
    y_true, y_pred = data((6,), rng, rate=0.0)
    bce, mse, ce = (np.asarray(t) for t in localization_loss_terms(y_true, y_pred))
    ours = float(LocalizationLoss(dtype="float64")(y_true, y_pred))
    assert ours == pytest.approx(bce.mean(), rel=1e-10)
    assert ours < bce.mean() + mse.mean() + ce.mean()


def test_detection_loss_sums_over_the_grid_cells():
    rng = np.random.default_rng(2)
    y_true, y_pred = data((5, 2, 3), rng)
    y_true[0] = 0  # a canvas without objects (never in the dataset, still defined)
    expected = numpy_loss(y_true, y_pred).sum(axis=(1, 2))
    per_example = LocalizationLoss(reduction=None, dtype="float64")(y_true, y_pred)
    assert per_example.shape == (5,)
    np.testing.assert_allclose(per_example, expected, rtol=1e-10)
    assert float(LocalizationLoss(dtype="float64")(y_true, y_pred)) == pytest.approx(
        expected.mean(), rel=1e-10)
    # two classes work the same (7 numbers per cell)
    y2, p2 = data((3, 2, 3), rng, classes=2)
    np.testing.assert_allclose(LocalizationLoss(reduction=None, dtype="float64")(y2, p2),
                               numpy_loss(y2, p2).sum(axis=(1, 2)), rtol=1e-10)


def test_loss_is_finite_for_huge_logits_and_checks_shapes():
    y_true = np.array([[1, .5, .5, .2, .2, 3], [0, 0, 0, 0, 0, 0]], "float32")
    y_pred = np.zeros((2, 15), "float32")
    y_pred[:, 0] = [-1e4, 1e4]  # confidently wrong both times
    y_pred[0, 5:] = np.linspace(-5e4, 5e4, 10)
    values = np.asarray(LocalizationLoss(reduction=None)(y_true, y_pred))
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values[1], 1e4, rtol=1e-6)
    with pytest.raises(ValueError, match=r"labels \(\.\.\., 6\)"):
        LocalizationLoss()(np.zeros((2, 5)), np.zeros((2, 15)))


def test_config_round_trip_training_step_and_saving(tmp_path):
    loss = LocalizationLoss(reduction="sum", name="loc", dtype="float64")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is LocalizationLoss and again.get_config() == loss.get_config()
    rng = np.random.default_rng(3)
    y_true, _ = data((32,), rng)
    x = rng.normal(size=(32, 8)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(15)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LocalizationLoss(),
                  metrics=[ObjectAccuracy(), BoxIoU(), LocalizationScore()])
    before = model.evaluate(x, y_true, verbose=0, return_dict=True)
    model.fit(x, y_true, epochs=5, batch_size=16, verbose=0)
    after = model.evaluate(x, y_true, verbose=0, return_dict=True)
    assert {"loss", "object_accuracy", "box_iou", "score"} <= set(after)
    assert np.isfinite(after["loss"]) and after["loss"] < before["loss"]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.loss, LocalizationLoss)
    again = loaded.evaluate(x, y_true, verbose=0, return_dict=True)
    assert again["loss"] == pytest.approx(after["loss"], rel=1e-5)
    assert again["score"] == pytest.approx(after["score"], rel=1e-5)


def test_box_and_class_are_ignored_where_there_is_no_object():
    """What an empty example's label holds past p_c (zeros, garbage, NaN) changes
    nothing: neither the loss nor its gradient."""
    import tensorflow as tf

    pred = tf.Variable(np.random.default_rng(1).normal(size=(2, 15)).astype("float32"))
    losses, grads = [], []
    for filler in (0.0, 7.0, np.nan):
        y = np.array([[0, *[filler] * 5], [1, 0.5, 0.5, 0.2, 0.3, 4]], "float32")
        with tf.GradientTape() as tape:
            loss = LocalizationLoss()(y, pred)
        losses.append(float(loss))
        grads.append(tape.gradient(loss, pred).numpy())
    assert np.isfinite(losses).all() and len(set(losses)) == 1
    assert all(np.array_equal(grads[0], g) for g in grads[1:])

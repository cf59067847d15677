import keras
import numpy as np
import pytest

from kcourse.metrics import BoxIoU, LocalizationScore, ObjectAccuracy, box_iou, localization_scores


def iou(a, b):
    return float(box_iou(np.asarray(a, "float32"), np.asarray(b, "float32")))


@pytest.mark.parametrize("a, b, expected", [
    ((0.5, 0.5, 0.2, 0.2), (0.1, 0.1, 0.1, 0.1), 0.0),  # no overlap
    ((0.5, 0.5, 0.2, 0.3), (0.5, 0.5, 0.2, 0.3), 1.0),  # identical
    ((0.5, 0.5, 0.4, 0.4), (0.5, 0.5, 0.2, 0.2), 0.25),  # contained: 0.04 / 0.16
    ((0.6, 0.5, 0.2, 0.4), (0.5, 0.5, 0.4, 0.4), 0.5),  # contained, touching an inner edge
    ((0.2, 0.5, 0.2, 0.2), (0.4, 0.5, 0.2, 0.2), 0.0),  # touching along an edge
    ((0.2, 0.2, 0.2, 0.2), (0.4, 0.4, 0.2, 0.2), 0.0),  # touching at a corner
    ((0.5, 0.5, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0), 0.0),  # two zero-area boxes: no union
    ((0.5, 0.5, 0.0, 0.3), (0.5, 0.5, 0.2, 0.3), 0.0),  # a zero-width box inside another
    ((0.5, 0.5, 0.2, 0.2), (0.6, 0.5, 0.2, 0.2), 1 / 3),  # half of each: 0.02 / 0.06
    ((0.5, 0.5, -0.2, 0.2), (0.5, 0.5, 0.2, 0.2), 0.0),  # a negative size counts as 0
])
def test_box_iou_cases(a, b, expected):
    assert iou(a, b) == pytest.approx(expected, abs=1e-6)
    assert iou(b, a) == pytest.approx(expected, abs=1e-6)  # symmetric


def test_box_iou_broadcasts_and_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, (5, 2, 3, 4))
    b = rng.uniform(0.1, 0.9, (5, 2, 3, 4))
    a[..., 2:] *= 0.5
    b[..., 2:] *= 0.5
    got = np.asarray(box_iou(a, b))
    assert got.shape == (5, 2, 3)
    x1 = np.maximum(a[..., 0] - a[..., 2] / 2, b[..., 0] - b[..., 2] / 2)
    x2 = np.minimum(a[..., 0] + a[..., 2] / 2, b[..., 0] + b[..., 2] / 2)
    y1 = np.maximum(a[..., 1] - a[..., 3] / 2, b[..., 1] - b[..., 3] / 2)
    y2 = np.minimum(a[..., 1] + a[..., 3] / 2, b[..., 1] + b[..., 3] / 2)
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    expected = inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    one = np.asarray(box_iou(a[0, 0, 0], b))  # one box against many
    np.testing.assert_allclose(one, [[[float(box_iou(a[0, 0, 0], bb)) for bb in row]
                                      for row in grid] for grid in b], rtol=1e-12)


def predictions(y_true, rng, classes=10):
    """Predictions for labels: a mix of detected / missed, right / wrong classes."""
    shape = y_true.shape[:-1]
    y_pred = np.zeros(shape + (5 + classes,))
    y_pred[..., 0] = rng.normal(size=shape) * 3
    y_pred[..., 1:5] = y_true[..., 1:5] + rng.normal(size=shape + (4,)) * 0.05
    y_pred[..., 5:] = rng.normal(size=shape + (classes,))
    return y_pred


def labels(shape, rng, rate=0.7, classes=10):
    y = np.zeros(shape + (6,))
    y[..., 0] = rng.random(shape) < rate
    y[..., 1:3] = rng.uniform(0.2, 0.8, shape + (2,))
    y[..., 3:5] = rng.uniform(0.1, 0.4, shape + (2,))
    y[..., 5] = rng.integers(0, classes, shape)
    return y * y[..., :1]  # zeros where no object, as the datasets store them


def reference(y_true, y_pred):
    """The course's definitions, written out example by example."""
    correct, ious, count = 0, 0.0, 0
    for t, p in zip(y_true.reshape(-1, 6), y_pred.reshape(-1, y_pred.shape[-1])):
        if t[0] != 1:
            continue
        count += 1
        detected = 1 / (1 + np.exp(-p[0])) > 0.5
        correct += bool(detected and np.argmax(p[5:]) == int(t[5]))
        ious += iou(t[1:5], p[1:5]) if detected else 0.0
    return correct / count, ious / count


@pytest.mark.parametrize("shape", [(32,), (8, 2, 3)], ids=["localization", "detection"])
def test_metrics_match_the_course_definitions(shape):
    rng = np.random.default_rng(1)
    y_true = labels(shape, rng)
    y_pred = predictions(y_true, rng)
    # a few sure hits: detected, right class, exact box
    flat_t, flat_p = y_true.reshape(-1, 6), y_pred.reshape(-1, 15)
    hits = np.flatnonzero(flat_t[:, 0])[:3]
    flat_p[hits, 0] = 5.0
    flat_p[hits, 1:5] = flat_t[hits, 1:5]
    flat_p[hits, 5:] = np.eye(10)[flat_t[hits, 5].astype(int)] * 4
    y_pred = flat_p.reshape(y_pred.shape)
    accuracy, mean_iou = reference(y_true, y_pred)
    assert 0 < accuracy < 1 and 0 < mean_iou < 1
    metrics = [ObjectAccuracy(), BoxIoU(), LocalizationScore()]
    half = len(y_true) // 2
    for metric in metrics:  # two batches: accumulated over all objects
        metric.update_state(y_true[:half], y_pred[:half])
        metric.update_state(y_true[half:], y_pred[half:])
    got = [float(m.result()) for m in metrics]
    np.testing.assert_allclose(got, [accuracy, mean_iou, (accuracy + mean_iou) / 2],
                               rtol=1e-5)
    scores = localization_scores(y_true, y_pred)
    np.testing.assert_allclose([scores["accuracy"], scores["iou"], scores["score"]],
                               [accuracy, mean_iou, (accuracy + mean_iou) / 2], rtol=1e-6)
    for metric in metrics:
        metric.reset_state()
        assert float(metric.result()) == 0.0


def test_missed_objects_count_zero_and_empty_examples_do_not_count():
    y_true = np.array([[1, .5, .5, .2, .2, 3], [1, .5, .5, .2, .2, 4], [0, 0, 0, 0, 0, 0]])
    y_pred = np.zeros((3, 15))
    y_pred[:, 1:5] = y_true[:, 1:5]  # perfect boxes
    y_pred[0, [0, 5 + 3]] = [2.0, 1.0]  # detected, right class
    y_pred[1, [0, 5 + 4]] = [-2.0, 1.0]  # missed (sigmoid < 0.5): IoU 0, not accurate
    y_pred[2, 0] = 9.0  # a false detection where there is nothing: not counted
    values = [float(m(y_true, y_pred)) for m in (ObjectAccuracy(), BoxIoU(), LocalizationScore())]
    np.testing.assert_allclose(values, [0.5, 0.5, 0.5], rtol=1e-6)
    nothing = np.zeros((2, 6))
    assert [float(m(nothing, y_pred[:2])) for m in (ObjectAccuracy(), BoxIoU())] == [0.0, 0.0]
    assert localization_scores(nothing, y_pred[:2]) == {"accuracy": 0.0, "iou": 0.0,
                                                        "score": 0.0}


def test_sample_weight_broadcasts_over_cells():
    rng = np.random.default_rng(2)
    y_true = labels((6, 2, 3), rng, rate=0.8)
    y_pred = predictions(y_true, rng)
    weight = np.array([1, 0, 1, 0, 1, 0], "float32")
    keep = weight.astype(bool)
    for cls in (ObjectAccuracy, BoxIoU):
        weighted = cls()
        weighted.update_state(y_true, y_pred, sample_weight=weight)
        kept = cls()
        kept.update_state(y_true[keep], y_pred[keep])
        assert float(weighted.result()) == pytest.approx(float(kept.result()), rel=1e-6)


def test_config_round_trip_and_shape_check():
    for cls in (ObjectAccuracy, BoxIoU, LocalizationScore):
        metric = cls(name="m", dtype="float64")
        again = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert type(again) is cls and again.name == "m" and again.dtype == "float64"
    with pytest.raises(ValueError, match=r"labels \(\.\.\., 6\)"):
        BoxIoU().update_state(np.zeros((2, 5)), np.zeros((2, 15)))

import keras
import numpy as np
import pytest

from kcourse.losses import MulticlassSVM, SoftmaxCrossEntropy, get
from kcourse.tracks.cifar_mlp.models import linear_classifier

RNG = np.random.default_rng(0)
SCORES = RNG.normal(size=(8, 10)) * 3
LABELS = np.eye(10)[RNG.integers(0, 10, 8)]


def numpy_cross_entropy(s, y):
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return -np.log((p * y).sum(1))


def numpy_svm(s, y):
    losses = []
    for scores, onehot in zip(s, y):
        true = onehot.argmax()
        losses.append(sum(max(0.0, scores[j] - scores[true] + 1) for j in range(10) if j != true))
    return np.array(losses)


@pytest.mark.parametrize("loss_cls, reference", [(SoftmaxCrossEntropy, numpy_cross_entropy),
                                                 (MulticlassSVM, numpy_svm)])
def test_loss_matches_numpy_formula(loss_cls, reference):
    loss = loss_cls(dtype="float64")
    assert float(loss(LABELS, SCORES)) == pytest.approx(reference(SCORES, LABELS).mean())
    per_example = loss_cls(reduction=None, dtype="float64")(LABELS, SCORES)
    np.testing.assert_allclose(per_example, reference(SCORES, LABELS), rtol=1e-12)


def test_cross_entropy_agrees_with_keras():
    ours = SoftmaxCrossEntropy()(LABELS, SCORES.astype("float32"))
    theirs = keras.losses.CategoricalCrossentropy(from_logits=True)(LABELS, SCORES.astype("float32"))
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_cross_entropy_is_stable_for_huge_scores():
    s = np.array([[1000.0, -1000.0, 0.0], [-5e4, 5e4, 1.0]], "float32")
    y = np.eye(3)[[0, 0]]
    values = SoftmaxCrossEntropy(reduction=None)(y, s).numpy()
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, [0.0, 1e5], rtol=1e-6, atol=1e-6)


def test_svm_is_zero_when_margins_are_met_and_margin_is_configurable():
    s = np.array([[5.0, 1.0, 0.0]])
    y = np.eye(3)[[0]]
    assert float(MulticlassSVM()(y, s)) == 0.0
    assert float(MulticlassSVM(margin=4.5)(y, s)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="margin"):
        MulticlassSVM(margin=0)


def test_get_by_course_name():
    assert isinstance(get("svm"), MulticlassSVM)
    assert isinstance(get("cross_entropy"), SoftmaxCrossEntropy)
    with pytest.raises(ValueError, match="Unknown loss"):
        get("hinge")


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy(), MulticlassSVM(margin=2.0)])
def test_loss_round_trips_through_keras_file(tmp_path, loss):
    model = linear_classifier(input_dim=5, seed=0)
    model.compile(optimizer="sgd", loss=loss)
    path = tmp_path / "compiled.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.loss) is type(loss)
    assert loaded.loss.get_config() == loss.get_config()
    assert float(loaded.loss(LABELS[:, :10], SCORES)) == pytest.approx(float(loss(LABELS, SCORES)))


def test_class_weighted_cross_entropy_matches_numpy_formula():
    from kcourse.losses import balanced_class_weights

    rng = np.random.default_rng(3)
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = balanced_class_weights(labels, 3)
    n = np.bincount(labels)
    np.testing.assert_allclose(weights, len(labels) / (3 * n))  # N / (K n_y)
    scores = rng.normal(size=(len(labels), 3))
    y = np.eye(3)[labels]
    p = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    per_example = -np.log(p[np.arange(len(labels)), labels]) / (3 * n[labels])
    loss = SoftmaxCrossEntropy(class_weights=weights, dtype="float64")
    # the mean weighted loss is N times the course's sum of l_i / (K n_y) over N: the
    # class-balanced mean loss
    np.testing.assert_allclose(float(loss(y, scores)), per_example.sum(), rtol=1e-12)
    plain = SoftmaxCrossEntropy(dtype="float64")
    np.testing.assert_allclose(float(loss(y[:6], scores[:6])),
                               float(plain(y[:6], scores[:6])) * weights[0], rtol=1e-12)
    assert SoftmaxCrossEntropy.from_config(loss.get_config()).class_weights == weights


def test_class_weights_errors():
    from kcourse.losses import balanced_class_weights

    with pytest.raises(ValueError, match="every one of the 3 classes"):
        balanced_class_weights([0, 0, 1], 3)
    with pytest.raises(ValueError, match="non-negative"):
        SoftmaxCrossEntropy(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="2 weights for 3 classes"):
        SoftmaxCrossEntropy(class_weights=[1.0, 1.0])(np.eye(3), np.zeros((3, 3)))


def test_class_weights_refuse_labels_out_of_range():
    from kcourse.losses import balanced_class_weights

    with pytest.raises(ValueError, match="class ids in 0..2, got 0 to 3"):
        balanced_class_weights([0, 1, 2, 3], 3)
    with pytest.raises(ValueError, match="class ids in 0..2, got -1"):
        balanced_class_weights([-1, 1, 2], 3)


def test_cross_entropy_takes_class_ids_too_and_says_when_labels_do_not_fit():
    loss = SoftmaxCrossEntropy(dtype="float64")
    ids = LABELS.argmax(1)
    np.testing.assert_allclose(float(loss(ids, SCORES)), float(loss(LABELS, SCORES)),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="give one-hot labels"):
        loss(np.eye(4)[[0, 1]], SCORES[:2])

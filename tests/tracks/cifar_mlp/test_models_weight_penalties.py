import keras
import numpy as np
import pytest

from kcourse.layers import Linear
from kcourse.regularizers import L1, ElasticNet
from kcourse.tracks.cifar_mlp.models import linear_classifier, mlp
from kcourse.training import regularization


def kernels(model):
    return [layer.kernel.numpy().astype("float64") for layer in model.layers
            if isinstance(layer, Linear)]


def test_mlp_l1_adds_l1_times_sum_of_absolute_weights_of_every_matrix():
    model = mlp(hidden=(8, 6), input_dim=12, l1=0.1, seed=0)
    ws = kernels(model)
    assert [w.shape for w in ws] == [(12, 8), (8, 6), (6, 10)]
    expected = [0.1 * np.abs(w).sum() for w in ws]
    np.testing.assert_allclose([float(loss) for loss in model.losses], expected, rtol=1e-5)
    np.testing.assert_allclose(float(regularization(model)), sum(expected), rtol=1e-5)
    for layer in model.layers:
        if isinstance(layer, Linear):
            assert type(layer.kernel_regularizer) is L1


def test_mlp_l1_and_lambda_give_the_elastic_net_and_batch_norm_is_not_penalised():
    model = mlp(hidden=(8,), input_dim=12, batch_norm=True, l1=0.1, lam=0.05, seed=1)
    ws = kernels(model)
    expected = sum(0.1 * np.abs(w).sum() + 0.05 * (w ** 2).sum() for w in ws)
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(regularization(model)), expected, rtol=1e-5)
    regularizer = model.get_layer("linear_1").kernel_regularizer
    assert type(regularizer) is ElasticNet
    assert regularizer.get_config() == {"l1": 0.1, "l2": 0.05}


def test_lambda_alone_still_uses_keras_l2_and_no_penalty_gives_none():
    model = mlp(hidden=(8,), input_dim=12, lam=0.05, seed=0)
    for name in ("linear_1", "linear_2"):
        regularizer = model.get_layer(name).kernel_regularizer
        assert type(regularizer) is keras.regularizers.L2
        assert regularizer.get_config() == {"l2": 0.05}
    assert model.get_layer("linear_1").kernel_regularizer is not \
        model.get_layer("linear_2").kernel_regularizer
    assert mlp(hidden=(8,), input_dim=12, seed=0).losses == []
    assert mlp(hidden=(8,), input_dim=12, l1=0.0, lam=0.0, seed=0).losses == []


@pytest.mark.parametrize("l1, lam, kind", [(0.0, 0.3, keras.regularizers.L2), (0.2, 0.0, L1),
                                           (0.2, 0.3, ElasticNet)])
def test_linear_classifier_penalties(l1, lam, kind):
    model = linear_classifier(input_dim=6, l1=l1, lam=lam, seed=0)
    assert type(model.get_layer("linear").kernel_regularizer) is kind
    (w,) = kernels(model)
    (penalty,) = model.losses
    assert float(penalty) == pytest.approx(l1 * np.abs(w).sum() + lam * (w ** 2).sum(),
                                           rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"l1": -0.1}, "l1 must be a non-negative"), ({"l1": float("nan")}, "l1 must be"),
    ({"l1": float("inf"), "lam": 0.1}, "l1 must be"), ({"lam": -1.0, "l1": 0.1}, "lambda"),
    ({"lam": float("nan")}, "lambda"),
])
def test_builders_refuse_bad_penalties(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlp(hidden=(4,), input_dim=3, **kwargs)
    with pytest.raises(ValueError, match=message):
        linear_classifier(input_dim=3, **kwargs)

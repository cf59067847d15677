import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import InMemoryBatches, batched, chain, random_flip, random_shift
from kcourse.losses import MulticlassSVM, SoftmaxCrossEntropy
from kcourse.tracks.cifar_mlp.models import linear_classifier
from kcourse.training import evaluate, fit, make_chunk
from kcourse.training.steps import DatasetBatches


def blobs(n=600, d=8, k=3, seed=0):
    """Separable Gaussian blobs as an unbatched (x, one-hot y) dataset."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centers = rng.normal(size=(k, d)) * 3
    x = (centers[labels] + rng.normal(size=(n, d))).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, np.eye(k, dtype="float32")[labels]))


def model_for(seed=0, lam=0.0):
    return linear_classifier(input_dim=8, num_classes=3, lam=lam, seed=seed)


@pytest.mark.parametrize("loss_fn", [SoftmaxCrossEntropy(), MulticlassSVM()])
def test_fit_learns_separable_data(loss_fn):
    data = blobs()
    model = model_for()
    before = evaluate(model, loss_fn, batched(data, 100))
    history = fit(model, loss_fn, batched(data, 50, shuffle_seed=0), batched(data, 100),
                  optimizer=keras.optimizers.SGD(0.05), epochs=5, verbose=0)
    after = evaluate(model, loss_fn, batched(data, 100))
    assert after["accuracy"] > 0.95 > before["accuracy"]
    assert after["loss"] < before["loss"]
    assert len(history) == 6  # the start and one point per epoch
    assert history.last["val_accuracy"] == pytest.approx(after["accuracy"])
    assert history.stopped is None


def test_cost_adds_the_weight_penalty():
    data = batched(blobs(), 100)
    model = model_for(lam=0.5)
    result = evaluate(model, SoftmaxCrossEntropy(), data)
    w = model.get_layer("linear").kernel.numpy()
    assert result["cost"] - result["loss"] == pytest.approx(0.5 * (w ** 2).sum(), rel=1e-4)


def test_train_chunk_traces_once_across_chunks_and_epochs():
    model = model_for()
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(model.trainable_variables)
    source = DatasetBatches(batched(blobs(610), 100, shuffle_seed=0))  # 7 batches
    chunk = make_chunk(model, SoftmaxCrossEntropy(), optimizer, source)
    for _ in range(3):  # three epochs, each a new iterator, chunks of 3, 3 and 1
        iterator = source.epoch_data(None)
        for first, n in ((0, 3), (3, 3), (6, 1)):
            chunk(iterator, tf.constant(first, tf.int64), tf.constant(n, tf.int64))
    assert chunk.experimental_get_tracing_count() == 1
    assert int(optimizer.iterations) == 21
    source = InMemoryBatches(blobs(610), 100, seed=0)  # gathered in the graph
    chunk = make_chunk(model, SoftmaxCrossEntropy(), optimizer, source)
    orders = source.orders()
    for _ in range(3):
        order = source.epoch_data(orders)
        for first, n in ((0, 3), (3, 3), (6, 1)):
            chunk(order, tf.constant(first, tf.int64), tf.constant(n, tf.int64))
    assert chunk.experimental_get_tracing_count() == 1
    assert int(optimizer.iterations) == 42


def test_in_memory_batches_train_on_the_same_batches_as_the_tf_data_pipeline():
    """`InMemoryBatches` gathers each batch inside the compiled step from one
    permutation per epoch; `batched(..., shuffle_seed)` yields the same batches through
    tf.data. Same batches, so bit-identical weights."""
    weights = []
    for data in (InMemoryBatches(blobs(610), 100, seed=3),
                 batched(blobs(610), 100, shuffle_seed=3)):  # 7 batches, last of 10
        model = model_for(seed=0)
        fit(model, SoftmaxCrossEntropy(), data, optimizer=keras.optimizers.SGD(0.05),
            epochs=3, eval_every=4, train_eval=False, verbose=0)  # chunks cut at 4, 8, ...
        weights.append(model.get_layer("linear").kernel.numpy())
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], model_for(seed=0).get_layer("linear").kernel.numpy())


def images(n=200, seed=0):
    """Random 32x32x3 'images' (flattened) whose class is their mean colour's channel."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32 * 32 * 3)).astype("float32")
    labels = x.reshape(n, -1, 3).mean(1).argmax(1)
    return tf.data.Dataset.from_tensor_slices((x, np.eye(3, dtype="float32")[labels]))


@pytest.mark.parametrize("augmented", [False, True])
def test_a_resumed_shuffled_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path,
                                                                            augmented):
    """The epoch orders of an `InMemoryBatches` restart at the checkpoint's epoch, and
    its augmentation's random state is checkpointed with it."""
    def run(out, callbacks=None):
        keras.utils.set_random_seed(0)
        model = linear_classifier(input_dim=3072, num_classes=3, seed=0)
        augment = chain(random_flip(1), random_shift(2, 3)) if augmented else None
        history = fit(model, SoftmaxCrossEntropy(), InMemoryBatches(images(), 50, 1, augment),
                      batched(images(100, 1), 100), optimizer=keras.optimizers.SGD(0.01),
                      epochs=4, out_dir=out, callbacks=callbacks, verbose=0)
        return model.get_layer("linear").kernel.numpy(), history.rows

    full_weights, full_rows = run(str(tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "cut"), callbacks=[Interrupt(at_epoch=1)])
    weights, rows = run(str(tmp_path / "cut"))
    np.testing.assert_array_equal(weights, full_weights)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in full_rows]


def test_eval_every_and_learning_rate_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 6, 0.5, staircase=True)
    history = fit(model_for(), SoftmaxCrossEntropy(), batched(blobs(), 100, shuffle_seed=1),
                  optimizer=keras.optimizers.SGD(schedule), epochs=2, eval_every=2,
                  steps_per_execution=5, verbose=0)
    assert [row["step"] for row in history.rows] == [0, 2, 4, 6, 8, 10, 12]
    lrs = history.column("learning_rate")
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.025)


def test_nan_loss_stops_early_with_a_message_and_the_last_finite_weights(capsys):
    x = np.full((200, 8), 1e18, "float32")
    y = np.eye(3, dtype="float32")[np.zeros(200, int)]
    data = tf.data.Dataset.from_tensor_slices((x, y))
    history_model = model_for()
    history = fit(history_model, SoftmaxCrossEntropy(), batched(data, 50),
                  optimizer=keras.optimizers.SGD(1e30), epochs=20, verbose=0)
    assert history.stopped and "learning rate" in history.stopped and history.diverged
    assert "Training diverged" in capsys.readouterr().out
    assert history.last["diverged"] and np.isfinite(history.last["train_loss"])
    for w in history_model.get_weights():  # the last finite weights, not NaN
        assert np.isfinite(w).all()
    assert history.last["epoch"] < 20


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_to_the_same_weights(tmp_path):
    data = batched(blobs(), 100)  # fixed order: the uninterrupted run is reproducible

    def run(out, epochs, callbacks=None):
        keras.utils.set_random_seed(0)
        model = model_for(seed=0)
        history = fit(model, SoftmaxCrossEntropy(), data, data, out_dir=out,
                      optimizer=keras.optimizers.SGD(0.01, momentum=0.9), epochs=epochs,
                      callbacks=callbacks, verbose=0)
        return model, history

    full_model, full_history = run(str(tmp_path / "full"), 4)
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "cut"), 4, callbacks=[Interrupt(at_epoch=1)])
    resumed_model, resumed_history = run(str(tmp_path / "cut"), 4)
    np.testing.assert_allclose(resumed_model.get_layer("linear").kernel.numpy(),
                               full_model.get_layer("linear").kernel.numpy(), rtol=1e-6)
    assert [r["epoch"] for r in resumed_history.rows] == [0, 1, 2, 3, 4]
    assert resumed_history.history["epoch"] == [0, 1, 2, 3, 4]  # Keras' History.history
    assert resumed_history.last["val_loss"] == pytest.approx(full_history.last["val_loss"])


def test_fit_drives_keras_callbacks():
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

    data = batched(blobs(), 100)
    fit(model_for(), SoftmaxCrossEntropy(), data, data, optimizer=keras.optimizers.Adam(0.01),
        epochs=2, callbacks=[Record()], verbose=0)
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert seen[0][1] == ["accuracy", "cost", "loss", "val_accuracy", "val_cost", "val_loss"]


def test_fit_rejects_bad_arguments():
    data = batched(blobs(), 100)
    with pytest.raises(ValueError, match="epochs"):
        fit(model_for(), SoftmaxCrossEntropy(), data, optimizer=keras.optimizers.SGD(), epochs=0)
    with pytest.raises(ValueError, match="known, non-zero"):
        fit(model_for(), SoftmaxCrossEntropy(), data.repeat(), optimizer=keras.optimizers.SGD(),
            epochs=1)


def test_a_loss_above_the_bound_is_divergence_too():
    history = fit(model_for(), SoftmaxCrossEntropy(), batched(blobs(), 50),
                  optimizer=keras.optimizers.SGD(0.05), epochs=2, max_loss=1e-3, verbose=0)
    assert history.diverged and "above the bound 0.001" in history.stopped


def test_augmenting_in_the_graph_draws_what_the_tf_data_pipeline_draws():
    weights = []
    for make in (lambda a: InMemoryBatches(images(), 50, 3, a),
                 lambda a: batched(images(), 50, shuffle_seed=3, augment=a)):
        model = linear_classifier(input_dim=3072, num_classes=3, seed=0)
        fit(model, SoftmaxCrossEntropy(), make(chain(random_flip(1), random_shift(2, 3))),
            optimizer=keras.optimizers.SGD(0.01), epochs=3, train_eval=False, verbose=0)
        weights.append(model.get_layer("linear").kernel.numpy())
    np.testing.assert_array_equal(weights[0], weights[1])


def test_a_dict_output_model_trains_through_the_same_step_with_a_composite_loss():
    """The step calls `loss_fn(y, outputs)`: outputs may be a dict, the loss composite."""
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, "relu")(inputs)
    model = keras.Model(inputs, {"class": keras.layers.Dense(3)(hidden),
                                 "size": keras.layers.Dense(1)(hidden)})
    ce = SoftmaxCrossEntropy()

    def composite(y, outputs):
        return ce(y, outputs["class"]) + tf.reduce_mean(tf.square(outputs["size"] - 1.0))

    history = fit(model, composite, batched(blobs(), 50, shuffle_seed=0), batched(blobs(), 100),
                  optimizer=keras.optimizers.SGD(0.05), epochs=3, metrics=[], verbose=0)
    assert history.last["val_loss"] < 0.5 * history.rows[0]["val_loss"]

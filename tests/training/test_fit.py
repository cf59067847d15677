import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import InMemoryBatches, batched, chain, random_flip, random_shift
from kcourse.errors import SettingError
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


def event_tags(directory):
    """The scalar tags of the TensorBoard event files in `directory`, read by
    TensorBoard's own reader (tf.summary writes them as tensors)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = EventAccumulator(str(directory)).Reload().Tags()
    return set(tags["scalars"]) | set(tags["tensors"])


def test_tensorboard_logs_are_in_the_layout_of_keras_tensorboard(tmp_path):
    """train/ and validation/ share the tags (one chart for both curves)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 120)]
    data = batched(tf.data.Dataset.from_tensor_slices((x, y)), 40)
    fit(model_for(), SoftmaxCrossEntropy(), data, data, optimizer=keras.optimizers.SGD(0.1),
        epochs=2, out_dir=str(tmp_path), verbose=0)
    train, validation = event_tags(tmp_path / "logs" / "train"), event_tags(
        tmp_path / "logs" / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss"} <= train
    assert {"epoch_loss", "epoch_accuracy"} <= validation
    assert not any(t.startswith(("train_", "val_")) for t in train | validation)
    assert not [p for p in (tmp_path / "logs").iterdir() if p.is_file()]  # no flat files


def test_char_rnn_runs_write_train_and_validation_logs(tmp_path):
    from kcourse.data.text import Vocabulary
    from kcourse.optimizers import AdaGrad
    from kcourse.tracks.char_rnn.model import CharModel
    from kcourse.tracks.char_rnn.train import fit_chars

    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 10
    vocab = Vocabulary.from_text(text)
    model = CharModel(len(vocab), "vanilla", 8, seed=0)
    model.build()
    fit_chars(model, AdaGrad(0.1), vocab.encode(text), updates=20, seq_length=10,
              log_every=10, eval_every=10, val_ids=vocab.encode(text[:200]),
              out_dir=str(tmp_path), verbose=0)
    assert {"smooth_loss", "batch_loss", "epoch_learning_rate"} <= event_tags(
        tmp_path / "logs" / "train")
    assert event_tags(tmp_path / "logs" / "validation") == {"epoch_loss_per_char"}


def test_fit_returns_a_keras_like_history():
    data = batched(blobs(), 100)
    history = fit(model_for(), SoftmaxCrossEntropy(), data, data,
                  optimizer=keras.optimizers.SGD(0.05), epochs=3, verbose=0)
    logs = history.history
    assert isinstance(logs, dict)
    for key in ("val_accuracy", "val_loss", "train_accuracy", "learning_rate", "epoch"):
        assert isinstance(logs[key], list) and len(logs[key]) == 4  # start + 3 epochs
    assert all(isinstance(v, float) for v in logs["val_accuracy"])
    assert logs["epoch"] == [0, 1, 2, 3]
    assert logs["loss"][0] is None and all(isinstance(v, float) for v in logs["loss"][1:])


def fit_in(out, lr=0.05, epochs=2, resume=True, model=None, verbose=0):
    keras.utils.set_random_seed(0)
    model = model or model_for(seed=0)
    history = fit(model, SoftmaxCrossEntropy(), batched(blobs(), 100), batched(blobs(), 100),
                  optimizer=keras.optimizers.SGD(lr), epochs=epochs, out_dir=out,
                  resume=resume, verbose=verbose)
    return model, history


def test_resuming_refuses_checkpoints_of_other_settings(tmp_path, capsys):
    out = str(tmp_path)
    model, history = fit_in(out)
    with pytest.raises(SettingError) as error:
        fit_in(out, lr=0.1)
    message = str(error.value)
    assert "optimizer.config.learning_rate: 0.05" in message and "-> 0.1" in message
    assert "resume='force'" in message and "another out_dir" in message
    with pytest.raises(SettingError, match="updates: 12 done -> 6"):
        fit_in(out, epochs=1)  # fewer updates than done
    # the same settings (a model built again, its layers numbered anew): resumed
    _, again = fit_in(out, verbose=1)
    assert "Resumed from" in capsys.readouterr().out
    assert again.rows == history.rows
    _, longer = fit_in(out, epochs=3)  # more epochs: it trains on
    assert longer.rows[:3] == history.rows and len(longer.rows) == 4


def test_resume_force_continues_with_the_new_settings(tmp_path):
    out = str(tmp_path)
    fit_in(out)
    _, forced = fit_in(out, lr=0.1, epochs=3, resume="force")
    assert [r["epoch"] for r in forced.rows] == [0, 1, 2, 3]
    assert forced.rows[2]["learning_rate"] == pytest.approx(0.05)
    assert forced.rows[3]["learning_rate"] == pytest.approx(0.1)
    _, again = fit_in(out, lr=0.1, epochs=3)  # the new settings are the run's now
    assert again.rows == forced.rows


def test_resume_false_starts_again_from_scratch(tmp_path):
    out = str(tmp_path)
    fit_in(out, epochs=3)
    model, fresh = fit_in(out, lr=0.1, epochs=2, resume=False)
    assert [r["epoch"] for r in fresh.rows] == [0, 1, 2]
    assert all(r["learning_rate"] == pytest.approx(0.1) for r in fresh.rows)
    reference, _ = fit_in(str(tmp_path / "other"), lr=0.1, epochs=2)
    np.testing.assert_array_equal(model.get_layer("linear").kernel.numpy(),
                                  reference.get_layer("linear").kernel.numpy())
    _, resumed = fit_in(out, lr=0.1, epochs=2)  # resumes the new run, not the old one
    assert resumed.rows == fresh.rows


def test_checkpoints_without_settings_still_resume(tmp_path):
    """Checkpoints of an older kcourse have no settings.json."""
    out = str(tmp_path)
    _, history = fit_in(out)
    os.remove(os.path.join(out, "checkpoints", "settings.json"))
    _, resumed = fit_in(out)
    assert resumed.rows == history.rows
    assert os.path.exists(os.path.join(out, "checkpoints", "settings.json"))


def test_settings_ignore_the_names_keras_numbers_per_process(tmp_path):
    def sequential():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                                 keras.layers.Dense(3)])

    out = str(tmp_path)
    fit_in(out, model=sequential())
    fit_in(out, model=sequential())  # dense_2, dense_3, sgd_1: the same settings
    wider = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(3)])
    with pytest.raises(SettingError, match="units: 4 -> 5"):
        fit_in(out, model=wider)

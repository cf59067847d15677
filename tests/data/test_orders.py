import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import BalancedSampler, InMemory, InMemoryBatches, balanced_orders

LABELS = np.repeat(np.arange(4), [40, 7, 13, 9])


def epochs(labels, seed, count, **kwargs):
    return [o.numpy() for o in balanced_orders(labels, seed, **kwargs).take(count)]


def test_every_epoch_draws_the_smallest_class_size_of_every_class_without_repeats():
    for order in epochs(LABELS, 3, 20):
        assert len(order) == 4 * 7
        assert len(set(order.tolist())) == len(order)  # without replacement
        np.testing.assert_array_equal(np.bincount(LABELS[order], minlength=4), [7] * 4)


def test_draws_cover_each_class_uniformly_and_orders_differ():
    orders = epochs(LABELS, 5, 400)
    counts = np.bincount(np.concatenate(orders), minlength=len(LABELS))
    # class 0: each of its 40 names is drawn with probability 7/40 per epoch
    expected = 400 * 7 / 40
    assert abs(counts[:40].mean() - expected) < 1e-9  # exactly 7 per epoch in all
    assert counts[:40].std() < 0.35 * expected  # binomial sd ~7.6 of 70; uniform-ish
    np.testing.assert_array_equal(counts[40:47], 400)  # the smallest class: every epoch
    assert len({tuple(o) for o in orders}) == 400
    # positions are shuffled: the first position is not always of the same class
    assert len(set(LABELS[[o[0] for o in orders]])) == 4


def test_per_class_and_several_draws_per_epoch():
    for order in epochs(LABELS, 1, 5, per_class=3, draws=4):
        np.testing.assert_array_equal(np.bincount(LABELS[order], minlength=4), [12] * 4)
    sampler = BalancedSampler(LABELS, draws=2)
    assert sampler.size == 2 * 4 * 7


def test_same_seed_same_orders_and_skip_resumes_exactly():
    first = epochs(LABELS, 9, 6)
    np.testing.assert_array_equal(np.stack(first), np.stack(epochs(LABELS, 9, 6)))
    skipped = [o.numpy() for o in balanced_orders(LABELS, 9).skip(4).take(2)]
    np.testing.assert_array_equal(np.stack(skipped), np.stack(first[4:]))
    assert not np.array_equal(first[0], epochs(LABELS, 10, 1)[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"per_class": 8}, "per_class"), ({"per_class": 0}, "per_class"),
    ({"draws": 0}, "draws")])
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        balanced_orders(LABELS, 0, **kwargs)
    with pytest.raises(ValueError, match="integer"):
        balanced_orders(np.array([0.5, 1.0]), 0)


def test_in_memory_batches_with_a_sampler_gives_balanced_epochs():
    x = tf.constant(np.arange(len(LABELS), dtype=np.float32)[:, None])
    y = tf.constant(np.eye(4, dtype=np.float32)[LABELS])
    batches = InMemoryBatches(InMemory(x, y), 5, seed=2, sampler=BalancedSampler(LABELS))
    assert batches.steps_per_epoch == 6  # 28 examples per epoch in batches of 5
    orders = batches.orders()
    order = batches.epoch_data(orders)
    seen = np.concatenate([batches.batch(order, 0, k)[1].numpy().argmax(1)
                           for k in range(batches.steps_per_epoch)])
    np.testing.assert_array_equal(np.bincount(seen, minlength=4), [7] * 4)
    # the tf.data view gives the same batches
    first = next(iter(batches.as_dataset()))
    np.testing.assert_array_equal(first[0].numpy(), batches.batch(order, 0, 0)[0].numpy())


def test_a_missing_class_or_labels_of_other_data_are_refused():
    with pytest.raises(ValueError, match="every one of the 5 classes"):
        BalancedSampler(LABELS, num_classes=5)
    sampler = BalancedSampler.one_pass(LABELS, num_classes=4)
    assert sampler.draws == round(len(LABELS) / 28) and sampler.size == 28 * sampler.draws
    x = tf.zeros((10, 1))
    with pytest.raises(ValueError, match="labels of 69 examples, the data 10"):
        InMemoryBatches(InMemory(x, tf.zeros((10, 4))), 5, 0, sampler=sampler)


def test_the_epoch_orders_iterator_is_not_autotuned():
    """Deleting an autotuned iterator at the end of training waited for tf.data's
    autotune thread, 10 to 30 s per training run (see README, Tuning at scale)."""
    x = tf.zeros((10, 3))
    y = tf.zeros((10,), tf.int32)
    for sampler in (None, BalancedSampler(np.arange(10) % 2)):
        orders = InMemoryBatches(InMemory(x, y), 5, 0, sampler=sampler).orders()
        assert orders._dataset.options().autotune.enabled is False
        first = next(orders).numpy()
        assert len(first) == (10 if sampler is None else sampler.size)
        if sampler is None:
            assert sorted(first.tolist()) == list(range(10))

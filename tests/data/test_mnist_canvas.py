import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import write_idx
from kcourse.data.mnist_canvas import (BOX_THRESHOLD, CELL, EMPTY_RATE, GRID, HEIGHT,
                                       MNIST_FILES, WIDTH, DataNotFoundError,
                                       KcourseMnistDetection, KcourseMnistLocalization,
                                       canvas_rng, detection_candidates, detection_example,
                                       load_mnist_canvases, localization_canvas,
                                       localization_example, mnist_canvas_builder,
                                       mnist_pools, read_idx, read_mnist, transform_digit)

REPO = Path(__file__).resolve().parents[2]
FILE_NAMES = sum(MNIST_FILES.values(), ())


# ----------------------------------------------------------------------------- fake files



def fake_digits(n, rng):
    """`n` 28x28 'digits': hollow rectangles of random size and place (255) with a faint
    halo (40) beside them, and labels 0, 1, 2, 0, 1, 2, ..."""
    images = np.zeros((n, 28, 28), np.uint8)
    for image in images:
        h, w = rng.integers(8, 21, 2)
        top, left = rng.integers(2, 27 - h), rng.integers(2, 27 - w)
        image[top:top + h, left:left + w] = 255
        image[top + 2:top + h - 2, left + 2:left + w - 2] = 0
        image[top - 1, left:left + w] = 40  # below the box threshold
    return images, np.arange(n) % 3


def write_fake_mnist(root, num_train=60, num_test=20, seed=0):
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", num_train), ("test", num_test)):
        images, labels = fake_digits(n, rng)
        write_idx(root / MNIST_FILES[split][0], images)
        write_idx(root / MNIST_FILES[split][1], labels)
        data[split] = (images, labels)
    return data


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist_canvas")
    data = write_fake_mnist(root / "manual")
    return {"manual": str(root / "manual"), "tfds": str(root / "tfds"), "data": data}


def real_mnist_dir():
    path = os.environ.get("KCOURSE_DATA_DIR") or str(REPO.parent / "shared" / "data")
    return path if all(os.path.isfile(os.path.join(path, f)) for f in FILE_NAMES) else None


# ----------------------------------------------------------------------------- checks

def pixel_box(box):
    """Canvas-relative (x, y, w, h) -> pixel edges (left, top, right, bottom), checked to
    lie on pixel borders."""
    x, y, w, h = box
    edges = np.array([(x - w / 2) * WIDTH, (y - h / 2) * HEIGHT, (x + w / 2) * WIDTH,
                      (y + h / 2) * HEIGHT])
    np.testing.assert_allclose(edges, np.rint(edges), atol=1e-4)
    return tuple(int(v) for v in np.rint(edges))


def check_inside(box):
    x, y, w, h = box
    assert w > 0 and h > 0
    assert x - w / 2 >= -1e-6 and x + w / 2 <= 1 + 1e-6
    assert y - h / 2 >= -1e-6 and y + h / 2 <= 1 + 1e-6


def check_tight(mask, left, top, right, bottom):
    """Every edge of the box touches a digit pixel."""
    inside = mask[top:bottom, left:right]
    assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()


def check_localization(example):
    image, label = example["image"][..., 0], example["label"]
    assert image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint8
    mask = image >= BOX_THRESHOLD  # noise stays below: these are the digit's pixels
    if label[0] == 0:
        assert not mask.any() and example["mnist_index"] == -1
        np.testing.assert_array_equal(label, np.zeros(6))
        return
    assert label[0] == 1
    check_inside(label[1:5])
    left, top, right, bottom = pixel_box(label[1:5])
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert (left, top, right, bottom) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)


def check_detection(example, split_pool):
    image, grid, objects = example["image"][..., 0], example["label"], example["objects"]
    mask = image >= BOX_THRESHOLD
    count = len(objects["digit"])
    assert 1 <= count <= 4 and set(objects["digit"]) <= {0, 1}
    assert set(objects["mnist_index"]) <= set(split_pool)
    boxes = [pixel_box(box) for box in objects["box"]]
    covered = np.zeros_like(mask)
    for box, rel in zip(boxes, objects["box"]):
        check_inside(rel)
        check_tight(mask, *box)
        covered[box[1]:box[3], box[0]:box[2]] = True
    assert not (mask & ~covered).any()  # every digit pixel is in a box
    for i, a in enumerate(boxes):  # boxes apart (no overlap)
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    assert grid.shape == GRID + (6,) and grid[..., 0].sum() == count
    for (left, top, right, bottom), digit in zip(boxes, objects["digit"]):
        cx, cy = (left + right) / 2, (top + bottom) / 2
        row, col = int(cy // CELL[0]), int(cx // CELL[1])
        expected = [1, cx / CELL[1] - col, cy / CELL[0] - row, (right - left) / CELL[1],
                    (bottom - top) / CELL[0], digit]
        np.testing.assert_allclose(grid[row, col], expected, atol=1e-6)
        assert 0 <= grid[row, col, 1] < 1 and 0 <= grid[row, col, 2] < 1
    assert not grid[grid[..., 0] == 0].any()  # cells without an object are zeros


def numpy_split(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


# ----------------------------------------------------------------------------- tests

def test_read_idx_and_transform():
    digit = np.zeros((28, 28), np.uint8)
    digit[5:20, 9:14] = 200
    digit[12, 3] = 90
    data = struct.pack(">BBBBii", 0, 0, 8, 2, 28, 28) + digit.tobytes()
    np.testing.assert_array_equal(read_idx(data), digit)  # plain bytes, not gzipped
    np.testing.assert_array_equal(read_idx(gzip.compress(data)), digit)
    with pytest.raises(DataNotFoundError, match="truncated"):
        read_idx(gzip.compress(data[:-3]), "x.gz")
    with pytest.raises(DataNotFoundError, match="not an MNIST idx file"):
        read_idx(b"\x00\x00\x0d\x01abcd")
    # no rotation, no rescale: the digit itself, cropped to its non-zero pixels
    np.testing.assert_array_equal(transform_digit(digit, 0.0, 1.0), digit[5:20, 3:14])
    small = transform_digit(digit, 0.0, 0.5)
    assert abs(small.shape[0] - 8) <= 2 and small.max() >= 150
    turned = transform_digit(digit, 90.0, 1.0)  # a tall bar becomes a wide one
    assert turned.shape[1] > turned.shape[0]


def test_localization_builder_on_fake_files(fake):
    builder = mnist_canvas_builder("localization", fake["manual"], fake["tfds"])
    assert isinstance(builder, KcourseMnistLocalization)
    assert builder.info.name == "kcourse_mnist_localization"
    assert builder.info.supervised_keys == ("image", "label")
    sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
    assert sizes == {"train": 54, "validation": 6, "test": 20}  # one per MNIST image
    images, labels = fake["data"]["train"]
    seen = {}
    for split in sizes:
        examples = numpy_split(builder, split)
        file_labels = fake["data"]["test" if split == "test" else "train"][1]
        for example in examples:
            check_localization(example)
            if example["label"][0]:
                assert example["label"][5] == file_labels[example["mnist_index"]]
        seen[split] = {int(e["mnist_index"]) for e in examples} - {-1}
    assert not seen["train"] & seen["validation"]  # no MNIST image in two splits
    pools = mnist_pools(60, 20)
    assert seen["train"] <= set(pools["train"]) and seen["validation"] <= set(pools["validation"])
    # the stored canvases are the generator's, canvas by canvas (order-independent)
    mnist = read_mnist({name: Path(fake["manual"]) / name for name in FILE_NAMES})
    for index in (5, 0, 53):
        direct = localization_example(mnist, pools, "train", index)
        stored = numpy_split(builder, f"train[{index}:{index + 1}]")[0]
        np.testing.assert_array_equal(direct["image"], stored["image"])
        np.testing.assert_array_equal(direct["label"], stored["label"])


def test_determinism_limit_and_seed(fake, tmp_path):
    full = load_mnist_canvases("localization", fake["manual"], fake["tfds"])
    quick = load_mnist_canvases("localization", fake["manual"], str(tmp_path / "a"), limit=8)
    again = load_mnist_canvases("localization", fake["manual"], str(tmp_path / "b"), limit=8)
    other = load_mnist_canvases("localization", fake["manual"], str(tmp_path / "a"), limit=8,
                                seed=7)
    assert quick.sizes() == {"train": 8, "validation": 6, "test": 8}
    for split in quick.splits:
        np.testing.assert_array_equal(quick.x[split], again.x[split])
        np.testing.assert_array_equal(quick.y[split], again.y[split])
        n = len(quick.y[split])  # a limit build is a prefix of the full one
        np.testing.assert_array_equal(quick.x[split], full.x[split][:n])
        np.testing.assert_array_equal(quick.y[split], full.y[split][:n])
    assert not np.array_equal(quick.x["train"], other.x["train"])
    assert quick.x["train"].dtype == np.float32 and quick.x["train"].shape[1:] == (48, 60, 1)
    assert 0 <= quick.x["train"].min() and quick.x["train"].max() <= 1


def test_empty_canvases_at_the_stated_rate():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 10:16] = 255
    n = 3000
    empty = 0
    for index in range(n):
        image, label, has_digit = localization_canvas(digit, 4, canvas_rng(265, "train", index))
        empty += not has_digit
        assert (label[0] == 1) == has_digit
    sigma = np.sqrt(EMPTY_RATE * (1 - EMPTY_RATE) / n)
    assert abs(empty / n - EMPTY_RATE) < 4 * sigma


def test_detection_builder_on_fake_files(fake):
    builder = mnist_canvas_builder("detection", fake["manual"], fake["tfds"], limit=12)
    assert isinstance(builder, KcourseMnistDetection)
    assert builder.info.name == "kcourse_mnist_detection"
    pools = mnist_pools(60, 20)
    counts, seen = [], {}
    for split in ("train", "validation", "test"):
        examples = numpy_split(builder, split)
        assert len(examples) == 12
        file_labels = fake["data"]["test" if split == "test" else "train"][1]
        for example in examples:
            check_detection(example, pools[split])
            np.testing.assert_array_equal(example["objects"]["digit"],
                                          file_labels[example["objects"]["mnist_index"]])
            counts.append(len(example["objects"]["digit"]))
        seen[split] = {int(i) for e in examples for i in e["objects"]["mnist_index"]}
    assert not seen["train"] & seen["validation"]
    assert set(counts) == {1, 2, 3, 4}
    mnist = read_mnist({name: Path(fake["manual"]) / name for name in FILE_NAMES})
    direct = detection_example(detection_candidates(mnist, pools, "test"), "test", 3)
    stored = numpy_split(builder, "test[3:4]")[0]
    np.testing.assert_array_equal(direct["image"], stored["image"])
    np.testing.assert_array_equal(direct["label"], stored["label"])
    splits = load_mnist_canvases("detection", fake["manual"], fake["tfds"], limit=12)
    assert splits.y["train"].shape == (12, 2, 3, 6)


def test_missing_or_damaged_files_give_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    partial = tmp_path / "partial"
    write_fake_mnist(partial, 10, 5)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as error:
        mnist_canvas_builder("localization", str(partial), str(tmp_path / "tfds"))
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "train-images-idx3-ubyte.gz" in message
    assert "--data-dir PATH" in message and "KCOURSE_DATA_DIR" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="KCOURSE_DATA_DIR"):
        mnist_canvas_builder("detection", str(tmp_path / "empty"), str(tmp_path / "tfds"))
    write_idx(partial / "t10k-labels-idx1-ubyte.gz", np.zeros(4))  # 4 labels, 5 images
    with pytest.raises(DataNotFoundError, match="labels for the 5 images"):
        mnist_canvas_builder("localization", str(partial), str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match="Unknown canvas task"):
        mnist_canvas_builder("segmentation", fake["manual"], fake["tfds"])
    with pytest.raises(ValueError, match="limit"):
        mnist_canvas_builder("localization", fake["manual"], fake["tfds"], limit=0)


def test_real_mnist_files_build_a_few_canvases(tmp_path):
    root = real_mnist_dir()
    if root is None:
        pytest.skip("the MNIST idx files are not in $KCOURSE_DATA_DIR or ../shared/data")
    mnist = read_mnist({name: Path(root) / name for name in FILE_NAMES})
    assert mnist["train"][0].shape == (60000, 28, 28) and mnist["test"][0].shape == (10000, 28, 28)
    np.testing.assert_array_equal(mnist["train"][1][:5], [5, 0, 4, 1, 9])  # the file order
    loc = mnist_canvas_builder("localization", root, str(tmp_path), limit=16)
    for example in numpy_split(loc, "train") + numpy_split(loc, "test"):
        check_localization(example)
    det = mnist_canvas_builder("detection", root, str(tmp_path), limit=8)
    pools = mnist_pools(60000, 10000)
    for example in numpy_split(det, "validation"):
        check_detection(example, pools["validation"])

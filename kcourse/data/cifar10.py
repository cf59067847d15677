"""A TFDS builder for CIFAR-10 in its original python batches.

TFDS's catalog `cifar10` reads the *binary* archive and merges the five training
batches; the course needs the batches themselves (Assignment 1 trains on batch 1 and
validates on batch 2), in their original order. This builder keeps them as splits
`data_batch_1` ... `data_batch_5` and `test_batch`.

Online it downloads the official python archive (checksum in `checksums.tsv` beside
this file). Offline it reads `cifar-10-batches-py/` (or the archive) from the TFDS
manual directory, which kcourse takes from `--data-dir` or `KCOURSE_DATA_DIR`.
"""

import os
import pickle
import socket
import urllib.parse

import numpy as np
import tensorflow_datasets as tfds

from kcourse.errors import DataNotFoundError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
SPLITS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
          "test_batch")
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck")
ENV_VAR = "KCOURSE_DATA_DIR"


def missing_data_message(what, manual_dir, expected):
    where = f"in {manual_dir}" if manual_dir else "(no data directory given)"
    return (
        f"{what} not found {where} and the download is not reachable (offline?). "
        f"Expected {expected}. Point kcourse at a directory that holds them with "
        f"--data-dir PATH or the environment variable {ENV_VAR}=PATH."
    )


def online(url, timeout=3.0):
    """True when a TCP connection to the host of `url` opens within `timeout` seconds."""
    if os.environ.get("KCOURSE_OFFLINE") == "1":
        return False
    host = urllib.parse.urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def manual_dir_of(dl_manager):
    try:
        return dl_manager.manual_dir
    except (AssertionError, ValueError):  # no manual dir given, or it is empty
        return None


def manual_dir_name(dl_manager):
    """The manual directory as given, even when empty (for error messages)."""
    return manual_dir_of(dl_manager) or getattr(dl_manager, "_manual_dir", None)


class KcourseCifar10(tfds.core.GeneratorBasedBuilder):
    """CIFAR-10 as its six original batches, images in their original order."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The six python batches as splits, original order."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put the folder `{FOLDER}/` (data_batch_1..5, test_batch, batches.meta) or the "
        f"archive `{ARCHIVE}` from {URL} in the manual directory."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            description="CIFAR-10, 60,000 32x32 colour images in 10 classes, kept as the "
                        "five training batches and the test batch of the python version.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(32, 32, 3)),
                "label": tfds.features.ClassLabel(names=CLASS_NAMES),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation="Krizhevsky, A. (2009). Learning Multiple Layers of Features from "
                     "Tiny Images. Tech. report, University of Toronto.",
        )

    def _split_generators(self, dl_manager):
        manual = manual_dir_of(dl_manager)
        if manual is not None and (manual / FOLDER).is_dir():
            root = manual / FOLDER
        else:
            has_archive = manual is not None and (manual / ARCHIVE).exists()
            if not has_archive and not online(URL):
                raise DataNotFoundError(missing_data_message(
                    "CIFAR-10", manual_dir_name(dl_manager), f"a folder {FOLDER}/ with "
                    f"{', '.join(SPLITS)} (or the archive {ARCHIVE})"))
            root = dl_manager.download_and_extract(URL) / FOLDER  # uses the manual archive
        missing = [name for name in SPLITS if not (root / name).exists()]
        if missing:
            raise DataNotFoundError(f"{root} lacks the batch files {', '.join(missing)}.")
        return {name: self._generate_examples(root / name) for name in SPLITS}

    def _generate_examples(self, path):
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        # each row is 3072 bytes: the R, G and B planes of a 32x32 image, row-major
        images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        images = images.transpose(0, 2, 3, 1)
        labels = np.asarray(batch[b"labels"])
        if len(labels) != len(images) or labels.min() < 0 or labels.max() >= len(CLASS_NAMES):
            raise ValueError(f"{path.name} has {len(images)} images and labels "
                             f"{labels.min()}..{labels.max()} (need one label in 0..9 each)")
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}

"""Text for character-level language models: TFDS `tiny_shakespeare` or a user's file.

`load_text` returns the train / validation / test texts; `Vocabulary` maps characters
to integer ids (built from the training text, with id 0 for characters it never saw).
"""

import dataclasses
import json
import os

import numpy as np

from kcourse import console
from kcourse.data.cifar10 import missing_data_message, online
from kcourse.errors import DataNotFoundError

TINY_SHAKESPEARE = "tiny_shakespeare"
TINY_SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                        "tinyshakespeare/input.txt")
OOV = "\ufffd"  # how the out-of-vocabulary id decodes


class Vocabulary:
    """Characters <-> integer ids. Id 0 is the out-of-vocabulary id: characters not in
    the training text map to it (and it decodes to U+FFFD); the others follow in
    sorted order.

    Args:
        chars: the known characters (an iterable of single characters, no duplicates).
    """

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        if not self.chars:
            raise ValueError("A vocabulary needs at least one character.")
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        return cls(set(text))

    def __len__(self):
        return len(self.chars) + 1  # with the out-of-vocabulary id

    def encode(self, text):
        """The ids of `text` as an int32 array; unknown characters get id 0."""
        return np.fromiter((self._ids.get(c, 0) for c in text), np.int32, len(text))

    def decode(self, ids):
        table = [OOV] + self.chars
        return "".join(table[int(i)] for i in ids)

    def to_json(self):
        return json.dumps({"oov_id": 0, "chars": self.chars}, ensure_ascii=False)

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f)["chars"])


@dataclasses.dataclass
class TextSplits:
    """The texts of a character-level dataset and its vocabulary (from `train`)."""

    name: str
    train: str
    validation: str
    test: str

    def __post_init__(self):
        self.vocab = Vocabulary.from_text(self.train)


def _tiny_shakespeare(data_dir, tfds_dir):
    import tensorflow_datasets as tfds

    from kcourse.data.splits import resolve_data_dir

    manual = resolve_data_dir(data_dir)
    builder = tfds.builder(TINY_SHAKESPEARE, data_dir=tfds_dir)
    if not builder.is_prepared():
        has_file = manual is not None and os.path.isfile(os.path.join(manual, "input.txt"))
        if not has_file and not online(TINY_SHAKESPEARE_URL):
            raise DataNotFoundError(missing_data_message(
                "tiny_shakespeare", manual, "the file input.txt (1,115,394 characters)"))
        with console.preparing(TINY_SHAKESPEARE):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual))
    texts = {}
    for split in ("train", "validation", "test"):
        (example,) = tfds.as_numpy(builder.as_dataset(split=split))
        texts[split] = example["text"].decode("utf-8")
    return TextSplits(TINY_SHAKESPEARE, **texts)


def _text_file(path):
    path = os.path.expanduser(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataNotFoundError(f"The text file {path} does not exist. Give a UTF-8 text "
                                "file with --text PATH.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataNotFoundError(f"Cannot read {path} as UTF-8 text ({error}). Give a UTF-8 "
                                "text file with --text PATH.") from None
    if len(text) < 1000:
        raise DataNotFoundError(f"{path} holds {len(text)} characters; a character model "
                                "needs at least 1,000 (90% train, 5% validation, 5% test).")
    a, b = int(len(text) * 0.9), int(len(text) * 0.95)  # tiny_shakespeare's proportions
    return TextSplits(os.path.basename(path), text[:a], text[a:b], text[b:])


def load_text(source=TINY_SHAKESPEARE, data_dir=None, tfds_dir=None):
    """The texts of a character-level experiment.

    Args:
        source: `"tiny_shakespeare"` (TFDS catalog dataset, 1,115,394 characters in
            train / validation / test) or the path of a UTF-8 text file, split 90 / 5 / 5
            in its order.
        data_dir: TFDS manual directory holding `input.txt` (default `$KCOURSE_DATA_DIR`;
            when neither is set, TFDS downloads it).
        tfds_dir: TFDS prepared-data directory.

    Returns:
        `TextSplits` with `.train`, `.validation`, `.test` strings and `.vocab`.
    """
    if source == TINY_SHAKESPEARE:
        return _tiny_shakespeare(data_dir, tfds_dir)
    return _text_file(source)


"""Surnames and their language: the data of DD2424 Assignment 3 (2019 edition).

Two configurations of one TFDS builder, `kcourse_surnames`:

- `dd2424`: the course's files `names/dd2424/ascii_names.txt` (20,050 lines "Name label",
  labels 1..18; a name may hold spaces, the label is the last field),
  `category_labels.txt` (the 18 languages, checked against `LANGUAGES`) and
  `Validation_Inds.txt` (252 one-based line numbers, 14 per language). Splits
  `validation` (those lines) and `train` (the other 19,798), both in file order. The
  files are handed out by the course and cannot be downloaded.
- `tutorial`: the PyTorch char-RNN tutorial's `names/<Language>.txt` (20,074 names, UTF-8,
  one per line). Splits `train` / `validation` / `test`: in every language, a random 10%
  (at least one name) goes to validation and another 10% to test, drawn with the fixed
  seed `TUTORIAL_SEED`; every split keeps the order of the files (language by language).
  Online, and without the files, the tutorial's `data.zip` is downloaded.

Names are kept as they are written (case included); labels are 0..17 in the order of
`LANGUAGES`. The files come from the TFDS manual directory (`names/` in it), which
kcourse takes from `--data-dir` or `KCOURSE_DATA_DIR`.

`NameEncoder` encodes names as the course does: lower-cased, one-hot per character over
the alphabet of the training names, zero-padded at the end to the longest training name
(28 symbols and 19 positions for `dd2424`). `GraphNameEncoder` does the same in a
TensorFlow graph, so an exported model can take raw name strings. `load_surnames`
returns the names, labels and encoder of a configuration as a `SurnameSplits`.
"""

import dataclasses
import json
import math

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kcourse import console
from kcourse.data.cifar10 import (ENV_VAR, manual_dir_name, manual_dir_of,
                                  missing_data_message, online)
from kcourse.errors import DataNotFoundError
from kcourse.lookup import static_table

LANGUAGES = ("Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek",
             "Irish", "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian",
             "Scottish", "Spanish", "Vietnamese")
FOLDER = "names"  # under the manual directory
DD2424_FOLDER = "names/dd2424"
DD2424_FILES = ("ascii_names.txt", "category_labels.txt", "Validation_Inds.txt")
TUTORIAL_URL = "https://download.pytorch.org/tutorial/data.zip"
TUTORIAL_SEED = 2424  # the seed of the tutorial config's validation / test draw
TUTORIAL_FRACTIONS = {"validation": 0.1, "test": 0.1}  # of every language, at least 1 name
CONFIGS = ("dd2424", "tutorial")


def _read_text(path):
    """The lines of a UTF-8 text file (line ends removed), or a clear DataNotFoundError."""
    try:
        with path.open("r", encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as error:
        raise DataNotFoundError(f"{path} is not UTF-8 text ({error}).") from None
    except OSError as error:
        raise DataNotFoundError(f"{path} cannot be read ({error}).") from None


def parse_category_labels(path):
    """Check that `category_labels.txt` lists "1 Arabic" ... "18 Vietnamese"."""
    found = []
    for number, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        if len(fields) != 2 or not fields[0].isdigit():
            raise DataNotFoundError(f"{path}, line {number}: {line!r} is not 'number language'.")
        found.append((int(fields[0]), fields[1].strip()))
    expected = list(enumerate(LANGUAGES, 1))
    if found != expected:
        raise DataNotFoundError(
            f"{path} lists the languages {', '.join(f'{k} {n}' for k, n in found)}; kcourse "
            f"expects {', '.join(f'{k} {n}' for k, n in expected)} (the course's order).")


def parse_ascii_names(path):
    """The names and labels (0..17) of `ascii_names.txt`, one "Name label" per line."""
    names, labels = [], []
    for number, line in enumerate(_read_text(path), 1):
        fields = line.strip().rsplit(None, 1)
        if len(fields) != 2 or not fields[1].lstrip("+-").isdigit():
            raise DataNotFoundError(f"{path}, line {number}: {line!r} is not 'Name label' "
                              f"(a name, a space and a label in 1..{len(LANGUAGES)}).")
        label = int(fields[1])
        if not 1 <= label <= len(LANGUAGES):
            raise DataNotFoundError(f"{path}, line {number}: label {label} of {fields[0]!r} is not "
                              f"in 1..{len(LANGUAGES)}.")
        names.append(fields[0])
        labels.append(label - 1)
    if not names:
        raise DataNotFoundError(f"{path} holds no names.")
    return names, labels


def parse_validation_indices(path, num_lines):
    """The one-based line numbers of `Validation_Inds.txt`, checked against the file."""
    indices, seen = [], set()
    for number, line in enumerate(_read_text(path), 1):
        for position, field in enumerate(line.split(), 1):
            where = f"{path}, line {number} (value {position})"
            if not field.isdigit():
                raise DataNotFoundError(f"{where}: {field!r} is not a line number.")
            index = int(field)
            if not 1 <= index <= num_lines:
                raise DataNotFoundError(f"{where}: index {index} is out of range; the names file "
                                  f"has lines 1..{num_lines} (indices are one-based).")
            if index in seen:
                raise DataNotFoundError(f"{where}: index {index} is given twice.")
            seen.add(index)
            indices.append(index)
    if not indices:
        raise DataNotFoundError(f"{path} holds no indices.")
    return indices


def read_tutorial_file(path):
    """The names of one `<Language>.txt` (stripped, empty lines skipped)."""
    return [line.strip() for line in _read_text(path) if line.strip()]


def stratified_split(counts, fractions, seed):
    """For languages with `counts[k]` names each, the split of every name: a dict
    split -> sorted global indices (languages one after the other), `train` the rest.
    Every split of `fractions` gets `max(1, floor(f * n + 0.5))` names of each language,
    drawn by `np.random.default_rng([seed, k])` (so a language's draw does not depend on
    the others)."""
    chosen = {split: [] for split in fractions}
    train, start = [], 0
    for k, n in enumerate(counts):
        sizes = [max(1, int(math.floor(f * n + 0.5))) for f in fractions.values()]
        if sum(sizes) >= n:
            raise DataNotFoundError(f"{LANGUAGES[k]} has {n} names, too few to give each of "
                              f"{', '.join(fractions)} and train at least one.")
        order = np.random.default_rng([seed, k]).permutation(n)
        at = 0
        for split, size in zip(fractions, sizes):
            chosen[split].extend(start + int(i) for i in sorted(order[at:at + size]))
            at += size
        train.extend(start + int(i) for i in sorted(order[at:]))
        start += n
    return {"train": train, **chosen}


class KcourseSurnames(tfds.core.GeneratorBasedBuilder):
    """Surnames and their language (18 languages), DD2424 Assignment 3 and the PyTorch
    char-RNN tutorial."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "dd2424 (the course's files and validation lines) and "
                              "tutorial (a seeded stratified 80/10/10 split)."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="dd2424",
            description="The DD2424 (KTH, 2019) Assignment 3 files: 20,050 ASCII surnames; "
                        "validation = the 252 lines of Validation_Inds.txt (14 per "
                        "language), train = the other 19,798, both in file order."),
        tfds.core.BuilderConfig(
            name="tutorial",
            description="The PyTorch char-RNN tutorial's 20,074 surnames (UTF-8); per "
                        f"language a seeded ({TUTORIAL_SEED}) 10% validation, 10% test "
                        "(at least one each), the rest train, in file order."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"dd2424: put ascii_names.txt, category_labels.txt and Validation_Inds.txt (handed "
        f"out by the course) in `{DD2424_FOLDER}/` of the manual directory. tutorial: put "
        f"the 18 files <Language>.txt of `data/names/` in {TUTORIAL_URL} in `{FOLDER}/`.")

    def _info(self):
        tutorial = self.builder_config.name == "tutorial"
        return self.dataset_info_from_configs(
            description="Surnames labelled with one of 18 languages (" + ", ".join(LANGUAGES)
                        + "). " + self.builder_config.description,
            features=tfds.features.FeaturesDict({
                "name": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=LANGUAGES),
            }),
            supervised_keys=("name", "label"),
            disable_shuffling=True,
            homepage=("https://pytorch.org/tutorials/intermediate/"
                      "char_rnn_classification_tutorial.html" if tutorial
                      else "https://www.kth.se/student/kurser/kurs/DD2424"),
            citation=("Robertson, S. NLP From Scratch: Classifying Names with a "
                      "Character-Level RNN. PyTorch Tutorials." if tutorial
                      else "Sullivan, J. (2019). DD2424 Deep Learning in Data Science, "
                           "Assignment 3. KTH Royal Institute of Technology."),
        )

    def _split_generators(self, dl_manager):
        if self.builder_config.name == "dd2424":
            examples = self._dd2424(dl_manager)
        else:
            examples = self._tutorial(dl_manager)
        # everything is read and checked before TFDS writes anything
        return {split: self._generate_examples(rows) for split, rows in examples.items()}

    def _dd2424(self, dl_manager):
        manual = manual_dir_of(dl_manager)
        paths = {name: (manual / DD2424_FOLDER / name) if manual is not None else None
                 for name in DD2424_FILES}
        missing = [name for name, path in paths.items() if path is None or not path.is_file()]
        if missing:
            where = manual_dir_name(dl_manager)
            raise DataNotFoundError(
                f"The DD2424 surname files {', '.join(missing)} are not in "
                f"{f'{where}/{DD2424_FOLDER}' if where else 'a data directory (none given)'}. "
                f"Expected {', '.join(f'{DD2424_FOLDER}/{n}' for n in DD2424_FILES)} under "
                f"the data directory; they cannot be downloaded (the course hands them out). "
                f"Point kcourse at the directory that holds {DD2424_FOLDER}/ with "
                f"--data-dir PATH or the environment variable {ENV_VAR}=PATH.")
        parse_category_labels(paths["category_labels.txt"])
        names, labels = parse_ascii_names(paths["ascii_names.txt"])
        validation = set(parse_validation_indices(paths["Validation_Inds.txt"], len(names)))
        rows = {"train": [], "validation": []}
        for line, (name, label) in enumerate(zip(names, labels), 1):
            rows["validation" if line in validation else "train"].append((line, name, label))
        return rows

    def _tutorial(self, dl_manager):
        manual = manual_dir_of(dl_manager)
        files = [f"{language}.txt" for language in LANGUAGES]
        root = manual / FOLDER if manual is not None else None
        present = [] if root is None else [f for f in files if (root / f).is_file()]
        if not present:
            if not online(TUTORIAL_URL):
                raise DataNotFoundError(missing_data_message(
                    "The surname files", manual_dir_name(dl_manager),
                    f"{FOLDER}/<Language>.txt, the 18 files {', '.join(files)} (the folder "
                    f"data/names/ of {TUTORIAL_URL})"))
            root = dl_manager.download_and_extract(TUTORIAL_URL) / "data" / "names"
            present = [f for f in files if (root / f).is_file()]
        if len(present) < len(files):
            raise DataNotFoundError(
                f"{root} lacks the surname files "
                f"{', '.join(f for f in files if f not in present)} (all 18 of "
                f"{', '.join(files)} are needed). Point kcourse at a directory holding "
                f"{FOLDER}/ with --data-dir PATH or {ENV_VAR}=PATH.")
        names = [read_tutorial_file(root / f) for f in files]
        split_of = stratified_split([len(n) for n in names], TUTORIAL_FRACTIONS, TUTORIAL_SEED)
        flat = [(name, label) for label, group in enumerate(names) for name in group]
        return {split: [(i, *flat[i]) for i in indices] for split, indices in split_of.items()}

    def _generate_examples(self, rows):
        for key, name, label in rows:  # increasing integer keys: the order is kept
            yield key, {"name": name, "label": label}


def surnames_builder(config="dd2424", data_dir=None, tfds_dir=None):
    """The prepared `kcourse_surnames/<config>` builder, preparing it if needed.

    Args:
        config: `"dd2424"` or `"tutorial"`.
        data_dir: the TFDS manual directory (holds `names/`); default `$KCOURSE_DATA_DIR`.
            Without the files, `tutorial` is downloaded when online; `dd2424` cannot be.
        tfds_dir: where TFDS keeps prepared datasets (default: TFDS's own).
    """
    from kcourse.data.splits import resolve_data_dir

    if config not in CONFIGS:
        raise ValueError(f"Unknown surname config {config!r}: use one of {', '.join(CONFIGS)}.")
    manual = resolve_data_dir(data_dir)
    builder = KcourseSurnames(config=config, data_dir=tfds_dir)
    if not builder.is_prepared():
        with console.preparing(f"{builder.name}/{config}"):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual))
    return builder


# ----------------------------------------------------------------------------- encoding

def _as_names(names):
    """A list of str from a str, bytes, or an iterable of them (bytes: UTF-8, invalid
    bytes replaced by U+FFFD, as `GraphNameEncoder` does)."""
    if isinstance(names, (str, bytes, np.str_, np.bytes_)):
        names = [names]
    out = []
    for name in names:
        if isinstance(name, (bytes, np.bytes_)):
            name = bytes(name).decode("utf-8", errors="replace")
        elif not isinstance(name, str):
            raise TypeError(f"A name must be a str (or UTF-8 bytes), got {type(name).__name__}.")
        out.append(str(name))
    return out


@dataclasses.dataclass
class NameEncoder:
    """Names as the course encodes them: lower-cased (`str.lower`), one row per
    character position, one column per alphabet symbol (one-hot), zero rows after the
    name up to `length` (the Keras layout `(positions, symbols)` of the course's
    d x n_len matrix).

    - A name longer than `length` is cut to its first `length` characters.
    - A character not in the alphabet (a digit, an accent the training names lack, ...)
      gives an all-zero row, and still takes its position.

    Args:
        alphabet: the symbols (single characters, no duplicates), in id order.
        length: the number of positions (n_len).
    """

    alphabet: tuple
    length: int

    def __post_init__(self):
        self.alphabet = tuple(self.alphabet)
        self.length = int(self.length)
        if not self.alphabet or any(not isinstance(c, str) or len(c) != 1
                                    for c in self.alphabet):
            raise ValueError("The alphabet must be a non-empty sequence of single characters.")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("The alphabet has a character twice.")
        if self.length < 1:
            raise ValueError(f"length must be at least 1, got {self.length}.")
        self._index = {c: i for i, c in enumerate(self.alphabet)}
        self._graph = None

    @classmethod
    def from_names(cls, train_names, max_length=None):
        """The alphabet (sorted characters) and the length (longest name, or
        `max_length`) of the lower-cased training names."""
        lowered = [name.lower() for name in _as_names(train_names)]
        if not any(lowered):
            raise ValueError("An encoder needs at least one non-empty training name.")
        alphabet = sorted(set("".join(lowered)))
        return cls(alphabet, max_length or max(len(name) for name in lowered))

    @property
    def depth(self):
        """The number of symbols, d."""
        return len(self.alphabet)

    def ids(self, names):
        """The symbol ids, an int32 array (N, length): -1 for padding and unknown
        characters."""
        names = _as_names(names)
        out = np.full((len(names), self.length), -1, np.int32)
        index = self._index
        for row, name in enumerate(names):
            for position, char in enumerate(name.lower()[:self.length]):
                out[row, position] = index.get(char, -1)
        return out

    def encode(self, names):
        """The one-hot encoding, a float32 array (N, length, depth). A single name (a
        str) gives N = 1."""
        ids = self.ids(names)
        out = np.zeros(ids.shape + (self.depth,), np.float32)
        rows, positions = np.nonzero(ids >= 0)
        out[rows, positions, ids[rows, positions]] = 1.0
        return out

    def graph_encode(self, strings):
        """`encode` as TensorFlow ops (a 1-D string tensor in, float32 (N, length,
        depth) out), with a `GraphNameEncoder` kept on this encoder."""
        if self._graph is None:
            self._graph = GraphNameEncoder(self)
        if not isinstance(strings, (tf.Tensor, tf.Variable)):
            strings = [n.encode("utf-8") if isinstance(n, str) else bytes(n)
                       for n in ([strings] if isinstance(strings, (str, bytes)) else strings)]
            strings = tf.constant(strings, tf.string, shape=[len(strings)])
        return self._graph(strings)

    def to_json(self):
        return json.dumps({"alphabet": list(self.alphabet), "length": self.length},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        """From `to_json`'s text (or the dict it holds)."""
        data = json.loads(text) if isinstance(text, (str, bytes)) else text
        return cls(data["alphabet"], data["length"])

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


class GraphNameEncoder(tf.Module):
    """`NameEncoder.encode` in a TensorFlow graph, for models that serve raw names.

    Takes a 1-D string tensor (any batch size; empty names allowed): invalid UTF-8 bytes
    become U+FFFD (`errors="replace"`), the names are lower-cased
    (`tf.strings.lower(encoding="utf-8")`, which agrees with Python's `str.lower`),
    split into characters, looked up in a char -> id table (-1 when unknown), one-hot
    encoded (-1 gives zeros) and padded or cut to `length`. The table is built on the
    first call (outside any trace, `tf.init_scope`) and tracked by this module, so the
    module saves inside a SavedModel or `keras.export.ExportArchive`.
    """

    def __init__(self, encoder, name="name_encoder"):
        super().__init__(name=name)
        self._alphabet = list(encoder.alphabet)
        self.length = int(encoder.length)
        self.depth = len(encoder.alphabet)
        self._table = None

    @property
    def alphabet(self):
        return tuple(self._alphabet)

    @property
    def table(self):
        if self._table is None:
            self._table = static_table(self._alphabet, default_value=-1)
        return self._table

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="names")])
    def ids(self, strings):
        """int32 (N, length): the symbol ids, -1 for padding and unknown characters."""
        clean = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace")
        lower = tf.strings.lower(clean, encoding="utf-8")
        chars = tf.strings.unicode_split(lower, "UTF-8", errors="replace")
        ids = tf.ragged.map_flat_values(self.table.lookup, chars)
        return tf.cast(ids.to_tensor(default_value=-1, shape=[None, self.length]), tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="names")])
    def __call__(self, strings):
        """float32 (N, length, depth): the one-hot encoding of the names."""
        return tf.one_hot(self.ids(strings), self.depth, dtype=tf.float32)


# ----------------------------------------------------------------------------- splits

@dataclasses.dataclass
class SurnameSplits:
    """The names and labels of a surname configuration, split by split.

    `names[split]` is a list of str, `labels[split]` an int64 array of 0..17 (the order
    of `class_names`), `encoder` the `NameEncoder` of the training names. `x(split)` is
    the one-hot encoding (float32, cached), `y(split)` the labels.
    """

    config: str
    names: dict
    labels: dict
    encoder: NameEncoder
    class_names: tuple = LANGUAGES
    _x: dict = dataclasses.field(default_factory=dict, init=False, repr=False,
                                 compare=False)

    def __post_init__(self):
        if set(self.names) != set(self.labels):
            raise ValueError("names and labels must have the same splits.")
        self.labels = {s: np.asarray(v, np.int64) for s, v in self.labels.items()}
        for split, names in self.names.items():
            if len(names) != len(self.labels[split]):
                raise ValueError(f"Split {split}: {len(names)} names, "
                                 f"{len(self.labels[split])} labels.")

    @property
    def splits(self):
        return tuple(self.names)

    def _check(self, split):
        if split not in self.names:
            raise KeyError(f"No split {split!r}; the splits are {', '.join(self.names)}.")

    def x(self, split):
        """The encoded names, float32 (N, length, depth)."""
        self._check(split)
        if split not in self._x:
            self._x[split] = self.encoder.encode(self.names[split])
        return self._x[split]

    def y(self, split):
        """The labels, int64 (N,)."""
        self._check(split)
        return self.labels[split]

    def counts(self, split):
        """The number of names of every class, int64 (18,)."""
        return np.bincount(self.y(split), minlength=len(self.class_names)).astype(np.int64)

    def sizes(self):
        return {split: len(names) for split, names in self.names.items()}

    def inner_split(self, per_class=14, seed=0):
        """A split for searches that must never see the validation names: `validation`
        = `per_class` training names of every class (drawn with `seed`, kept in file
        order), `train` = the other training names, `test` = the original validation
        names. The encoder stays the one of the full training set.

        A configuration's own `test` split (`tutorial`) is not part of the result: its
        validation names become the inner split's `test`, as for `dd2424`.
        """
        per_class = int(per_class)
        labels = self.labels["train"]
        rng = np.random.default_rng(seed)
        chosen = np.zeros(len(labels), bool)
        for k, language in enumerate(self.class_names):
            members = np.flatnonzero(labels == k)
            if len(members) <= per_class:
                raise ValueError(f"{language} has {len(members)} training names, too few to "
                                 f"hold out {per_class} and train on the rest.")
            chosen[rng.choice(members, per_class, replace=False)] = True
        names = self.names["train"]
        pick = lambda mask: ([n for n, m in zip(names, mask) if m], labels[mask])  # noqa: E731
        (val_names, val_labels), (tr_names, tr_labels) = pick(chosen), pick(~chosen)
        return SurnameSplits(
            config=self.config,
            names={"train": tr_names, "validation": val_names,
                   "test": list(self.names["validation"])},
            labels={"train": tr_labels, "validation": val_labels,
                    "test": self.labels["validation"]},
            encoder=self.encoder, class_names=self.class_names)


def load_surnames(config="dd2424", data_dir=None, tfds_dir=None):
    """The surnames of a configuration, as `SurnameSplits`.

    Args:
        config: `"dd2424"` (train / validation, the course's) or `"tutorial"` (train /
            validation / test, seeded and stratified).
        data_dir: the TFDS manual directory holding `names/` (default
            `$KCOURSE_DATA_DIR`).
        tfds_dir: the TFDS prepared-data directory.
    """
    builder = surnames_builder(config, data_dir, tfds_dir)
    names, labels = {}, {}
    for split in builder.info.splits:
        data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1,
                                                shuffle_files=False))
        names[split] = [n.decode("utf-8") for n in data["name"]]
        labels[split] = np.asarray(data["label"], np.int64)
    order = [s for s in ("train", "validation", "test") if s in names]
    names = {s: names[s] for s in order}
    labels = {s: labels[s] for s in order}
    return SurnameSplits(config=config, names=names, labels=labels,
                         encoder=NameEncoder.from_names(names["train"]))

"""Words of Project Gutenberg books: the data of UiB INF265 project 3 (word embeddings,
be/have conjugation, next-word generation).

The course's corpus is 15 books in three folders, `books/inf265/train/` (13 books),
`val/` (1) and `test/` (1), under the TFDS manual directory (kcourse takes it from
`--data-dir` or `KCOURSE_DATA_DIR`); see that folder's README. The files cannot be
downloaded by kcourse: they are the course's own copies, in the public GitHub repository
`nglm/inf265` under `projects/03-Sequence_data/data_{train,val,test}/`.

What the course does, and kcourse reproduces:

- `tokenize`: torchtext's `get_tokenizer("basic_english")` (see `BASIC_ENGLISH_RULES`),
  applied to every line of every `.txt` file of a split. Tokens of a split follow each
  other across lines and books: the course concatenates them into one list per split.
  Train 2,684,706 tokens (52,105 distinct), validation 49,526, test 124,152.
- `build_vocabulary`: from the *raw* training lines, every run of word characters that
  holds an ASCII digit or an ASCII capital (`\\w*[0-9]+\\w*`, `\\w*[A-Z]+\\w*`) is
  replaced by a space, the rest is tokenized, and the words seen at least `min_freq`
  (100) times are kept, most frequent first (ties in string order), after `<unk>` at id
  0: 1,879 words with `<unk>`, in the course's own id order. (Dropping whole tokens that
  hold a digit or a capital gives the same 1,879 words but other counts, so another
  order: "To-day" leaves "-day" in the course's rule.)
- `context_windows`: the (context, target) pairs of the three tasks (`TASKS`), windows
  running across lines and books of a split, as the course's. The validation and test
  counts are the course's (`COURSE_WINDOWS`); on train, a few windows straddle the 12
  book boundaries, so they depend on the book order, which the course took from
  `os.listdir` and did not record: in sorted order, 2,189,031 embedding windows (course
  2,189,034), 123,650 conjugation (123,651), 1,888,292 generator (1,888,297).

The TFDS builder `kcourse_books` stores one example per book, `{"title", "text"}` (the
file name without `.txt`, and the whole file as read in text mode, UTF-8): the corpus is
15 books, a book is read and tokenized as a whole, and the file order is kept
(`disable_shuffling`). Per-line examples (about 290,000) would only make TFDS slower and
the order harder to keep. Configurations:

- `inf265`: the course's folders; splits `train` / `validation` / `test` = `train/` /
  `val/` / `test/`, books in sorted file-name order (the course used `os.listdir`, whose
  order is the file system's; only the windows at book boundaries depend on it).
- a folder of the user's UTF-8 `.txt` files (`books_config(text_dir)`): every book is
  cut by lines, its first 90% of lines to `train`, the next 5% to `validation`, the last
  5% to `test` (`TEXT_DIR_FRACTIONS`), so that even one or two books give three splits
  of the same style, and no split reads a part of the text that another one holds.

`load_books` returns the tokens of every split and the vocabulary as `BookSplits`.
"""

import collections
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from kcourse import console
from kcourse.data.cifar10 import ENV_VAR, manual_dir_name, manual_dir_of
from kcourse.errors import DataNotFoundError

FOLDER = "books/inf265"  # under the manual directory
SPLIT_FOLDERS = {"train": "train", "validation": "val", "test": "test"}
INF265_BOOKS = {
    "train": ("Heimskringla.txt", "candide.txt", "dracula.txt", "enchiridion.txt",
              "grimm_fairy_tales.txt", "manual_of_gardening.txt", "meditations.txt",
              "miserables.txt", "poirot_investigates.txt",
              "the_adventures_of_sherlock_holmes.txt", "the_monomaniac.txt",
              "under_fire.txt", "war_and_peace.txt"),
    "validation": ("a_study_in_scarlet.txt",),
    "test": ("Twenty_Thousand_Leagues_under_the_Sea.txt",),
}
SOURCE = ("github.com/nglm/inf265, projects/03-Sequence_data/data_train/, data_val/ and "
          "data_test/")
TEXT_DIR_FRACTIONS = {"train": 0.9, "validation": 0.05, "test": 0.05}  # of every book's lines
UNK = "<unk>"
UNK_ID = 0
MIN_FREQ = 100

# torchtext 0.15 `torchtext.data.utils._basic_english_normalize`: the line is lower-cased,
# then each regex is replaced in this order, then the line is split on whitespace.
BASIC_ENGLISH_RULES = (
    (r"\'", " '  "),
    (r"\"", ""),
    (r"\.", " . "),
    (r"<br \/>", " "),
    (r",", " , "),
    (r"\(", " ( "),
    (r"\)", " ) "),
    (r"\!", " ! "),
    (r"\?", " ? "),
    (r"\;", " "),
    (r"\:", " "),
    (r"\s+", " "),
)
# The same as plain string replacements (every pattern but the last is a literal; the
# last one, `\s+` -> " ", changes nothing that `str.split()` sees): 2-3 times faster.
_REPLACEMENTS = (("'", " '  "), ('"', ""), (".", " . "), ("<br />", " "), (",", " , "),
                 ("(", " ( "), (")", " ) "), ("!", " ! "), ("?", " ? "), (";", " "),
                 (":", " "))
# The course's filters of the vocabulary's lines (code_solutions/seq01-vocab.ipynb):
# `re.sub(r"\w*[0-9]+\w*", " ", line)`, then `re.sub(r"\w*[A-Z]+\w*", " ", line)`, then
# `re.sub(r"\s+", " ", line)`. Both remove every maximal run of word characters that
# holds the character (a match starts at a run's start and its last `\w*` takes the run
# to its end), so one pass over the runs does the same, without the backtracking.
COURSE_VOCABULARY_FILTERS = (r"\w*[0-9]+\w*", r"\w*[A-Z]+\w*", r"\s+")
_DIGIT_OR_CAPITAL_RUN = re.compile(r"(?<!\w)\w*[0-9A-Z]\w*")
_SPACES = re.compile(r"\s+")

# The be / have forms of the conjugation task, in the course's order (label = index).
CONJUGATIONS = ("was", "were", "be", "is", "are", "am", "been", "being",
                "have", "has", "had", "having")


@dataclasses.dataclass(frozen=True)
class WindowTask:
    """The context windows of a task (see `context_windows`): `before` / `after` words
    each side of the target, at most `max_unk` of them `<unk>`; `targets` the only
    target words (their index becomes the label) or None for any word; `exclude` words
    never used as targets."""

    before: int
    after: int
    max_unk: int
    targets: tuple | None = None
    exclude: tuple = ()


TASKS = {
    # CBoW embeddings: any word from 2 words each side
    "embedding": WindowTask(before=2, after=2, max_unk=2),
    # the missing be / have form from 4 words each side; label = index in CONJUGATIONS
    "conjugation": WindowTask(before=4, after=4, max_unk=4, targets=CONJUGATIONS),
    # the next word from the 6 before; the course never predicts , . ! ? (its black list)
    "generator": WindowTask(before=6, after=0, max_unk=3, exclude=(",", ".", "!", "?")),
}
# The course's number of windows per split (train, validation, test). Its loop stops
# `before` positions early when `after` is 0: `context_windows(ids[:-6], ...)` gives its
# generator counts, `context_windows(ids, ...)` a few more.
COURSE_WINDOWS = {
    "embedding": (2_189_034, 40_333, 94_891),
    "conjugation": (123_651, 2_584, 4_735),
    "generator": (1_888_297, 35_124, 80_751),
}


# ----------------------------------------------------------------------------- tokens

def tokenize(line):
    """The tokens of a text, as torchtext's `basic_english` tokenizer gives them.

    Lower-cased (`str.lower`), then: `'` becomes its own token, `"` is removed (the
    letters around it join), `.` `,` `(` `)` `!` `?` become their own tokens, `<br />`
    becomes a space, `;` and `:` become spaces (so they split words), and the text is
    split on whitespace. The rules do not reach across line ends, so a whole text gives
    the tokens of its lines one after the other.

    Args:
        line: a str (a line, or a whole text).
    """
    if not isinstance(line, str):
        raise TypeError(f"tokenize takes a str, got {type(line).__name__}.")
    line = line.lower()
    for literal, replacement in _REPLACEMENTS:
        line = line.replace(literal, replacement)
    return line.split()


def vocabulary_tokens(text):
    """The tokens of `text` that count for the vocabulary, as the course counts them:
    every run of word characters (`\\w`) holding an ASCII digit, then every one holding
    an ASCII capital, is replaced by a space in the *raw* text, and the rest tokenized.

    Args:
        text: a str (a line, or a whole text: the filters do not reach across lines).
    """
    if not isinstance(text, str):
        raise TypeError(f"vocabulary_tokens takes a str, got {type(text).__name__}.")
    return tokenize(_SPACES.sub(" ", _DIGIT_OR_CAPITAL_RUN.sub(" ", text)))


def _intern(tokens):
    """The same tokens, equal strings shared (2.7M tokens hold 52,105 distinct words)."""
    return list(map(sys.intern, tokens))


def _read_book(path):
    """A UTF-8 text file as the course reads it (text mode: `\\r\\n` -> `\\n`)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as error:
        raise DataNotFoundError(f"{path} is not UTF-8 text ({error}); save it as "
                                "UTF-8.") from None
    except OSError as error:
        raise DataNotFoundError(f"{path} cannot be read ({error}).") from None


def book_files(folder):
    """The `.txt` files of `folder` (not its subfolders), in sorted file-name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"The folder {folder} does not exist (or is not a folder); "
                                "give a folder holding UTF-8 .txt files.")
    return sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())


def read_lines(folder):
    """Every line of every `.txt` file of `folder` (sorted file names, UTF-8), stripped,
    as the course reads a split: `[line.strip() for line in f.readlines()]` per file.

    Args:
        folder: a folder of UTF-8 text files.
    """
    lines = []
    for path in book_files(folder):
        parts = _read_book(path).split("\n")
        if parts[-1] == "":  # readlines gives no empty line after a last "\n"
            parts.pop()
        lines.extend(part.strip() for part in parts)
    return lines


def read_split(folder):
    """The tokens of every `.txt` file of `folder`, books in sorted file-name order, each
    book's tokens after the previous one's (a list of str).

    Args:
        folder: a folder of UTF-8 text files (e.g. `books/inf265/train`).
    """
    tokens = []
    for path in book_files(folder):
        tokens.extend(tokenize(_read_book(path)))
    return _intern(tokens)


# ----------------------------------------------------------------------------- vocabulary

class WordVocabulary:
    """Words <-> integer ids. Id 0 is `<unk>`: every word not in the vocabulary maps to
    it; the known words follow in their given order (ids 1, 2, ...).

    Args:
        words: the known words in id order (str, no duplicates); a leading `<unk>` is
            taken as id 0 (so `WordVocabulary(vocab.words)` is `vocab` again).
    """

    def __init__(self, words):
        words = list(words)
        if words and words[0] == UNK:
            words = words[1:]
        bad = [w for w in words if not isinstance(w, str) or not w]
        if bad:
            raise ValueError(f"Vocabulary words must be non-empty str, got {bad[0]!r}.")
        if UNK in words:
            raise ValueError(f"{UNK} can only be id 0 (the first word).")
        if len(set(words)) != len(words):
            twice = [w for w, n in collections.Counter(words).items() if n > 1]
            raise ValueError(f"The vocabulary has words more than once: {twice[:5]}.")
        self.words = (UNK,) + tuple(words)
        self._ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self):
        return len(self.words)  # with <unk>

    def __contains__(self, word):
        return word in self._ids

    def __getitem__(self, word):
        """The id of `word` (0 when unknown)."""
        return self._ids.get(word, UNK_ID)

    def __eq__(self, other):
        return isinstance(other, WordVocabulary) and self.words == other.words

    def __repr__(self):
        return f"WordVocabulary({len(self)} words: {', '.join(self.words[:6])}, ...)"

    def encode(self, tokens):
        """The ids of a sequence of tokens, an int32 array; unknown words get 0.

        Args:
            tokens: a list (or any iterable) of str, e.g. from `tokenize`.
        """
        if isinstance(tokens, (str, bytes)):
            raise TypeError("encode takes a sequence of tokens, not one string: "
                            "encode(tokenize(text)).")
        get = self._ids.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), np.int32)

    def decode(self, ids):
        """The words of a sequence of ids (a list of str; 0 gives `<unk>`)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self)):
            bad = ids[(ids < 0) | (ids >= len(self))][0]
            raise ValueError(f"Id {bad} is not in the vocabulary (ids 0..{len(self) - 1}).")
        return [self.words[i] for i in ids.tolist()]

    def to_json(self):
        """The words in id order, `<unk>` first, as a JSON list."""
        return json.dumps(list(self.words), ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        words = json.loads(text)
        if not isinstance(words, list) or not words or words[0] != UNK:
            raise ValueError(f"A vocabulary's JSON is a list of words starting with {UNK}.")
        return cls(words)

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


def word_counts(texts):
    """How often every word counts for the vocabulary (`vocabulary_tokens`) in `texts`,
    a `collections.Counter`.

    Args:
        texts: raw texts (lines or whole books), an iterable of str.
    """
    if isinstance(texts, str):
        texts = [texts]
    counts = collections.Counter()
    for text in texts:
        counts.update(vocabulary_tokens(text))
    return counts


def build_vocabulary(texts, min_freq=MIN_FREQ):
    """The course's word vocabulary of the raw training texts: the words seen at least
    `min_freq` times once the words with an ASCII digit or an ASCII capital are removed
    (`vocabulary_tokens`), most frequent first, ties in string order, after `<unk>`
    (torchtext's `build_vocab_from_iterator(..., min_freq, specials=["<unk>"])`).

    Args:
        texts: the raw training texts (lines or whole books, not tokens: the rule needs
            the capitals), an iterable of str.
        min_freq: the fewest occurrences a kept word has.
    """
    if int(min_freq) != min_freq or min_freq < 1:
        raise ValueError(f"min_freq must be a positive integer, got {min_freq!r}.")
    counts = word_counts(texts)
    kept = sorted(((w, n) for w, n in counts.items() if n >= min_freq and w != UNK),
                  key=lambda item: (-item[1], item[0]))
    return WordVocabulary(w for w, _ in kept)


# ----------------------------------------------------------------------------- windows

def context_windows(ids, before, after, max_unk, targets=None, exclude=()):
    """The (context, target) pairs of a sequence of word ids, as the course builds them.

    Every position with `before` ids on its left and `after` on its right gives a window:
    its context is those `before + after` ids (left then right) and its target the id at
    the position. A window is dropped when its target is `<unk>` (id 0), is in
    `exclude`, is not in `targets` (when given), or when more than `max_unk` context ids
    are `<unk>`. Windows run across line and book boundaries: pass a split's ids as one
    sequence, as the course does (its tokens are one list per split).

    The course's loop stops `before` positions early when `after` is 0 (it runs over
    `len - 2 * before` positions); `context_windows(ids[:-before], before, 0, ...)` gives
    its windows exactly.

    Args:
        ids: a 1-D integer array (word ids, 0 = `<unk>`).
        before, after: the context's size on each side (`before + after >= 1`).
        max_unk: the most `<unk>` ids a kept context holds.
        targets: None (the target is the word id), or the ids of the only kept targets,
            the label then being the index in `targets` (e.g. the 12 be / have forms).
        exclude: ids never used as targets (the course's generator: , . ! ?).

    Returns:
        `(contexts, labels)`: int32 arrays `(n, before + after)` and `(n,)`, in text order.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape} and "
                         f"dtype {ids.dtype}.")
    if ids.size and ids.min() < 0:
        raise ValueError(f"ids must be >= 0 (0 = <unk>), got {ids.min()}.")
    ids = ids.astype(np.int32, copy=False)
    before, after, max_unk = int(before), int(after), int(max_unk)
    if before < 0 or after < 0 or before + after < 1:
        raise ValueError(f"before and after must be >= 0 with at least one context word, "
                         f"got before={before}, after={after}.")
    if max_unk < 0:
        raise ValueError(f"max_unk must be >= 0, got {max_unk}.")
    width = before + 1 + after
    if len(ids) < width:
        return np.zeros((0, before + after), np.int32), np.zeros(0, np.int32)
    view = np.lib.stride_tricks.sliding_window_view(ids, width)
    centre = view[:, before]
    keep = centre != UNK_ID
    exclude = np.asarray(list(exclude), np.int32)
    if exclude.size:
        keep &= ~np.isin(centre, exclude)
    if targets is not None:
        targets = np.asarray(list(targets), np.int32)
        if targets.ndim != 1 or not targets.size:
            raise ValueError("targets must be a non-empty sequence of ids (or None).")
        if (targets == UNK_ID).any():
            raise ValueError(f"targets holds {UNK_ID} (<unk>): a target word is not in the "
                             "vocabulary.")
        if len(np.unique(targets)) != len(targets):
            raise ValueError("targets holds an id twice.")
        keep &= np.isin(centre, targets)
    unknown = (np.count_nonzero(view[:, :before] == UNK_ID, axis=1)
               + np.count_nonzero(view[:, before + 1:] == UNK_ID, axis=1))
    keep &= unknown <= max_unk
    rows = view[keep]
    contexts = np.ascontiguousarray(np.delete(rows, before, axis=1), np.int32)
    labels = rows[:, before].astype(np.int32)
    if targets is not None:  # id -> its index in targets
        index = np.full(max(int(targets.max()), int(ids.max())) + 1, -1, np.int32)
        index[targets] = np.arange(len(targets), dtype=np.int32)
        labels = index[labels]
    return contexts, labels


def task_windows(task, ids, vocab):
    """`context_windows` with the settings of a course task (`TASKS`), its words looked
    up in `vocab`.

    Args:
        task: `"embedding"`, `"conjugation"` or `"generator"`.
        ids: a split's word ids (`vocab.encode(tokens)`).
        vocab: the `WordVocabulary` of `ids`.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}: use one of {', '.join(TASKS)}.")
    setting = TASKS[task]
    targets = None
    if setting.targets is not None:
        missing = [w for w in setting.targets if w not in vocab]
        if missing:
            raise ValueError(f"The {task} targets {', '.join(missing)} are not in the "
                             "vocabulary.")
        targets = [vocab[w] for w in setting.targets]
    exclude = [vocab[w] for w in setting.exclude if w in vocab]
    return context_windows(ids, setting.before, setting.after, setting.max_unk,
                           targets=targets, exclude=exclude)


# ----------------------------------------------------------------------------- builder

@dataclasses.dataclass(eq=False)
class BooksConfig(tfds.core.BuilderConfig):
    """A configuration of `kcourse_books`: `text_dir` None for the course's folders
    (`inf265`), else a folder of the user's UTF-8 `.txt` files, cut 90/5/5 by lines."""

    text_dir: str | None = None


INF265_CONFIG = BooksConfig(
    name="inf265",
    description="The 15 Project Gutenberg books of UiB INF265 project 3 (spring 2023): "
                "train = the 13 books of train/, validation = val/ (A Study in Scarlet), "
                "test = test/ (Twenty Thousand Leagues under the Sea).")


def _folder_fingerprint(folder, files):
    """A short hash of a folder's path and its .txt files (names, sizes, times), so that
    a changed folder gets a new configuration."""
    digest = hashlib.sha1(str(folder).encode("utf-8"))
    for path in files:
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode("utf-8"))
    return digest.hexdigest()[:12]


def books_config(text_dir=None):
    """The configuration of `kcourse_books`: `inf265` when `text_dir` is None, else one
    for that folder of UTF-8 `.txt` files (named after a hash of its path and files)."""
    if text_dir is None:
        return INF265_CONFIG
    folder = Path(os.path.abspath(os.path.expanduser(str(text_dir))))
    if not folder.is_dir():
        raise DataNotFoundError(f"The text folder {folder} does not exist (or is not a "
                                "folder); give a folder holding UTF-8 .txt files.")
    files = book_files(folder)
    if not files:
        raise DataNotFoundError(f"The text folder {folder} holds no .txt file; give a "
                                "folder holding UTF-8 .txt files (one book per file).")
    return BooksConfig(
        name=f"text_{_folder_fingerprint(folder, files)}", text_dir=str(folder),
        description=f"The {len(files)} .txt files of {folder}, every book cut by lines: "
                    "the first 90% to train, the next 5% to validation, the last 5% to "
                    "test.")


def cut_lines(text, fractions=TEXT_DIR_FRACTIONS):
    """A text cut by lines into consecutive parts, a dict split -> text: the splits
    follow each other in the order of `fractions`, each one ending at line
    `round(sum of the fractions so far * number of lines)` (halves up).

    Args:
        text: the text (lines end with "\\n").
        fractions: dict split -> fraction of the lines (summing to 1).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    parts, start, total = {}, 0, 0.0
    for split, fraction in fractions.items():
        total += fraction
        stop = min(len(lines), int(math.floor(total * len(lines) + 0.5)))
        parts[split] = "".join(line + "\n" for line in lines[start:stop])
        start = stop
    return parts


def check_inf265(manual_dir, shown=None):
    """Raise one clear `DataNotFoundError` unless `manual_dir` holds the course's 15
    books in `books/inf265/{train,val,test}/` (other .txt files there are read too).

    Args:
        manual_dir: the data directory (None: none was given).
        shown: how to name the directory in the message (default `manual_dir`).
    """
    root = Path(manual_dir) / FOLDER if manual_dir is not None else None
    missing = [f"{SPLIT_FOLDERS[split]}/{name}" for split, names in INF265_BOOKS.items()
               for name in names
               if root is None or not (root / SPLIT_FOLDERS[split] / name).is_file()]
    if not missing:
        return
    where = shown or manual_dir
    if root is not None and any((root / f).is_dir() for f in SPLIT_FOLDERS.values()):
        what = f"{where}/{FOLDER} lacks the books {', '.join(missing)}"
    elif where:
        what = f"The INF265 books are not in {where}/{FOLDER}"
    else:
        what = "The INF265 books are not found: no data directory was given"
    raise DataNotFoundError(
        f"{what}. Expected {FOLDER}/train/ (13 books), {FOLDER}/val/ "
        f"(a_study_in_scarlet.txt) and {FOLDER}/test/ "
        f"(Twenty_Thousand_Leagues_under_the_Sea.txt) under the data directory; kcourse "
        f"cannot download them (they are in {SOURCE}). Point kcourse at the directory "
        f"that holds {FOLDER}/ with --data-dir PATH or the environment variable "
        f"{ENV_VAR}=PATH.")


class KcourseBooks(tfds.core.GeneratorBasedBuilder):
    """Project Gutenberg books, one example per book: INF265 project 3's corpus or a
    folder of the user's UTF-8 text files."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "inf265 (the course's train / val / test folders) and text "
                              "folders (every book cut 90/5/5 by lines)."}
    BUILDER_CONFIGS = [INF265_CONFIG]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"inf265: put the course's folders train/ (13 books), val/ and test/ (one book "
        f"each) in `{FOLDER}/` of the manual directory; they are in {SOURCE}.")

    def _info(self):
        return self.dataset_info_from_configs(
            description="Books as UTF-8 text, one example per book (title = the file name "
                        "without .txt). " + self.builder_config.description,
            features=tfds.features.FeaturesDict({
                "title": tfds.features.Text(),
                "text": tfds.features.Text(),
            }),
            disable_shuffling=True,
            homepage="https://github.com/nglm/inf265",
            citation="UiB INF265 Deep Learning (spring 2023), project 3 \"Sequence data\". "
                     "Texts from Project Gutenberg (public domain).",
        )

    def _split_generators(self, dl_manager):
        if self.builder_config.text_dir is None:
            books = self._inf265(dl_manager)
        else:
            books = self._text_dir(Path(self.builder_config.text_dir))
        # everything is read and checked before TFDS writes anything
        return {split: self._generate_examples(rows) for split, rows in books.items()}

    def _inf265(self, dl_manager):
        manual = manual_dir_of(dl_manager)
        check_inf265(manual, manual_dir_name(dl_manager))
        root = Path(manual) / FOLDER
        return {split: [(path.stem, _read_book(path)) for path in book_files(root / folder)]
                for split, folder in SPLIT_FOLDERS.items()}

    def _text_dir(self, folder):
        files = book_files(folder)
        if not files:
            raise DataNotFoundError(f"The text folder {folder} holds no .txt file; give a "
                                    "folder holding UTF-8 .txt files (one book per file).")
        rows = {split: [] for split in TEXT_DIR_FRACTIONS}
        for path in files:
            for split, part in cut_lines(_read_book(path)).items():
                if part.strip():
                    rows[split].append((path.stem, part))
        empty = [split for split, books in rows.items() if not books]
        if empty:
            raise DataNotFoundError(
                f"The .txt files of {folder} are too short: cut 90/5/5 by lines, "
                f"{' and '.join(empty)} would hold no text. Give books of at least 20 "
                "lines.")
        return rows

    def _generate_examples(self, rows):
        for key, (title, text) in enumerate(rows):  # increasing keys: the order is kept
            yield key, {"title": title, "text": text}


def books_builder(data_dir=None, tfds_dir=None, text_dir=None):
    """The prepared `kcourse_books` builder, preparing it if needed.

    Args:
        data_dir: the TFDS manual directory holding `books/inf265/` (default
            `$KCOURSE_DATA_DIR`); not used with `text_dir`.
        tfds_dir: where TFDS keeps prepared datasets (default: TFDS's own).
        text_dir: a folder of UTF-8 `.txt` files to use instead of the course's books
            (every book cut 90/5/5 by lines).
    """
    from kcourse.data.splits import resolve_data_dir

    config = books_config(text_dir)
    manual = resolve_data_dir(data_dir) if text_dir is None else None
    builder = KcourseBooks(config=config, data_dir=tfds_dir)
    if not builder.is_prepared():
        if text_dir is None:
            check_inf265(manual)  # before TFDS, which would look in its own manual dir
        with console.preparing(f"{builder.name}/{config.name}"):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual))
    return builder


# ----------------------------------------------------------------------------- splits

@dataclasses.dataclass
class BookSplits:
    """The tokens of every split and the vocabulary of the training books.

    `tokens[split]` is a list of str (one split's books one after the other),
    `titles[split]` its books, `vocab` the `WordVocabulary` of the training books.
    `ids(split)` gives the word ids (int32, cached), `windows(task, split)` the
    context windows of a course task (`TASKS`).
    """

    config: str
    titles: dict
    tokens: dict
    vocab: WordVocabulary
    _ids: dict = dataclasses.field(default_factory=dict, init=False, repr=False,
                                   compare=False)

    @property
    def splits(self):
        return tuple(self.tokens)

    def _check(self, split):
        if split not in self.tokens:
            raise KeyError(f"No split {split!r}; the splits are {', '.join(self.tokens)}.")

    def ids(self, split):
        """The word ids of a split, int32 (0 = `<unk>`)."""
        self._check(split)
        if split not in self._ids:
            self._ids[split] = self.vocab.encode(self.tokens[split])
        return self._ids[split]

    def windows(self, task, split):
        """`(contexts, labels)` of a course task on a split (see `task_windows`)."""
        return task_windows(task, self.ids(split), self.vocab)

    def sizes(self):
        """The number of tokens of every split."""
        return {split: len(tokens) for split, tokens in self.tokens.items()}


def load_books(data_dir=None, tfds_dir=None, text_dir=None, min_freq=MIN_FREQ):
    """The books' tokens and vocabulary, as `BookSplits`.

    Args:
        data_dir: the TFDS manual directory holding `books/inf265/` (default
            `$KCOURSE_DATA_DIR`).
        tfds_dir: the TFDS prepared-data directory.
        text_dir: a folder of UTF-8 `.txt` files instead of the course's books.
        min_freq: the fewest occurrences of a vocabulary word in the training books.
    """
    builder = books_builder(data_dir, tfds_dir, text_dir)
    titles, texts = {}, {}
    for split in ("train", "validation", "test"):
        rows = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        titles[split] = tuple(row["title"].decode("utf-8") for row in rows)
        texts[split] = [row["text"].decode("utf-8") for row in rows]
    tokens = {split: _intern([t for text in books for t in tokenize(text)])
              for split, books in texts.items()}
    return BookSplits(config=builder.builder_config.name, titles=titles, tokens=tokens,
                      vocab=build_vocabulary(texts["train"], min_freq))


__all__ = ["BASIC_ENGLISH_RULES", "BookSplits", "BooksConfig", "CONJUGATIONS",
           "COURSE_VOCABULARY_FILTERS", "COURSE_WINDOWS", "INF265_BOOKS", "KcourseBooks",
           "MIN_FREQ", "TASKS", "UNK", "WindowTask", "WordVocabulary", "book_files",
           "books_builder", "books_config", "build_vocabulary", "check_inf265",
           "context_windows", "cut_lines", "load_books", "read_lines", "read_split",
           "task_windows", "tokenize", "vocabulary_tokens", "word_counts"]

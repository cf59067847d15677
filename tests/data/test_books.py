import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from kcourse.data import (BookSplits, DataNotFoundError, KcourseBooks, WordVocabulary,
                          books_builder, build_vocabulary, context_windows, load_books,
                          read_split, task_windows, tokenize)
from kcourse.data.books import (BASIC_ENGLISH_RULES, CONJUGATIONS, COURSE_VOCABULARY_FILTERS,
                                COURSE_WINDOWS, INF265_BOOKS, SPLIT_FOLDERS, TASKS,
                                books_config, cut_lines, read_lines, vocabulary_tokens)

REPO = Path(__file__).resolve().parents[2]


def books_data_dir():
    """The data directory holding books/inf265 ($KCOURSE_DATA_DIR, else shared/data
    beside the repository), or None."""
    path = os.environ.get("KCOURSE_DATA_DIR") or str(REPO.parent / "shared" / "data")
    return path if os.path.isdir(os.path.join(path, "books", "inf265", "train")) else None


def regex_tokenize(line):
    """torchtext's `_basic_english_normalize`, regexes and all (the reference)."""
    line = line.lower()
    for pattern, replacement in BASIC_ENGLISH_RULES:
        line = re.sub(pattern, replacement, line)
    return line.split()


def course_vocabulary_tokens(line):
    """The course's `yield_tokens` of one line (seq01-vocab.ipynb), regexes and all."""
    for pattern in COURSE_VOCABULARY_FILTERS:
        line = re.sub(pattern, " ", line)
    return regex_tokenize(line)


# ----------------------------------------------------------------------------- tokens

@pytest.mark.parametrize("line, tokens", [
    ("Hello World", ["hello", "world"]),  # lower-cased
    ("don't", ["don", "'", "t"]),  # ' is a token of its own
    ("'Tis", ["'", "tis"]),
    ('He said "no" twice', ["he", "said", "no", "twice"]),  # " removed
    ('a"b', ["ab"]),  # ... without a space: the letters join
    ("end. Next", ["end", ".", "next"]),
    ("a,b (c) d! e?", ["a", ",", "b", "(", "c", ")", "d", "!", "e", "?"]),
    ("...", [".", ".", "."]),
    ("a;b: c ;", ["a", "b", "c"]),  # ; and : become spaces
    ("one<br />two <BR />three", ["one", "two", "three"]),  # <br /> a space (any case)
    ("<br/>", ["<br/>"]),  # only the exact "<br />"
    ("  tabs\tand\nnew lines  ", ["tabs", "and", "new", "lines"]),
    ("Émile — naïve, to-day", ["émile", "—", "naïve", ",", "to-day"]),  # kept as they are
    ("", []),
])
def test_tokenize_rules(line, tokens):
    assert tokenize(line) == tokens
    assert regex_tokenize(line) == tokens  # the torchtext regexes agree


def test_tokenize_matches_the_regexes_and_reads_lines_together():
    text = ("Mr. O'Neil said: \"Well; it's (almost) done!\"\n<br />Is it?\r\n"
            "\u00a0x\u2028y 3rd-class\tA.B.C.;;'' \"\" <br /><br />\n")
    assert tokenize(text) == regex_tokenize(text)
    lines = text.split("\n")
    assert tokenize(text) == [t for line in lines for t in regex_tokenize(line.strip())]
    with pytest.raises(TypeError, match="takes a str"):
        tokenize(["a", "b"])


def test_vocabulary_tokens_follow_the_course_filters():
    samples = ["To-Day 3rd a1b ÉMILE Émile naïve ABC_def x_9 __ 9 é9é Paris's",
               "a\tB\nc2 d", "ok word2word Word word O'Brien <br />br", "x" * 50 + "Y"]
    for text in samples:
        course = [t for line in text.split("\n") for t in course_vocabulary_tokens(line)]
        assert vocabulary_tokens(text) == course
    assert vocabulary_tokens("To-Day in 1815 the king's Man ran") == [
        "-", "in", "the", "king", "'", "s", "ran"]


def test_read_split_and_lines(tmp_path):
    (tmp_path / "b.txt").write_text("Second book.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First  line\n  Émile, too!\r\n\nlast", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a book", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("nested", encoding="utf-8")
    assert read_split(tmp_path) == ["first", "line", "émile", ",", "too", "!", "last",
                                    "second", "book", "."]
    assert read_lines(tmp_path) == ["First  line", "Émile, too!", "", "last", "Second book."]
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_split(tmp_path / "missing")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataNotFoundError, match="bad.txt is not UTF-8"):
        read_split(tmp_path)


# ----------------------------------------------------------------------------- vocabulary

def test_vocabulary_rules_and_round_trip(tmp_path):
    text = ("the cat and the dog . The Cat and Rex and the 2 cats . "
            "cat cat7 cat R2D2 Zoë zoë zoë zoë the the dog dog")
    vocab = build_vocabulary([text], min_freq=3)
    # counted: the 5 ("The" not: a capital), and 3, cat 3 ("Cat", "cat7" not), dog 3,
    # zoë 3 ("Zoë" not), . 2, cats 1; "Rex", "2", "R2D2" not at all
    assert vocab.words == ("<unk>", "the", "and", "cat", "dog", "zoë")  # ties: str order
    assert len(vocab) == 6 and vocab["<unk>"] == 0 and vocab["the"] == 1
    assert vocab["rex"] == 0 and "rex" not in vocab and "cat" in vocab
    assert build_vocabulary(text.split(" "), min_freq=3) == vocab  # words or lines
    assert build_vocabulary([text], min_freq=2).words[-1] == "."
    assert set(build_vocabulary([text], min_freq=1).words) == {
        "<unk>", "the", "and", "cat", "dog", "zoë", ".", "cats"}
    ids = vocab.encode(["the", "cat", "unknown", "zoë", "The"])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, [1, 3, 0, 5, 0])
    assert vocab.decode(ids) == ["the", "cat", "<unk>", "zoë", "<unk>"]
    assert vocab.encode([]).shape == (0,)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert json.loads(path.read_text(encoding="utf-8")) == list(vocab.words)
    assert WordVocabulary.load(path) == vocab
    assert WordVocabulary(vocab.words) == vocab == WordVocabulary(vocab.words[1:])
    with pytest.raises(TypeError, match="not one string"):
        vocab.encode("the cat")
    with pytest.raises(ValueError, match="Id 6 is not in the vocabulary"):
        vocab.decode([1, 6])
    with pytest.raises(ValueError, match="more than once"):
        WordVocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="only be id 0"):
        WordVocabulary(["a", "<unk>"])
    with pytest.raises(ValueError, match="starting with <unk>"):
        WordVocabulary.from_json('["a", "b"]')
    with pytest.raises(ValueError, match="min_freq"):
        build_vocabulary([text], min_freq=0)


# ----------------------------------------------------------------------------- windows

def loop_windows(ids, before, after, max_unk, targets=None, exclude=()):
    """The course's loop (cbow.create_dataset), written plainly, over every position."""
    contexts, labels = [], []
    for i in range(before, len(ids) - after):
        target = ids[i]
        context = list(ids[i - before:i]) + list(ids[i + 1:i + 1 + after])
        if target == 0 or target in exclude:
            continue
        if targets is not None and target not in targets:
            continue
        if context.count(0) > max_unk:
            continue
        contexts.append(context)
        labels.append(target if targets is None else list(targets).index(target))
    return (np.array(contexts, np.int64).reshape(-1, before + after),
            np.array(labels, np.int64))


@pytest.mark.parametrize("task", list(TASKS))
def test_context_windows_match_a_plain_loop(task):
    setting = TASKS[task]
    rng = np.random.default_rng(265)
    ids = rng.integers(0, 20, size=600)
    ids[rng.random(600) < 0.3] = 0  # many <unk>: the filter matters
    targets = None if setting.targets is None else [3, 7, 1, 12, 5, 9, 2, 18, 4, 6, 11, 15]
    exclude = [2, 5] if setting.exclude else []
    contexts, labels = context_windows(ids, setting.before, setting.after, setting.max_unk,
                                       targets=targets, exclude=exclude)
    expected = loop_windows(ids, setting.before, setting.after, setting.max_unk, targets,
                            exclude)
    assert contexts.dtype == np.int32 and labels.dtype == np.int32
    assert contexts.shape == (len(labels), setting.before + setting.after)
    np.testing.assert_array_equal(contexts, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    assert 50 < len(labels) < 600 - setting.before - setting.after  # some kept, some not
    if targets is not None:
        assert set(labels.tolist()) == set(range(12))
    else:
        assert 0 not in labels and not set(exclude) & set(labels.tolist())


def test_context_windows_small_cases():
    ids = np.array([5, 0, 6, 7, 0, 8])
    contexts, labels = context_windows(ids, 1, 1, max_unk=0)
    np.testing.assert_array_equal(contexts, np.zeros((0, 2)))  # every window has a 0
    contexts, labels = context_windows(ids, 1, 1, max_unk=1)
    np.testing.assert_array_equal(contexts, [[0, 7], [6, 0]])
    np.testing.assert_array_equal(labels, [6, 7])
    contexts, labels = context_windows(ids, 2, 0, max_unk=1, targets=[8, 6])
    np.testing.assert_array_equal(contexts, [[5, 0], [7, 0]])
    np.testing.assert_array_equal(labels, [1, 0])  # 6 -> 1, 8 -> 0
    contexts, labels = context_windows([1, 2], 2, 2, max_unk=4)  # too short
    assert contexts.shape == (0, 4) and labels.shape == (0,)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        context_windows(ids, 1, 1, 1, targets=[6, 0])
    with pytest.raises(ValueError, match="twice"):
        context_windows(ids, 1, 1, 1, targets=[6, 6])
    with pytest.raises(ValueError, match="at least one context word"):
        context_windows(ids, 0, 0, 1)
    with pytest.raises(ValueError, match="1-D integer"):
        context_windows(ids.astype(float), 1, 1, 1)


def test_task_windows_use_the_task_words():
    vocab = WordVocabulary(["the", ",", "."] + list(CONJUGATIONS) + ["cat"])
    tokens = "the cat was , the cat had . the the the cat is the".split()
    ids = vocab.encode(tokens)
    contexts, labels = task_windows("conjugation", ids, vocab)
    assert contexts.shape == (1, 8)  # only "had" has 4 words each side
    np.testing.assert_array_equal(labels, [CONJUGATIONS.index("had")])
    contexts, labels = task_windows("generator", ids, vocab)
    assert vocab.decode(labels) == ["had", "the", "the", "the", "cat", "is", "the"]  # no , .
    contexts, labels = task_windows("embedding", ids, vocab)
    assert len(labels) == len(tokens) - 4
    with pytest.raises(ValueError, match="targets was, were, .* are not in the vocabulary"):
        task_windows("conjugation", ids, WordVocabulary(["the", "cat"]))
    with pytest.raises(ValueError, match="Unknown task"):
        task_windows("cbow", ids, vocab)


# ----------------------------------------------------------------------------- real corpus

@pytest.fixture(scope="module")
def corpus():
    path = books_data_dir()
    if path is None:
        pytest.skip("the INF265 books (books/inf265/) are not in $KCOURSE_DATA_DIR or "
                    "shared/data beside the repository")
    root = Path(path) / "books" / "inf265"
    tokens = {split: read_split(root / folder) for split, folder in SPLIT_FOLDERS.items()}
    vocab = build_vocabulary(read_lines(root / "train"))
    return {"root": root, "tokens": tokens, "vocab": vocab}


def test_real_corpus_counts_are_the_courses(corpus):
    tokens, vocab = corpus["tokens"], corpus["vocab"]
    assert {split: len(t) for split, t in tokens.items()} == {
        "train": 2_684_706, "validation": 49_526, "test": 124_152}
    assert len(set(tokens["train"])) == 52_105
    assert len(vocab) == 1_879
    # the course's ids (its generated/vocabulary.tsv): by frequency, ties in string order
    assert vocab.words[:12] == ("<unk>", ",", "the", ".", "and", "of", "to", "a", "in",
                                "that", "he", "was")
    assert vocab.words[-3:] == ("station-master", "thank", "wounds")
    assert "to-day" in vocab and "—" in vocab and "émile" not in vocab
    texts = [p.read_text(encoding="utf-8") for p in sorted((corpus["root"] / "train").iterdir())]
    assert build_vocabulary(texts) == vocab  # whole books or lines: the same


def test_real_corpus_windows(corpus):
    vocab = corpus["vocab"]
    ids = {split: vocab.encode(t) for split, t in corpus["tokens"].items()}
    for task, course in COURSE_WINDOWS.items():
        cut = TASKS[task].before if TASKS[task].after == 0 else 0  # the course's early stop
        counts = tuple(len(task_windows(task, ids[s][:len(ids[s]) - cut], vocab)[1])
                       for s in ("train", "validation", "test"))
        assert counts[1:] == course[1:]  # one book each: exactly the course's
        # train: the windows across the 12 book boundaries depend on the book order
        assert abs(counts[0] - course[0]) <= 12
        assert counts[0] == {"embedding": 2_189_031, "conjugation": 123_650,
                             "generator": 1_888_292}[task]


# ----------------------------------------------------------------------------- builder

def write_fake_books(root):
    """books/inf265/ with the course's file names and tiny texts; returns the texts."""
    texts = {}
    for split, names in INF265_BOOKS.items():
        folder = Path(root) / "books" / "inf265" / SPLIT_FOLDERS[split]
        folder.mkdir(parents=True)
        for k, name in enumerate(names):
            text = f"{name} Was here; {k} \"times\".\nÉmile, then <br />was too!\n"
            (folder / name).write_text(text, encoding="utf-8")
            texts[name] = text
    return texts


def test_builder_reads_the_course_folders(tmp_path):
    from conftest import tfds_data_dir

    texts = write_fake_books(tmp_path / "manual")
    (tmp_path / "manual" / "books" / "inf265" / "val" / "README.md").write_text("no")
    with tfds_data_dir(tmp_path / "tfds"):
        splits = load_books(str(tmp_path / "manual"), str(tmp_path / "tfds"), min_freq=2)
        builder = books_builder(str(tmp_path / "manual"), str(tmp_path / "tfds"))
    assert isinstance(splits, BookSplits) and splits.config == "inf265"
    assert isinstance(builder, KcourseBooks) and builder.info.name == "kcourse_books"
    assert builder.builder_config.name == "inf265"
    assert set(builder.info.splits) == {"train", "validation", "test"}
    assert splits.splits == ("train", "validation", "test")
    names = {split: tuple(sorted(n[:-4] for n in INF265_BOOKS[split])) for split in INF265_BOOKS}
    assert splits.titles == names  # sorted file names, one example per book
    for split in splits.splits:
        expected = [t for title in names[split] for t in tokenize(texts[title + ".txt"])]
        assert splits.tokens[split] == expected
    assert splits.tokens["validation"][:6] == ["a_study_in_scarlet", ".", "txt", "was",
                                               "here", "0"]
    # min_freq 2 over the 13 training books: the template's words, less those with a
    # digit or an ASCII capital ("Was", k, "Heimskringla"); "Émile" stays (É is not A-Z)
    assert set(splits.vocab.words) == {"<unk>", "txt", ".", "here", "times", "émile", ",",
                                       "then", "was", "too", "!"}
    assert splits.ids("test").dtype == np.int32
    assert splits.vocab.decode(splits.ids("test")[3:5]) == ["was", "here"]
    assert splits.sizes()["train"] == len(splits.tokens["train"])
    with pytest.raises(KeyError, match="No split 'val'"):
        splits.ids("val")


def test_builder_on_a_text_folder_cuts_every_book_by_lines(tmp_path):
    from conftest import tfds_data_dir

    folder = tmp_path / "my books"
    folder.mkdir()
    lines = {name: [f"{name} line {i} of it." for i in range(n)]
             for name, n in (("alpha", 100), ("beta", 21))}
    for name, book in lines.items():
        (folder / f"{name}.txt").write_text("\n".join(book) + "\n", encoding="utf-8")
    with tfds_data_dir(tmp_path / "tfds"):
        splits = load_books(tfds_dir=str(tmp_path / "tfds"), text_dir=str(folder), min_freq=1)
    assert splits.config.startswith("text_")
    assert splits.titles == {split: ("alpha", "beta") for split in splits.splits}
    # every book's lines cut at round(90%) and round(95%) of its lines
    bounds = {"alpha": (0, 90, 95, 100), "beta": (0, 19, 20, 21)}
    for k, split in enumerate(("train", "validation", "test")):
        expected = [t for name, book in lines.items()
                    for line in book[bounds[name][k]:bounds[name][k + 1]] for t in tokenize(line)]
        assert splits.tokens[split] == expected, split
    assert cut_lines("a\nb\nc\n") == {"train": "a\nb\nc\n", "validation": "", "test": ""}
    # a changed folder is another configuration; a too short one is a clear error
    assert books_config(str(folder)).name == books_config(str(folder)).name
    (folder / "gamma.txt").write_text("one\ntwo\n", encoding="utf-8")
    assert books_config(str(folder)).name != splits.config
    small = tmp_path / "small"
    small.mkdir()
    (small / "tiny.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    with pytest.raises(DataNotFoundError, match="too short.*validation and test would hold"):
        books_builder(tfds_dir=str(tmp_path / "tfds"), text_dir=str(small))
    with pytest.raises(DataNotFoundError, match="holds no .txt file"):
        books_builder(tfds_dir=str(tmp_path / "tfds"), text_dir=str(tmp_path))
    with pytest.raises(DataNotFoundError, match="text folder .*nowhere does not exist"):
        books_builder(tfds_dir=str(tmp_path / "tfds"), text_dir=str(tmp_path / "nowhere"))


def test_missing_books_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    tfds_dir = str(tmp_path / "tfds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as error:
        books_builder(str(tmp_path / "empty"), tfds_dir)
    message = str(error.value)
    assert f"not in {tmp_path / 'empty'}/books/inf265" in message
    assert "books/inf265/train/ (13 books)" in message and "nglm/inf265" in message
    assert "--data-dir PATH" in message and "KCOURSE_DATA_DIR=PATH" in message
    monkeypatch.delenv("KCOURSE_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="not found: no data directory was given"):
        books_builder(None, tfds_dir)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        books_builder(str(tmp_path / "nowhere"), tfds_dir)
    write_fake_books(tmp_path / "manual")
    (tmp_path / "manual" / "books" / "inf265" / "train" / "dracula.txt").unlink()
    with pytest.raises(DataNotFoundError, match="books/inf265 lacks the books "
                                                "train/dracula.txt\\. Expected"):
        books_builder(str(tmp_path / "manual"), tfds_dir)
    assert not KcourseBooks(config="inf265", data_dir=tfds_dir).is_prepared()

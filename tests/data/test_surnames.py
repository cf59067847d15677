import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kcourse.data import (LANGUAGES, DataNotFoundError, GraphNameEncoder, KcourseSurnames,
                          NameEncoder, SurnameSplits, load_surnames, surnames_builder)
from kcourse.data.surnames import TUTORIAL_FRACTIONS

REPO = Path(__file__).resolve().parents[2]

# awkward names for the encoders: non-ASCII, digits, empty, spaces, over-long, invalid UTF-8
AWKWARD = ["Dvořák", "Müller", "O'Neill", "", "123", "van der Berg",
           "Abcdefghijklmnopqrstuvwxyz", "ΟΔΟΣ", "İstanbul", "  x  ", "Straße",
           b"ab\xe2\x82cd", b"\xff\xfe", "ZZ"]


# ----------------------------------------------------------------------------- fake files

def fake_dd2424(root, per_class=3):
    """names/dd2424/ with `per_class` names per language (in language order) and the
    second name of every language as validation, indices written in shuffled order."""
    folder = Path(root) / "names" / "dd2424"
    folder.mkdir(parents=True)
    names, labels = [], []
    for k, language in enumerate(LANGUAGES):
        for j in range(per_class):
            names.append(f"{language}{'abc'[j]}")
            labels.append(k)
    names[0], names[3] = "De la Cruz", "O'Brien"  # a name with spaces, an apostrophe
    lines = [f"{name} {label + 1}" for name, label in zip(names, labels)]
    (folder / "ascii_names.txt").write_text("\n".join(lines) + "\n")
    (folder / "category_labels.txt").write_text(
        "".join(f"{k} {language}\n" for k, language in enumerate(LANGUAGES, 1)))
    validation = [per_class * k + 2 for k in range(len(LANGUAGES))]  # one-based lines
    shuffled = list(np.random.default_rng(1).permutation(validation))
    (folder / "Validation_Inds.txt").write_text(" ".join(map(str, shuffled)))
    return {"names": names, "labels": labels, "validation": validation}


def fake_tutorial(root):
    """names/<Language>.txt with 10 + k names for language k (unique names), empty lines,
    surrounding spaces, a name with spaces and non-ASCII names."""
    folder = Path(root) / "names"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for k, language in enumerate(LANGUAGES):
        names = [f"{language}{i:02d}" for i in range(10 + k)]
        if language == "Czech":
            names[1] = "Dvořák"
        if language == "German":
            names[2] = "Müller"
        if language == "Dutch":
            names[3] = "van der Berg"
        files[language] = names
        text = "\n".join(names[:3]) + "\n\n  " + names[3] + "  \n" + "\n".join(names[4:]) + "\n"
        (folder / f"{language}.txt").write_text(text, encoding="utf-8")
    return files


@pytest.fixture
def fake_names(tmp_path):
    manual = tmp_path / "manual"
    dd2424 = fake_dd2424(manual)
    tutorial = fake_tutorial(manual)
    return {"manual": str(manual), "tfds": str(tmp_path / "tfds"), "dd2424": dd2424,
            "tutorial": tutorial, "dir": manual / "names"}


# ----------------------------------------------------------------------------- builders

def test_dd2424_honours_the_validation_lines(fake_names):
    splits = load_surnames("dd2424", fake_names["manual"], fake_names["tfds"])
    fake = fake_names["dd2424"]
    lines = set(fake["validation"])
    expected_val = [i for i in range(1, len(fake["names"]) + 1) if i in lines]
    expected_train = [i for i in range(1, len(fake["names"]) + 1) if i not in lines]
    assert splits.splits == ("train", "validation") and splits.config == "dd2424"
    assert splits.names["validation"] == [fake["names"][i - 1] for i in expected_val]
    assert splits.names["train"] == [fake["names"][i - 1] for i in expected_train]
    np.testing.assert_array_equal(splits.y("validation"), [fake["labels"][i - 1]
                                                           for i in expected_val])
    np.testing.assert_array_equal(splits.y("train"), [fake["labels"][i - 1]
                                                      for i in expected_train])
    assert splits.y("train").dtype == np.int64
    assert splits.names["train"][0] == "De la Cruz"  # spaces and case are kept
    assert splits.names["train"][2] == "O'Brien"
    np.testing.assert_array_equal(splits.counts("validation"), np.ones(18))
    np.testing.assert_array_equal(splits.counts("train"), np.full(18, 2))
    assert splits.sizes() == {"train": 36, "validation": 18}
    assert splits.class_names == LANGUAGES and LANGUAGES[0] == "Arabic"
    builder = surnames_builder("dd2424", fake_names["manual"], fake_names["tfds"])
    assert isinstance(builder, KcourseSurnames) and builder.info.name == "kcourse_surnames"
    assert builder.info.features["label"].names == list(LANGUAGES)
    assert builder.info.supervised_keys == ("name", "label")


def test_tutorial_split_is_stratified_and_deterministic(fake_names, tmp_path):
    first = load_surnames("tutorial", fake_names["manual"], fake_names["tfds"])
    again = load_surnames("tutorial", fake_names["manual"], str(tmp_path / "tfds2"))
    assert first.splits == ("train", "validation", "test")
    for split in first.splits:
        assert first.names[split] == again.names[split]
        np.testing.assert_array_equal(first.y(split), again.y(split))
    files = fake_names["tutorial"]
    for k, language in enumerate(LANGUAGES):
        n = len(files[language])
        per_split = {s: [name for name, y in zip(first.names[s], first.y(s)) if y == k]
                     for s in first.splits}
        for split, fraction in TUTORIAL_FRACTIONS.items():
            assert len(per_split[split]) == max(1, int(np.floor(fraction * n + 0.5)))
        together = [name for names in per_split.values() for name in names]
        assert sorted(together) == sorted(files[language])  # each name in exactly one
        for names in per_split.values():  # every split keeps the file order
            assert names == [name for name in files[language] if name in names]
    assert sum(first.sizes().values()) == sum(len(v) for v in files.values())
    assert "Dvořák" in sum(first.names.values(), []) and "van der Berg" in sum(
        first.names.values(), [])
    assert all(name == name.strip() and name for name in sum(first.names.values(), []))
    assert first.encoder == NameEncoder.from_names(first.names["train"])


def test_missing_files_give_one_clear_error(fake_names, tmp_path, monkeypatch):
    monkeypatch.setenv("KCOURSE_OFFLINE", "1")
    (fake_names["dir"] / "dd2424" / "Validation_Inds.txt").unlink()
    with pytest.raises(DataNotFoundError) as error:
        surnames_builder("dd2424", fake_names["manual"], fake_names["tfds"])
    message = str(error.value)
    assert "Validation_Inds.txt" in message and "names/dd2424/ascii_names.txt" in message
    assert "--data-dir PATH" in message and "KCOURSE_DATA_DIR" in message
    (tmp_path / "empty").mkdir()
    for config in ("dd2424", "tutorial"):
        with pytest.raises(DataNotFoundError, match="KCOURSE_DATA_DIR") as error:
            surnames_builder(config, str(tmp_path / "empty"), fake_names["tfds"])
        assert "--data-dir" in str(error.value)
    assert "Vietnamese.txt" in str(error.value)
    (fake_names["dir"] / "Korean.txt").unlink()
    with pytest.raises(DataNotFoundError, match="lacks the surname files Korean.txt"):
        surnames_builder("tutorial", fake_names["manual"], fake_names["tfds"])
    with pytest.raises(ValueError, match="Unknown surname config"):
        surnames_builder("dd2425", fake_names["manual"], fake_names["tfds"])


@pytest.mark.parametrize("file, content, match", [
    ("ascii_names.txt", "Khoury 1\nNahas 19\n", r"ascii_names.txt, line 2: label 19"),
    ("ascii_names.txt", "Khoury 1\nNahas\n", r"ascii_names.txt, line 2: 'Nahas' is not"),
    ("ascii_names.txt", "Khoury 1\nNahas 0\n", r"line 2: label 0 of 'Nahas' is not in 1..18"),
    ("Validation_Inds.txt", "1 55", r"Validation_Inds.txt, line 1 \(value 2\): index 55 is "
                                    r"out of range; the names file has lines 1..54"),
    ("Validation_Inds.txt", "0", r"index 0 is out of range"),
    ("Validation_Inds.txt", "3 x", r"'x' is not a line number"),
    ("Validation_Inds.txt", "3 3", r"index 3 is given twice"),
    ("category_labels.txt", "1 Arabic\n2 Czech\n", r"category_labels.txt lists the languages "
                                                   r"1 Arabic, 2 Czech; kcourse expects"),
])
def test_malformed_files_name_the_file_and_line(fake_names, file, content, match):
    (fake_names["dir"] / "dd2424" / file).write_text(content)
    with pytest.raises(DataNotFoundError, match=match):
        surnames_builder("dd2424", fake_names["manual"], fake_names["tfds"])


# ----------------------------------------------------------------------------- encoding

def test_encoder_one_hot_padding_cutting_and_unknown_characters():
    encoder = NameEncoder.from_names(["Ab", "c A", "ba"])
    assert encoder.alphabet == (" ", "a", "b", "c") and encoder.length == 3
    x = encoder.encode(["AB", "cab", "b", "ccccc", "a1b", "ä"])
    assert x.dtype == np.float32 and x.shape == (6, 3, 4)
    ids = encoder.ids(["AB", "cab", "b", "ccccc", "a1b", "ä"])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, [[1, 2, -1], [3, 1, 2], [2, -1, -1], [3, 3, 3],
                                        [1, -1, 2], [-1, -1, -1]])
    np.testing.assert_array_equal(x[0], [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(x[4, 1], 0)  # '1' is unknown: a zero row, in place
    np.testing.assert_array_equal(x[4, 2], [0, 0, 1, 0])
    np.testing.assert_array_equal(x[3].sum(0), [0, 0, 0, 3])  # cut to 3 positions
    np.testing.assert_array_equal(x.sum(-1), ids >= 0)
    assert encoder.encode("Ab").shape == (1, 3, 4)  # a single name
    assert NameEncoder.from_names(["abcdef"], max_length=4).length == 4
    assert encoder.encode([]).shape == (0, 3, 4)
    assert NameEncoder.from_json(encoder.to_json()) == encoder
    with pytest.raises(ValueError, match="twice"):
        NameEncoder(["a", "a"], 3)
    with pytest.raises(ValueError, match="non-empty training name"):
        NameEncoder.from_names(["", ""])


def test_graph_encode_equals_encode_on_awkward_names(tmp_path):
    encoder = NameEncoder.from_names(["Dvořák", "O'Neill", "van der Berg", "Smith"],
                                     max_length=9)
    expected = encoder.encode(AWKWARD)
    np.testing.assert_array_equal(encoder.graph_encode(AWKWARD).numpy(), expected)
    graph = GraphNameEncoder(encoder)
    np.testing.assert_array_equal(graph.ids(tf.constant([n.encode() if isinstance(n, str)
                                                         else n for n in AWKWARD])).numpy(),
                                  encoder.ids(AWKWARD))
    assert encoder.graph_encode([]).shape == (0, 9, encoder.depth)
    assert encoder.graph_encode(["O'Neill"]).shape == (1, 9, encoder.depth)
    # tracked by a SavedModel: raw names in, the same encoding out
    module = tf.Module()
    module.encoder = graph
    tf.saved_model.save(module, str(tmp_path / "saved"),
                        signatures=graph.__call__.get_concrete_function())
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = loaded.signatures["serving_default"](
        names=tf.constant([n.encode() if isinstance(n, str) else n for n in AWKWARD]))
    np.testing.assert_array_equal(next(iter(served.values())).numpy(), expected)


def test_splits_cache_x_and_inner_split_is_stratified(fake_names):
    splits = load_surnames("dd2424", fake_names["manual"], fake_names["tfds"])
    assert splits.x("train") is splits.x("train")
    np.testing.assert_array_equal(splits.x("validation"),
                                  splits.encoder.encode(splits.names["validation"]))
    inner = splits.inner_split(per_class=1, seed=3)
    assert isinstance(inner, SurnameSplits) and inner.encoder is splits.encoder
    assert inner.names["test"] == splits.names["validation"]
    np.testing.assert_array_equal(inner.counts("validation"), np.ones(18))
    np.testing.assert_array_equal(inner.counts("train"), np.ones(18))
    assert sorted(inner.names["train"] + inner.names["validation"]) == sorted(
        splits.names["train"])
    assert inner.names == splits.inner_split(per_class=1, seed=3).names
    with pytest.raises(ValueError, match="too few"):
        splits.inner_split(per_class=2)
    with pytest.raises(KeyError, match="No split 'test'"):
        splits.x("test")


# ----------------------------------------------------------------------------- real data

def names_data_dir():
    """The real names: $KCOURSE_DATA_DIR, else ../shared/data beside the repository."""
    path = os.environ.get("KCOURSE_DATA_DIR") or str(REPO.parent / "shared" / "data")
    return path if os.path.isdir(os.path.join(path, "names", "dd2424")) else None


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    path = names_data_dir()
    if path is None:
        pytest.skip("the real surname files (names/) not found: set KCOURSE_DATA_DIR or "
                    "put shared/data beside the repository")
    tfds_dir = str(tmp_path_factory.mktemp("surnames_tfds"))
    return {"path": path, "tfds": tfds_dir,
            "dd2424": load_surnames("dd2424", path, tfds_dir)}


def test_real_dd2424_has_the_course_sizes(real):
    splits = real["dd2424"]
    assert splits.sizes() == {"train": 19798, "validation": 252}
    np.testing.assert_array_equal(splits.counts("validation"), np.full(18, 14))
    total = splits.counts("train") + splits.counts("validation")
    assert total.sum() == 20050
    assert total[LANGUAGES.index("Russian")] == 9384
    assert round(100 * 9384 / 20050, 1) == 46.8
    assert total.min() == 73 and LANGUAGES[int(total.argmin())] == "Vietnamese"
    assert splits.encoder.depth == 28 and splits.encoder.length == 19
    assert splits.encoder.alphabet[:2] == (" ", "'")
    assert splits.x("train").shape == (19798, 19, 28)
    np.testing.assert_array_equal(splits.x("train").sum((1, 2)),
                                  [len(n) for n in splits.names["train"]])
    np.testing.assert_array_equal(splits.encoder.graph_encode(splits.names["train"]).numpy(),
                                  splits.x("train"))


def test_real_inner_split_holds_out_14_per_class(real):
    splits = real["dd2424"]
    inner = splits.inner_split()
    np.testing.assert_array_equal(inner.counts("validation"), np.full(18, 14))
    assert inner.sizes() == {"train": 19798 - 252, "validation": 252, "test": 252}
    np.testing.assert_array_equal(inner.counts("train") + inner.counts("validation"),
                                  splits.counts("train"))
    np.testing.assert_array_equal(inner.y("test"), splits.y("validation"))
    # disjoint: together the two are the training names, each example once (a name may
    # repeat in the files, so compare (name, label) multisets)
    pairs = lambda split, s=inner: Counter(zip(s.names[split], s.y(split).tolist()))  # noqa
    assert pairs("train") + pairs("validation") == pairs("train", splits)
    assert not set(pairs("validation")) - set(pairs("train", splits))


def test_real_tutorial_has_all_names(real):
    splits = load_surnames("tutorial", real["path"], real["tfds"])
    assert sum(splits.sizes().values()) == 20074
    assert splits.counts("validation").min() >= 1 and splits.counts("test").min() >= 1
    assert (splits.counts("train") + splits.counts("validation") + splits.counts("test"))[
        LANGUAGES.index("Vietnamese")] == 73

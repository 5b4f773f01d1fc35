"""Tests of vislint.catalog: folder walking, split/label inference, lists, DataFrames, CSV."""
import collections
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from corpus import gradient, jpeg_bytes
from vislint.catalog import build_catalog, canonical_split, sniff_format

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
INTEL = SHARED / "intel-scenes-sample"
FIXTURES = SHARED / "imagededup-fixtures"
JPEG = jpeg_bytes(gradient(16, 12))


def make_tree(root: Path, relpaths, data=JPEG) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def by_relpath(catalog):
    return {r: (lab, s) for r, lab, s in zip(catalog.relpaths, catalog.labels, catalog.splits)}


@pytest.mark.parametrize("name, split", [
    ("train", "train"), ("Training", "train"), ("train_set", "train"), ("TRAIN-SET", "train"),
    ("val", "valid"), ("valid", "valid"), ("validation", "valid"), ("dev_set", "valid"),
    ("valid_images", "valid"), ("test", "test"), ("testing", "test"), ("test_split", "test"),
    ("test_imgs", "test"), ("train_data", "train"),
    ("buildings", None), ("trainer", None), ("contest", None), ("images", None), ("set", None),
])
def test_canonical_split(name, split):
    assert canonical_split(name) == split


def test_intel_layout_labels_and_splits(tmp_path):
    make_tree(tmp_path, ["train_set/cat/a.jpg", "train_set/dog/b.jpg", "valid/cat/c.jpg",
                         "test_set/d.jpg", "test_set/e.jpg", "Training/bird/f.jpg",
                         "dev_set/dog/g.jpg"])
    c = build_catalog(tmp_path)
    assert by_relpath(c) == {
        "train_set/cat/a.jpg": ("cat", "train"), "train_set/dog/b.jpg": ("dog", "train"),
        "valid/cat/c.jpg": ("cat", "valid"), "test_set/d.jpg": (None, "test"),
        "test_set/e.jpg": (None, "test"), "Training/bird/f.jpg": ("bird", "train"),
        "dev_set/dog/g.jpg": ("dog", "valid"),
    }
    assert c.root == tmp_path
    assert c.paths == [str(tmp_path / r) for r in c.relpaths]
    assert c.relpaths == sorted(c.relpaths)


def test_labels_need_every_image_one_folder_deep(tmp_path):
    make_tree(tmp_path, ["train/cat/a.jpg", "train/loose.jpg", "test/dog/b.jpg",
                         "test/dog/deeper/c.jpg"])
    assert set(build_catalog(tmp_path).labels) == {None}
    other = tmp_path / "classes"
    make_tree(other, ["cat/a.jpg", "dog/b.jpg"])  # no split folders: the root's subtree
    c = build_catalog(other)
    assert c.labels == ["cat", "dog"] and c.splits == [None, None]


def test_split_found_at_any_depth(tmp_path):
    make_tree(tmp_path, ["project/v2/val_set/cat/a.jpg", "project/v2/val_set/dog/b.jpg"])
    c = build_catalog(tmp_path)
    assert c.splits == ["valid", "valid"] and c.labels == ["cat", "dog"]


def test_labels_and_splits_can_be_turned_off(tmp_path):
    make_tree(tmp_path, ["train/cat/a.jpg", "test/dog/b.jpg"])
    c = build_catalog(tmp_path, labels=None)
    assert c.labels == [None, None] and c.splits == ["test", "train"]
    c = build_catalog(tmp_path, splits=None)
    assert c.labels == ["dog", "cat"] and c.splits == [None, None]
    with pytest.raises(ValueError, match="labels must be 'auto' or None"):
        build_catalog(tmp_path, labels="folders")


def test_what_counts_as_an_image(tmp_path):
    make_tree(tmp_path, ["a.jpg", "B.JPG", "c.Png", "disguised.dat", ".hidden.jpg",
                         ".cache/d.jpg", "x.jpg/inside.jpg"])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,cat\n")
    (tmp_path / "fake.dat").write_bytes(b"BM not really a bitmap")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "dangling.dat").symlink_to(tmp_path / "nowhere.dat")
    c = build_catalog(tmp_path)
    assert c.relpaths == ["B.JPG", "a.jpg", "c.Png", "dangling.jpg", "disguised.dat",
                          "x.jpg/inside.jpg"]


def test_symlink_loop_terminates_and_outside_links_are_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    make_tree(root, ["a/x.jpg"])
    make_tree(outside, ["y.jpg"])
    (root / "a" / "loop").symlink_to(root)
    (root / "a" / "self").symlink_to(root / "a")
    (root / "linked").symlink_to(outside)
    assert build_catalog(root).relpaths == ["a/x.jpg", "linked/y.jpg"]


def test_list_source(tmp_path, monkeypatch):
    make_tree(tmp_path, ["a.jpg", "b.jpg"])
    monkeypatch.chdir(tmp_path)
    c = build_catalog(["a.jpg", tmp_path / "b.jpg"])
    assert c.root is None
    assert c.paths == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert c.relpaths == ["a.jpg", (tmp_path / "b.jpg").as_posix()]
    assert c.labels == [None, None] and c.splits == [None, None]
    assert len(build_catalog([tmp_path / "missing.jpg"])) == 1  # decode reports it, not catalog


def test_dataframe_and_csv_sources(tmp_path, monkeypatch):
    folder = tmp_path / "lists"
    make_tree(folder, ["imgs/a.jpg", "imgs/b.jpg", "imgs/c.jpg"])
    rows = pd.DataFrame({"filepath": ["imgs/a.jpg", "imgs/b.jpg", "imgs/c.jpg"],
                         "label": ["cat", "", None], "split": ["validation", "holdout", None]})
    rows.to_csv(folder / "list.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the CSV's paths are relative to its folder, not to the cwd
    from_csv = build_catalog(str(folder / "list.csv"))
    assert from_csv.paths == [str(folder / "imgs" / n) for n in ("a.jpg", "b.jpg", "c.jpg")]
    assert from_csv.relpaths == ["imgs/a.jpg", "imgs/b.jpg", "imgs/c.jpg"]
    assert from_csv.labels == ["cat", None, None]
    assert from_csv.splits == ["valid", "holdout", None]
    monkeypatch.chdir(folder)  # a DataFrame's relative paths are relative to the cwd
    from_frame = build_catalog(rows.rename(columns={"filepath": "path"}))
    assert from_frame == from_csv


def test_ids_are_stable_across_catalogs(tmp_path):
    make_tree(tmp_path / "one", ["train/cat/a.jpg", "train/dog/b.jpg"])
    make_tree(tmp_path / "two", ["train/cat/a.jpg", "train/dog/b.jpg", "train/cat/new.jpg"])
    one, two = build_catalog(tmp_path / "one"), build_catalog(tmp_path / "two")
    assert dict(zip(one.relpaths, one.ids)).items() <= dict(zip(two.relpaths, two.ids)).items()
    assert one.ids[0] == hashlib.blake2b(b"train/cat/a.jpg").hexdigest()[:16]
    assert len(set(two.ids)) == 3


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; pass a folder"):
        build_catalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no images found under .*image signatures"):
        build_catalog(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"no 'path' or 'filepath' column .*\['file', 'label'\]"):
        build_catalog(pd.DataFrame({"file": ["a.jpg"], "label": ["cat"]}))
    with pytest.raises(ValueError, match="a.jpg more than once"):
        build_catalog([str(tmp_path / "a.jpg"), str(tmp_path / "x" / ".." / "a.jpg")])
    with pytest.raises(ValueError, match="a.jpg more than once"):
        build_catalog(pd.DataFrame({"path": [str(tmp_path / "a.jpg")] * 2}))
    with pytest.raises(ValueError, match="list of paths is empty"):
        build_catalog([])
    (tmp_path / "one.jpg").write_bytes(JPEG)
    with pytest.raises(ValueError, match="pass it in a list"):
        build_catalog(tmp_path / "one.jpg")
    with pytest.raises(ValueError, match="cannot build a catalog from a int"):
        build_catalog(3)


def test_sniff_format():
    assert sniff_format(JPEG[:32]) == "JPEG"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert sniff_format(b"P6\n16 12\n255\n") == "PPM"
    assert sniff_format(b"Plain text") is None
    assert sniff_format(b"BMW is a car, not a bitmap") is None


@pytest.mark.shared_data
@pytest.mark.skipif(not INTEL.is_dir(), reason=f"shared data not found at {INTEL}")
def test_real_intel_sample():
    c = build_catalog(INTEL)
    assert len(c) == 3999
    assert set(c.splits) == {"train", "valid", "test"}
    assert {lab for lab in c.labels if lab} == {"buildings", "forest", "glacier", "mountain",
                                                "sea", "street"}
    unlabelled = {r.split("/")[0] for r, lab in zip(c.relpaths, c.labels) if lab is None}
    assert unlabelled == {"test_set"}
    assert collections.Counter(c.splits)["test"] == sum(lab is None for lab in c.labels)
    assert by_relpath(c)["train_set/glacier/10234.jpg"] == ("glacier", "train")


@pytest.mark.shared_data
@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"shared data not found at {FIXTURES}")
def test_real_imagededup_fixtures():
    c = build_catalog(FIXTURES)
    assert len(c) == 34
    assert "formats_images/ukbench09380.svg" in c.relpaths  # a JPEG named .svg
    assert not any(r.endswith(".csv") for r in c.relpaths)
    assert set(c.labels) == {None} and set(c.splits) == {None}

"""A model's predictions (vislint.predictions): the forms they come in, the errors that say how
to fix them, and label conflicts from them on the MNIST test set with a real model's
out-of-sample predictions and people's verdicts on 100 candidates."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import vislint
from conftest import shared, write_images
from vislint.predictions import read_predictions

REL = ["a/x.jpg", "a/y.jpg", "b/z.jpg"]
PATHS = [f"/data/{r}" for r in REL]
LABELS = ["a", "a", "b"]
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])


def read(source, labels=LABELS):
    return read_predictions(source, relpaths=REL, paths=PATHS, labels=labels)


def test_every_form_gives_the_same_aligned_probabilities(tmp_path):
    frame = pd.DataFrame(PROBS, columns=["a", "b"])
    named = frame.assign(path=REL)[["path", "a", "b"]].iloc[[2, 0, 1]]  # rows in another order
    absolute = named.assign(path=[PATHS[2], PATHS[0], PATHS[1]])
    np.save(tmp_path / "p.npy", PROBS)
    named.to_csv(tmp_path / "p.csv", index=False)
    named.to_parquet(tmp_path / "p.parquet")
    for source in (PROBS, (PROBS, ["a", "b"]), frame, named, absolute, tmp_path / "p.npy",
                   str(tmp_path / "p.csv"), tmp_path / "p.parquet"):
        got = read(source)
        assert got.classes == ["a", "b"], source
        np.testing.assert_allclose(got.probs, PROBS)
    assert read(PROBS).predicted() == (["a", "b", "b"], pytest.approx([0.9, 0.8, 0.7]))


@pytest.mark.parametrize("source, message", [
    (PROBS[:2], "2 rows for 3 images"),
    (np.ones((3, 3)) / 3, r"one column per label of the scan, in sorted order \(2: a, b\)"),
    ((PROBS, ["a", "c"]), "the labels b are not among the predictions' classes"),
    (np.array([[0.9, 0.1], [np.nan, 1.0], [0.5, 0.5]]), "NaN or infinity .* a/y.jpg"),
    (np.array([[2.0, 1.0], [0.2, 0.8], [0.3, 0.7]]), "a/x.jpg's sum to 3: apply a softmax to logits"),
    (pd.DataFrame({"path": ["a/x.jpg"], "a": [1.0], "b": [0.0]}),
     "no row for 2 of the 3 images .*a/y.jpg"),
    (pd.DataFrame({"a": ["high"] * 3, "b": ["low"] * 3}), "every class column must hold numbers"),
])
def test_wrong_predictions_say_what_to_fix(source, message):
    with pytest.raises(ValueError, match=message):
        read(source)


def test_a_scan_with_predictions_flags_the_label_they_contradict_and_keeps_the_copies(tmp_path):
    """Through vislint.scan: the image whose label the model contradicts is a label conflict
    with the predicted class, and predictions change no copy, leak or outlier column."""
    root = tmp_path / "data"
    write_images(root / "train_set" / "cat", 6, seed=4)
    write_images(root / "train_set" / "dog", 6, seed=5)
    base = vislint.scan(root)
    rel = base.images["relpath"].tolist()
    probs = np.array([[0.95, 0.05] if r.split("/")[1] == "cat" else [0.05, 0.95] for r in rel])
    wrong = rel.index("train_set/cat/img00000.jpg")
    probs[wrong] = [0.1, 0.9]
    frame = pd.DataFrame(probs, columns=["cat", "dog"]).assign(path=rel)
    res = vislint.scan(root, predictions=frame)
    df = res.images
    assert df["is_label_conflict"].tolist() == [i == wrong for i in range(len(rel))]
    assert df["suggested_label"][wrong] == "dog" and df["label_sources"][wrong] == "prediction"
    assert df["predicted_label"][wrong] == "dog" and df["predicted_probability"][wrong] == 0.9
    assert res.info["params"]["predictions"] == "2 classes"
    from vislint.report import report_html

    assert "labelled cat; the model predicts dog (0.90)" in report_html(res)
    untouched = [c for c in df.columns if c.startswith(("is_exact", "is_near", "is_leak",
                                                        "duplicate", "outlier", "near_", "exact_",
                                                        "leak"))]
    pd.testing.assert_frame_equal(df[untouched], base.images[untouched])


def mnist():
    root = shared("mnist-test-predictions")
    index = pd.read_csv(root / "index.csv")
    probs = np.load(root / "pred_probs.npy")
    frame = pd.DataFrame(probs, columns=[str(c) for c in range(10)]).assign(path=index.file)
    candidates = pd.read_csv(root / "label_error_candidates.csv")
    return root, index, frame, candidates


def test_mnist_errors_people_confirmed_are_flagged_within_100(tmp_path):
    """Issue 17: ≥ 13 of the 15 errors people confirmed, with ≤ 100 images flagged; planted
    label flips (2, 5, 10 %, fixed seeds: the labels change, not the images or predictions)
    found at recall ≥ 0.95 with ≤ 100 flags beyond them."""
    root, index, frame, candidates = mnist()
    out = tmp_path / "out"  # the rescans with flipped labels decode nothing again
    res = vislint.scan(root, out=out, predictions=frame, splits=None)
    df = res.images.set_index("relpath")
    flagged = set(df.index[df.is_label_conflict])
    confirmed = set(candidates.file[candidates.majority_not_given])
    assert len(confirmed) == 15 and len(confirmed & flagged) >= 13 and len(flagged) <= 100, (
        len(confirmed & flagged), len(flagged))
    assert set(df.label_sources[df.is_label_conflict]) == {"prediction"}
    for share, seed in ((0.02, 1), (0.05, 2), (0.10, 3)):
        rng = np.random.default_rng(seed)
        labels = index.label.to_numpy().copy()
        flip = rng.choice(len(labels), int(share * len(labels)), replace=False)
        labels[flip] = (labels[flip] + rng.integers(1, 10, len(flip))) % 10
        listed = pd.DataFrame({"path": [str(root / f) for f in index.file],
                               "label": labels.astype(str)})
        noisy = vislint.scan(listed, out=out, predictions=frame.assign(
            path=listed.path)).images.set_index("path")
        planted = noisy.index.isin(listed.path[flip])
        flags = noisy.is_label_conflict.to_numpy()
        assert (flags & planted).sum() >= 0.95 * len(flip), share
        assert (flags & ~planted).sum() <= 100, share


def test_the_command_reads_predictions_and_explains_a_bad_file(tmp_path):
    import json
    import subprocess
    import sys

    root = tmp_path / "data"
    write_images(root / "train_set" / "cat", 4, seed=6)
    write_images(root / "train_set" / "dog", 4, seed=7)
    rel = sorted(f"train_set/{c}/img{i:05d}.jpg" for c in ("cat", "dog") for i in range(4))
    probs = [[0.9, 0.1] if "/cat/" in r else [0.1, 0.9] for r in rel]
    probs[0] = [0.2, 0.8]  # a cat the model calls a dog
    pd.DataFrame(probs, columns=["cat", "dog"]).assign(path=rel).to_csv(tmp_path / "p.csv", index=False)
    run = lambda f: subprocess.run([sys.executable, "-m", "vislint", "scan", str(root), "--json",  # noqa: E731
                                    "--predictions", str(f)], capture_output=True, text=True, timeout=300)
    ok = run(tmp_path / "p.csv")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["checks"]["label_conflict"]["images"] == 1
    pd.DataFrame([[2.0, 1.0]] * 8, columns=["cat", "dog"]).to_csv(tmp_path / "bad.csv", index=False)
    bad = run(tmp_path / "bad.csv")
    assert bad.returncode == 2 and "apply a softmax to logits" in bad.stderr

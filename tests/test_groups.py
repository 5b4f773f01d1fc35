"""Duplicate groups do not chain: a slowly sliding crop makes every neighbour a near
duplicate of the next, which connected components would merge into one blob."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vislint
from vislint import _native


def _photo():
    import skimage
    return Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")


def test_sliding_crops_do_not_chain_into_one_group(tmp_path):
    photo = _photo()  # 512×512
    steps = 30
    for s in range(steps):
        x = 4 * s
        photo.crop((x, 60, x + 300, 360)).save(tmp_path / f"crop{s:02d}.jpg", quality=92)
    res = vislint.scan(tmp_path)
    df = res.to_dataframe()
    t = res.info["thresholds"]["near_duplicate"]
    pairs = res.pairs("near_duplicate")
    assert len(pairs) > 0
    # connected components over the duplicate pairs: the chain links everything
    row = {i: r for r, i in enumerate(df["id"])}
    comp = _native.components(len(df), np.array([row[a] for a in pairs.id_a], np.int64),
                              np.array([row[b] for b in pairs.id_b], np.int64))
    assert np.bincount(comp).max() == steps
    # the two ends of the chain are not near duplicates of each other
    feats_ends = pairs[(pairs.path_a.str.contains("crop00") & pairs.path_b.str.contains(f"crop{steps - 1}"))]
    assert feats_ends.empty
    # vislint's groups: several tight groups, every member close to its own representative
    groups = res.groups("near_duplicate")
    assert groups.group.nunique() >= 3
    assert (groups.similarity >= t - 1e-6).all()
    for _, g in groups.groupby("group"):
        assert g.keep.sum() == 1


def test_keep_policy_prefers_labelled_train_larger_sharper(tmp_path):
    import pandas as pd
    from PIL import ImageFilter
    photo = _photo().crop((50, 50, 350, 350))
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "test").mkdir()
    photo.save(tmp_path / "test" / "big_unlabelled.png")                   # unlabelled: last
    photo.resize((150, 150)).save(tmp_path / "train" / "a" / "small.png")  # smaller
    photo.save(tmp_path / "train" / "a" / "large.jpg", quality=95)         # kept
    photo.filter(ImageFilter.GaussianBlur(1)).save(tmp_path / "train" / "a" / "large_soft.jpg", quality=95)
    res = vislint.scan(tmp_path)
    group = res.groups("near_duplicate")
    assert group.group.nunique() == 1 and len(group) == 4
    assert group.iloc[0].path.endswith("train/a/large.jpg") and group.iloc[0].keep
    df = res.to_dataframe().set_index("relpath")
    kept_id = df.loc["train/a/large.jpg", "id"]
    for other in ("test/big_unlabelled.png", "train/a/small.png", "train/a/large_soft.jpg"):
        assert df.loc[other, "duplicate_of"] == kept_id
    assert pd.isna(df.loc["train/a/large.jpg", "duplicate_of"])


def test_evaluate_counts_pairs_groups_and_flags(tmp_path):
    import pandas as pd
    from conftest import write_images
    paths = write_images(tmp_path, 6)
    (tmp_path / "copy.jpg").write_bytes(paths[0].read_bytes())
    (tmp_path / "empty.jpg").write_bytes(b"")
    res = vislint.scan(tmp_path)
    gt = pd.DataFrame({"path": ["img00000.jpg", "copy.jpg", "img00001.jpg", "img00002.jpg", "empty.jpg"],
                       "group": ["g0", "g0", "g1", "g1", "e"],
                       "corrupt": [False, False, False, False, True]})
    ev = vislint.evaluate(res, gt).set_index(["check", "unit"])
    pairs = ev.loc[("duplicate", "pairs")]
    assert (pairs.tp, pairs.fp, pairs.fn) == (1, 0, 1)  # the copy found; 1↔2 is no real copy
    assert pairs.precision == 1.0 and pairs.recall == 0.5
    assert ev.loc[("invalid", "images")].recall == 1.0
    flags = pd.DataFrame({"path": ["empty.jpg", "img00003.jpg"], "check": ["invalid", "invalid"]})
    inv = vislint.evaluate(res, flags).set_index(["check", "unit"]).loc[("invalid", "images")]
    assert (inv.tp, inv.fp, inv.fn) == (1, 0, 1)
    with pytest.raises(ValueError, match="not in the scan"):
        vislint.evaluate(res, pd.DataFrame({"path": ["nope.jpg"], "group": ["x"]}))

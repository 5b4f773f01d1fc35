"""Duplicate groups do not chain: a slowly sliding crop makes every neighbour a near
duplicate of the next, which connected components would merge into one blob."""
from __future__ import annotations

from pathlib import Path

import numpy as np
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

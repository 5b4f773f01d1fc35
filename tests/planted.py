"""Planted problems made from real photos, with their ground truth.

Used by the tests and by ``benchmarks/quality.py`` (which chooses the defaults).
Every function is deterministic for a given seed.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

COPY_KINDS = ("jpeg", "resize", "crop", "hflip", "brightness")
"""The transformations near-duplicate recall is promised for (issue: q ≥ 50,
resize ≥ 0.5×, crop ≤ 10 %, horizontal flip, brightness ±20 %)."""
EXTRA_KINDS = ("colour", "rotate", "rotate_any", "text")
"""Harder transformations, measured and reported but not promised."""


def transform(im: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, str, int]:
    """One transformed copy: (image, description, JPEG quality to save with)."""
    w, h = im.size
    if kind == "jpeg":
        q = rng.randint(50, 95)
        return im, f"re-encoded q{q}", q
    if kind == "resize":
        f = rng.uniform(0.5, 0.9)
        return im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS), f"resize {f:.2f}", 92
    if kind == "crop":
        f = rng.uniform(0.02, 0.10)  # fraction of each side removed in total
        dx, dy = round(w * f), round(h * f)
        ox, oy = rng.randint(0, dx), rng.randint(0, dy)
        return im.crop((ox, oy, w - (dx - ox), h - (dy - oy))), f"crop {f:.0%}", 92
    if kind == "hflip":
        return ImageOps.mirror(im), "horizontal flip", 92
    if kind == "brightness":
        f = rng.choice([rng.uniform(0.8, 0.9), rng.uniform(1.1, 1.2)])
        return ImageEnhance.Brightness(im).enhance(f), f"brightness ×{f:.2f}", 92
    if kind == "colour":
        f = rng.uniform(0.6, 1.4)
        return ImageEnhance.Color(im).enhance(f), f"saturation ×{f:.2f}", 92
    if kind == "rotate":
        a = rng.uniform(-10, 10)
        return im.rotate(a, resample=Image.Resampling.BILINEAR), f"rotate {a:.1f}°", 92
    if kind == "rotate_any":  # any angle; half of them on an expanded canvas with black corners
        a, expand = rng.uniform(0, 360), rng.random() < 0.5
        out = im.rotate(a, resample=Image.Resampling.BILINEAR, expand=expand)
        return out, f"rotate {a:.0f}°{' expanded' if expand else ''}", 92
    if kind == "text":
        from PIL import ImageDraw
        out = im.copy()
        ImageDraw.Draw(out).text((w * 0.1, h * 0.8), "© vislint 2026", fill=(255, 255, 255))
        return out, "text overlay", 92
    raise ValueError(kind)


def _save(im: Image.Image, path: Path, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.convert("RGB").save(path, "JPEG", quality=quality)


def plant_copies(sources: list[Path], dest: Path, *, kinds=COPY_KINDS, n_originals=200,
                 n_distractors=400, seed=0) -> dict:
    """Originals with one transformed copy each, plus untouched distractors.

    Returns {"copies": [(copy_rel, original_rel, kind, detail)], "files": [rel...],
    "source": {untouched rel: its source path}} (the source tells which natural pairs
    among the untouched photos are labelled; see ``natural.py``).
    """
    rng = random.Random(seed)
    chosen = rng.sample(list(sources), n_originals + n_distractors)
    copies, files, source = [], [], {}
    for i, src in enumerate(chosen):
        rel = f"img/{i:05d}.jpg"
        source[rel] = Path(src)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(Path(src).read_bytes())
        files.append(rel)
        if i < n_originals:
            kind = kinds[i % len(kinds)]
            im = Image.open(src).convert("RGB")
            out, detail, q = transform(im, kind, rng)
            crel = f"copy/{i:05d}_{kind}.jpg"
            _save(out, dest / crel, q)
            copies.append((crel, rel, kind, detail))
            files.append(crel)
    return {"copies": copies, "files": files, "source": source}


def copy_metrics(results, planted: dict) -> dict:
    """Recall per kind and precision over pairs that involve a planted copy.

    A predicted pair involving a copy is correct when it joins the copy to its
    own original. Pairs among untouched photos are left out: real photo
    collections hold unlabelled near duplicates of their own.
    """
    rel_row = {r: i for i, r in enumerate(results.images["relpath"])}
    id_row = {i: r for r, i in enumerate(results.images["id"])}
    truth = {rel_row[c]: rel_row[o] for c, o, _, _ in planted["copies"]}
    kind_of = {rel_row[c]: k for c, _, k, _ in planted["copies"]}
    pairs = results.pair_table
    pairs = pairs[pairs["check"].isin(["exact_duplicate", "near_duplicate"])]
    found = {tuple(sorted((id_row[a], id_row[b]))) for a, b in zip(pairs["id_a"], pairs["id_b"])}
    tp = fp = 0
    hit = set()
    for a, b in found:
        for c, other in ((a, b), (b, a)):
            if c in truth:
                if truth[c] == other:
                    tp += 1
                    hit.add(c)
                elif other not in truth or truth[other] != truth[c]:
                    fp += 1
    recall = {k: np.mean([c in hit for c in truth if kind_of[c] == k]) for k in sorted(set(kind_of.values()))}
    return {"precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": len(hit) / len(truth), "recall_by_kind": recall, "fp": fp}


def plant_quality(sources: list[Path], dest: Path, *, n_each=20, n_clean=300, seed=0) -> dict:
    """Clean photos plus dark, bright, blurry and low-information versions of others.

    Returns {"flags": [(rel, check)], "files": [rel...]}.
    """
    rng = random.Random(seed)
    chosen = rng.sample(list(sources), n_clean + 4 * n_each)
    flags, files = [], []
    for i, src in enumerate(chosen):
        im = Image.open(src).convert("RGB")
        kind = None if i < n_clean else ("dark", "bright", "blurry", "low_information")[(i - n_clean) // n_each]
        if kind == "dark":
            im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.05, 0.15))
        elif kind == "bright":
            im = Image.blend(im, Image.new("RGB", im.size, (255, 255, 255)), rng.uniform(0.75, 0.9))
        elif kind == "blurry":
            im = im.filter(ImageFilter.GaussianBlur(rng.uniform(2.5, 4.0) * max(im.size) / 150))
        elif kind == "low_information":
            arr = np.full((im.size[1], im.size[0], 3), rng.randint(30, 220), np.uint8)
            arr = arr + np.random.default_rng(i).integers(0, 3, arr.shape, dtype=np.uint8)
            im = Image.fromarray(arr)
        rel = f"q/{i:05d}.jpg"
        _save(im, dest / rel, 92)
        files.append(rel)
        if kind:
            flags.append((rel, kind))
    return {"flags": flags, "files": files}


def flag_metrics(results, planted: dict, check: str) -> dict:
    """Precision and recall of ``is_<check>`` against the planted flags of that check."""
    df = results.images
    truth = {r for r, c in planted["flags"] if c == check}
    pred = set(df.loc[df[f"is_{check}"], "relpath"])
    tp = len(pred & truth)
    return {"precision": tp / len(pred) if pred else 1.0, "recall": tp / len(truth) if truth else 1.0,
            "flagged": len(pred)}


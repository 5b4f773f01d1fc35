"""The HTML report of a scan: an overview with plots, and a gallery per check.

:func:`write_report` writes one HTML file and, beside it, a folder of thumbnails
(``report.html`` → ``report_files/thumbs/<content hash>-160.jpg``); :func:`report_html`
returns the page as a string with the thumbnails embedded (what ``ScanResults.show()``
puts in a notebook). Either way the page is self-contained: its style sheet and script
are inlined (``vislint/report_assets``), plots are inline SVG drawn here, nothing is
loaded from the network, and it works from ``file://``.

The page:

- **Overview:** images, splits and labels; images and groups per check (never graph
  edges) with thresholds; time taken per stage; features and parameters; a split × split
  leak matrix; a label × label conflict matrix; the distribution of nearest-neighbour
  similarity with the candidate (verified from) and outlier thresholds; histograms of sharpness,
  luminance and entropy with the quality thresholds.
- **Galleries**, one per check, most severe first: duplicate and leak groups side by side
  (path, label, split, similarity, KEEP on the image the keep policy keeps); label
  conflicts with the suggested label and the images they conflict with; outliers with
  their nearest neighbours; invalid files with their reasons; quality flags with their
  statistic. The findings are embedded as JSON and drawn a page at a time as a gallery
  is scrolled, so a report with 100k findings opens at once; a filter bar narrows every
  gallery to a label, a split or a file name.

Each gallery lists at most ``max_per_section`` findings (the most severe; default 200,
None for all); a thumbnail is made only for the images listed. Thumbnails are decoded
with :mod:`vislint.decode` (JPEG draft mode, EXIF orientation), shrunk by the C++ core
(:func:`vislint._native.thumbnail`) and encoded as JPEG by Pillow, on a thread pool; a JPEG
already within the thumbnail size (and under 48 kB) is copied as it is.
Nearest neighbours of outliers and label conflicts come from the feature vectors when the
results still hold them (right after a scan); a loaded scan has only each image's nearest
neighbour (``nearest_id``).
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .vocabulary import Check, checks
from .workdir import atomic_path, mark_output

if TYPE_CHECKING:
    from .tables import Columns

# ``res`` below is a vislint.ScanResults; vislint.results imports this module for its
# report() and show(), so this one does not import it back (not even for type hints).

DEFAULT_MAX_PER_SECTION = 200
"""Findings listed per gallery by default (the most severe)."""
THUMB_SIDE = 160
"""Longest side of a thumbnail, in pixels."""
THUMB_QUALITY = 80
"""JPEG quality of the thumbnails."""
OVERLAY_SIDE = 128
"""Side of a verified pair's aligned overlay, in pixels (drawn from the 64 px grey thumbnails
the verification aligns)."""
_AS_IS_BYTES = 48_000
"""A JPEG within THUMB_SIDE and at most this many bytes is copied, not re-encoded."""
NEIGHBOURS = 4
"""Nearest neighbours shown beside an outlier or a label conflict found by the neighbour vote."""

# roles of an image in a finding (the page styles and filters by them)
_PLAIN, _KEEP, _SUBJECT, _NEIGHBOUR = 0, 1, 2, 3


def write_report(res, path: str | Path, *,
                 max_per_section: int | None = DEFAULT_MAX_PER_SECTION, threads: int = 0) -> Path:
    """Write the report of ``res`` to ``path`` (an .html file) and its thumbnails beside it.

    path: the HTML file; its thumbnails go to ``<stem>_files/thumbs/`` next to it (files
        there that the new report does not use are removed; thumbnails already there are
        reused, as they are named by the image's content hash).
    max_per_section: most findings listed per gallery, the most severe first (default 200);
        None lists every finding.
    threads: threads making thumbnails, 0 (default) = all cores.

    Returns the path written. The seconds it took are stored in ``res.info["timings"]["report"]``.
    """
    start = time.perf_counter()
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{path}: the report is an HTML file; give a path ending in .html")
    path.parent.mkdir(parents=True, exist_ok=True)
    files = path.with_name(f"{path.stem}_files")
    thumbs_dir = files / "thumbs"
    page = _Page(res, _limit(max_per_section))
    jobs = page.thumbnail_jobs()
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    mark_output(files)  # a report written inside the data is not scanned as data
    names = {h: f"{h}-{THUMB_SIDE}.jpg" for h in jobs}
    todo = {h: job for h, job in jobs.items() if not _complete_jpeg(thumbs_dir / names[h])}
    made = _make(todo, _thumbnail, threads)
    for h, data in made.items():
        if data is not None:  # atomic: a full disk or a crash never leaves half a thumbnail
            with atomic_path(thumbs_dir / names[h], fsync=False) as tmp:
                tmp.write_bytes(data)
    wanted = {names[h] for h in jobs if h not in made or made[h] is not None}
    overlays = page.overlay_jobs()
    overlay_names = {k: f"{k}-overlay.png" for k in overlays}
    todo = {k: job for k, job in overlays.items() if not (thumbs_dir / overlay_names[k]).is_file()}
    made = _make(todo, _overlay, threads)
    for k, data in made.items():
        if data is not None:
            with atomic_path(thumbs_dir / overlay_names[k], fsync=False) as tmp:
                tmp.write_bytes(data)
    wanted |= {overlay_names[k] for k in overlays if k not in made or made[k] is not None}
    for old in [*thumbs_dir.glob(f"*-{THUMB_SIDE}.jpg"), *thumbs_dir.glob("*-overlay.png")]:
        if old.name not in wanted:
            old.unlink()
    prefix = f"{files.name}/thumbs/"
    urls = {h: prefix + names[h] for h in jobs if names[h] in wanted}
    urls.update({k: prefix + overlay_names[k] for k in overlays if overlay_names[k] in wanted})
    text = page.html(urls, start)
    with atomic_path(path, fsync=False) as tmp:
        tmp.write_text(text, encoding="utf-8")
    res.info.setdefault("timings", {})["report"] = time.perf_counter() - start
    return path


def report_html(res, *, max_per_section: int | None = 50, threads: int = 0) -> str:
    """The report of ``res`` as one HTML string with its thumbnails embedded (data: URIs).

    max_per_section: most findings listed per gallery (default 50, as every thumbnail
        travels inside the page); None lists every finding.
    """
    start = time.perf_counter()
    page = _Page(res, _limit(max_per_section))
    made = _make(page.thumbnail_jobs(), _thumbnail, threads)
    urls = {h: "data:image/jpeg;base64," + base64.b64encode(d).decode("ascii")
            for h, d in made.items() if d is not None}
    made = _make(page.overlay_jobs(), _overlay, threads)
    urls.update({k: "data:image/png;base64," + base64.b64encode(d).decode("ascii")
                 for k, d in made.items() if d is not None})
    return page.html(urls, start)


def show(res, *, max_per_section: int | None = 50, height: int = 800):
    """Show the report inline in a Jupyter notebook (an iframe of :func:`report_html`,
    ``height`` CSS pixels high; default 800).

    Without IPython, writes the report to a temporary folder and prints where it is.
    Returns the IPython display object, or the path of the written report.
    """
    try:
        from IPython.display import HTML
    except ImportError:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="vislint-report-")) / "report.html"
        write_report(res, out, max_per_section=max_per_section)
        print(f"IPython is not installed, so the report cannot be shown inline; it was written "
              f"to {out} — open {out.as_uri()} in a browser (or pip install ipython jupyter)")
        return out
    page = html.escape(report_html(res, max_per_section=max_per_section), quote=True)
    # an iframe keeps the page's style and script apart from the notebook's; srcdoc, because
    # the thumbnails travel inside the page (IFrame() takes a URL)
    return HTML(f'<div class="vislint-report"><iframe srcdoc="{page}" '
                f'style="width:100%;height:{int(height)}px;border:0" title="vislint report"></iframe></div>')


def _limit(max_per_section):
    if max_per_section is None:
        return None
    if not isinstance(max_per_section, (int, np.integer)) or max_per_section < 1:
        raise ValueError(f"max_per_section must be an int >= 1 (findings per gallery) or None "
                         f"for all, got {max_per_section!r}")
    return int(max_per_section)


# ------------------------------------------------------------------------------ thumbnails

def _complete_jpeg(path: Path) -> bool:
    """Whether ``path`` is a JPEG file that ends with its end-of-image marker (a thumbnail cut
    short, by an older vislint or a damaged disk, is made again)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return False
            f.seek(-2, os.SEEK_END)
            return f.read(2) == b"\xff\xd9"
    except OSError:
        return False


def _thumbnail(job: tuple[str, bool]) -> bytes | None:
    """A JPEG thumbnail of the image at ``path`` (longest side :data:`THUMB_SIDE`), or None
    when it cannot be decoded (it changed or vanished since the scan). ``as_is``: the file is
    a small JPEG already within the size, used as it is (browsers apply its EXIF orientation)."""
    from PIL import Image

    from . import _native
    from .decode import BYTES_PER_PIXEL, MAX_PIXELS, DecodeError, decode_pixels, orient, read_image_file

    path, as_is = job
    if as_is:
        try:
            return read_image_file(path, BYTES_PER_PIXEL * MAX_PIXELS)
        except DecodeError:
            return None
    pixels, info = decode_pixels(path, tile=THUMB_SIDE, min_side=1, max_pixels=MAX_PIXELS,
                                 skip_hashes=None)
    if pixels is None:
        return None
    small = orient(_native.thumbnail(pixels, THUMB_SIDE), info.orientation)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()


def _overlay(job: tuple[str, str]) -> bytes | None:
    """A PNG of two images aligned as the verification aligns them (:data:`OVERLAY_SIDE` px):
    the first (the kept image) in red, the second in cyan, its grey levels matched to the
    first's (mean and spread), so the two read grey where they agree and coloured where they
    differ. None when either cannot be decoded or the two are nothing alike."""
    from PIL import Image

    from . import _native
    from .decode import decode_one

    tiles = []
    for path in job:
        tile, _ = decode_one(path, tile=_native.TILE_SIZE, min_side=1)
        if tile is None:
            return None
        tiles.append(tile)
    thumbs = _native.grey_thumbnails(np.stack(tiles), threads=1)
    pair = _native.aligned_pair(thumbs[0], thumbs[1])
    if pair is None:
        return None
    first, second = (p.astype(np.float32) for p in pair)
    inside = second > 0  # (0 where the warp leaves the second image)
    if inside.sum() > 16 and second[inside].std() > 0:
        scale = first[inside].std() / second[inside].std()
        second = np.where(inside, (second - second[inside].mean()) * scale + first[inside].mean(), 0)
    rgb = np.stack([first, second, second], axis=-1).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).resize((OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.BILINEAR).save(buf, "PNG")
    return buf.getvalue()


def _make(jobs: dict, make, threads: int) -> dict:
    """{key: job} -> {key: make(job)} (image bytes, or None), on a thread pool (decoding,
    resizing and encoding all release the GIL)."""
    if not jobs:
        return {}
    workers = min(threads or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        return {k: make(j) for k, j in jobs.items()}
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(jobs, pool.map(make, jobs.values())))


# ------------------------------------------------------------------------------ the page

class _Page:
    """The findings of one report, gathered once; :meth:`html` renders them."""

    def __init__(self, res, limit: int | None):
        self.res, self.limit = res, limit
        self.img = img = res.columns("images")
        self.n = len(img)
        self.row_of = {v: i for i, v in enumerate(img["id"].tolist())}
        self.used: dict[int, int] = {}  # image row -> index in the page's image table
        self.valid = ~img["is_invalid"].astype(bool)
        self.thresholds = res.info.get("thresholds", {})
        self._nbrs: dict[int, list[tuple[int, float]]] = {}
        self._overlays: dict[str, tuple[int, int]] = {}  # key -> (kept row, other row)
        gallery = {"group": self._groups, "conflict": self._label_conflicts,
                   "neighbours": self._neighbour_images, "invalid": self._invalid,
                   "image": self._images}
        # a check the scan did not run (a saved scan from before it existed) has no section
        self.sections = [gallery[c.gallery](c) for c in checks() if c.flag in img]

    # the image table of the page: only the images some listed finding shows
    def _ref(self, row: int) -> int:
        if row not in self.used:
            self.used[row] = len(self.used)
        return self.used[row]

    def thumbnail_jobs(self) -> dict[str, tuple[str, bool]]:
        """{content hash: (path, as_is)} of the valid images the page shows (one per content);
        as_is: a JPEG of at most :data:`THUMB_SIDE` px a side and :data:`_AS_IS_BYTES`, its own
        thumbnail."""
        img = self.img
        hashes, paths = img["content_hash"], img["path"]
        side = np.maximum(img["width"], img["height"])
        small = (side <= THUMB_SIDE) & (img["file_size"] <= _AS_IS_BYTES) & \
            (img["format"] == "JPEG")
        jobs = {}
        for row in self.used:
            h = hashes[row]
            if self.valid[row] and isinstance(h, str) and h not in jobs:
                jobs[h] = (paths[row], bool(small[row]))
        return jobs

    def overlay_jobs(self) -> dict[str, tuple[str, str]]:
        """{key: (kept image's path, other's path)} of the verified pairs the page shows with
        an aligned overlay (see :meth:`_overlay_key`)."""
        paths = self.img["path"]
        return {k: (paths[a], paths[b]) for k, (a, b) in self._overlays.items()}

    def _overlay_key(self, kept: int, other: int) -> str:
        """The key of the overlay of ``other`` aligned onto ``kept`` (their content hashes)."""
        hashes = self.img["content_hash"]
        key = f"{hashes[kept]}-{hashes[other]}"
        self._overlays[key] = (kept, other)
        return key

    def _section(self, check: Check, items: list, total: int, unit: str, note: str) -> dict:
        return {"id": check.name, "title": check.title[:1].upper() + check.title[1:],
                "total": total, "unit": unit, "note": note, "items": items}

    def _rule(self, check: Check) -> str:
        return check.rule_text(self.thresholds or None)

    def _take(self, order) -> list:
        return list(order if self.limit is None else order[:self.limit])

    def _groups(self, check: Check) -> dict:
        items, total = self._group_items(check)
        return self._section(check, items, total, "groups",
                             f"{check.what[:1].upper() + check.what[1:]} ({self._rule(check)}). "
                             "KEEP marks the image the keep policy keeps; each other image says "
                             "how it was verified against that one (the residual after aligning "
                             "the two, relative to contrast: under 0.065 the same photograph) "
                             "and shows the two aligned.")

    def _group_items(self, check: Check) -> tuple[list, int]:
        """The listed groups of ``check`` as findings, most severe first, and the number of groups."""
        img, t = self.img, self.res.columns("groups")
        mine = t["check"] == check.name
        rows = np.array([self.row_of[i] for i in t["id"][mine].tolist()], np.int64)
        groups = t["group"][mine]
        sims, keep = t["similarity"][mine].astype(float), t["keep"][mine].astype(bool)
        score = np.nan_to_num(img[check.score].astype(float)[rows]) if len(rows) else rows
        bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True]) if len(rows) else []
        spans = list(zip(bounds[:-1], bounds[1:]))
        # most severe first; then larger groups, then the group number (stable across runs)
        sev = [float(score[a:b].max()) for a, b in spans]
        order = sorted(range(len(spans)), key=lambda g: (-sev[g], -(spans[g][1] - spans[g][0]),
                                                        groups[spans[g][0]]))
        labels, splits = img["label"], img["split"]
        sugg = img["suggested_label"] if check.gallery == "conflict" else None
        # how each member was verified against the kept image (the check's own column, else
        # the duplicate groups' for leaks and label conflicts)
        column = next((c for c, _ in check.evidence if c.endswith("_evidence")),
                      "duplicate_evidence" if check.space == "copy" else None)
        notes = img[column] if column in img else [None] * len(img["id"])
        items = []
        valid = self.valid
        for g in self._take(order):
            a, b = spans[g]
            members = []
            kept = next((int(rows[j]) for j in range(a, b) if keep[j]), int(rows[a]))
            for j in range(a, b):
                r = int(rows[j])
                note = "kept" if keep[j] else (notes[r] if isinstance(notes[r], str)
                                               else f"similarity {sims[j]:.3f}")
                if sugg is not None and isinstance(sugg[r], str) and sugg[r] != labels[r]:
                    note += f" · suggested: {sugg[r]}"
                member = [self._ref(r), note, _KEEP if keep[j] else _PLAIN]
                # a verified pair shows how the two align (an exact copy needs no picture)
                if (not keep[j] and isinstance(notes[r], str) and not notes[r].startswith("exact")
                        and valid[r] and valid[kept]):
                    member.append(self._overlay_key(kept, r))
                members.append(member)
            head = f"{b - a} images"
            in_splits = sorted({s for s in splits[rows[a:b]] if isinstance(s, str)})
            if len(in_splits) > 1:
                head += " across " + ", ".join(in_splits)
            in_labels = sorted({s for s in labels[rows[a:b]] if isinstance(s, str)})
            if len(in_labels) > 1:
                head += " labelled " + ", ".join(in_labels)
            items.append([round(sev[g], 4), head, members])
        return items, len(spans)

    def _neighbours(self, rows: list[int], space: str | None) -> None:
        """Fill self._nbrs[row] = [(neighbour row, similarity), ...] for ``rows``: the first
        :data:`NEIGHBOURS` of the kNN graph of ``space`` (the semantic space falls back to the
        copy space), or the nearest image alone for a scan saved without its graphs."""
        rows = [r for r in rows if r not in self._nbrs]
        graphs = self.res.graphs
        graph = graphs.get(space) or graphs.get("copy")
        if graph is None or len(graph.neighbors) != self.n:
            img = self.img
            near, sim = img["nearest_id"], img["nearest_similarity"].astype(float)
            for r in rows:
                j = self.row_of.get(near[r]) if isinstance(near[r], str) else None
                self._nbrs[r] = [] if j is None else [(j, float(sim[r]))]
            return
        for r in rows:
            found = [(int(j), float(s)) for j, s in zip(graph.neighbors[r], graph.sims[r]) if j >= 0]
            self._nbrs[r] = found[:NEIGHBOURS]

    def _with_neighbours(self, rows, subject_note, space) -> list:
        self._neighbours(rows, space)
        labels = self.img["label"]
        items = []
        for r in rows:
            members = [[self._ref(r), subject_note(r), _SUBJECT]]
            for j, s in self._nbrs[r]:
                lab = f" · {labels[j]}" if isinstance(labels[j], str) else ""
                members.append([self._ref(j), f"neighbour, similarity {s:.3f}{lab}", _NEIGHBOUR])
            items.append(members)
        return items

    def _label_conflicts(self, check: Check) -> dict:
        img = self.img
        items, n_groups = self._group_items(check)
        g = self.res.columns("groups")
        in_group = set(g["id"][g["check"] == check.name].tolist())
        flag = img[check.flag].astype(bool)
        ids = img["id"]
        score = np.nan_to_num(img[check.score].astype(float))
        voted = [r for r in np.flatnonzero(flag) if ids[r] not in in_group]
        voted.sort(key=lambda r: (-score[r], r))
        labels = img["label"]
        room = None if self.limit is None else max(self.limit - len(items), 0)
        shown = voted if room is None else voted[:room]
        members = self._with_neighbours([int(r) for r in shown], self._label_evidence, check.space)
        for r, m in zip(shown, members):
            items.append([round(float(score[r]), 4),
                          f"labelled {labels[r]}; {self._label_evidence(r)}", m])
        items.sort(key=lambda it: -it[0])  # stable: groups stay in their order
        total = n_groups + len(voted)
        return self._section(
            check, items, total, "findings",
            f"{check.what[:1].upper() + check.what[1:]} ({self._rule(check)}).")

    def _label_evidence(self, r: int) -> str:
        """What an image's own label conflict rests on: the model's prediction (with its
        probability) and/or the neighbours' vote (with the agreement)."""
        img = self.img
        sources = img["label_sources"][r] if "label_sources" in img else None
        parts = []
        if isinstance(sources, str) and "prediction" in sources:
            parts.append(f"the model predicts {img['predicted_label'][r]} "
                         f"({float(img['predicted_probability'][r]):.2f})")
        if not isinstance(sources, str) or "neighbours" in sources:
            parts.append(f"neighbours say {img['suggested_label'][r]} · agreement "
                         f"{float(img['label_agreement'][r]):.2f}")
        return "; ".join(parts)

    def _flagged(self, check: Check) -> tuple[list, np.ndarray]:
        """Rows ``check`` flags, most severe first, and its scores (0 where it has none)."""
        img = self.img
        score = (np.nan_to_num(img[check.score].astype(float)) if check.scored
                 else np.zeros(self.n))
        return sorted(np.flatnonzero(img[check.flag].astype(bool)).tolist(),
                      key=lambda r: (-score[r], r)), score

    def _evidence(self, check: Check, r: int) -> str:
        """The check's numeric evidence of image ``r``, as "name value" parts."""
        img = self.img
        parts = []
        for column, kind in check.evidence:
            v = img[column][r]
            if kind in ("float", "int") and v == v:
                parts.append(f"{column.replace('_', ' ')} {float(v):.3g}")
        return " · ".join(parts)

    def _neighbour_images(self, check: Check) -> dict:
        rows, score = self._flagged(check)
        shown = self._take(rows)
        members = self._with_neighbours(shown, lambda r: self._evidence(check, r), check.space)
        items = [[round(float(score[r]), 4), check.name.replace("_", " "), m]
                 for r, m in zip(shown, members)]
        return self._section(check, items, len(rows), "images",
                             f"{check.what[:1].upper() + check.what[1:]} ({self._rule(check)}); "
                             "shown with its nearest neighbours.")

    def _invalid(self, check: Check) -> dict:
        img = self.img
        rows = np.flatnonzero(img[check.flag].astype(bool)).tolist()
        reason, message = img["invalid_reason"], img["invalid_message"]
        rel = img["relpath"]
        rows.sort(key=lambda r: (str(reason[r]), str(rel[r])))
        items = [[1.0, str(reason[r]), [[self._ref(r), str(message[r]), _SUBJECT]]]
                 for r in self._take(rows)]
        return self._section(check, items, len(rows), "files",
                             "Files that could not be used, with the reason.")

    def _images(self, check: Check) -> dict:
        img = self.img
        rows, score = self._flagged(check)
        rule = self._rule(check)
        w, h = img["width"], img["height"]
        items = []
        for r in self._take(rows):
            if check.statistic:
                column, name = check.statistic
                note = f"{name} {float(img[column][r]):.3g} ({rule})"
            else:
                note = self._evidence(check, r) or rule
            items.append([round(float(score[r]), 4), check.name.replace("_", " "),
                          [[self._ref(r), f"{note} · {w[r]}×{h[r]} px", _SUBJECT]]])
        return self._section(check, items, len(rows), "images",
                             f"{check.what[:1].upper() + check.what[1:]}: flagged when {rule}.")

    # ------------------------------------------------------------------ rendering

    def html(self, thumbs: dict[str, str], start: float) -> str:
        """The page; ``thumbs`` maps content hash -> thumbnail URL."""
        img = self.img
        rows = list(self.used)
        hashes = img["content_hash"]

        def column(name):
            vals = img[name][rows] if rows else []
            return [v if isinstance(v, str) else None for v in vals]

        urls = sorted(set(thumbs.values()))
        url_index = {u: i for i, u in enumerate(urls)}
        shown = [thumbs.get(hashes[r]) if self.valid[r] else None for r in rows]
        for section in self.sections:  # a tile's 4th field: its overlay's URL index, -1 none
            for item in section["items"]:
                for t in item[2]:
                    if len(t) > 3:
                        t[3] = url_index[thumbs[t[3]]] if t[3] in thumbs else -1
        data = {
            # thumb: index into "thumbs" (the URLs), -1 for none
            "images": {"path": column("relpath"), "label": column("label"), "split": column("split"),
                       "thumb": [url_index[u] if u else -1 for u in shown]},
            "thumbs": urls,
            "labels": sorted({v for v in img["label"].tolist() if isinstance(v, str)}),
            "splits": sorted({v for v in img["split"].tolist() if isinstance(v, str)}),
            "sections": self.sections,
        }
        payload = script_json(data)
        assets = resources.files("vislint") / "report_assets"
        css = (assets / "report.css").read_text(encoding="utf-8")
        js = (assets / "report.js").read_text(encoding="utf-8")
        overview = _overview(self.res, self.sections)
        source = self.res.info.get("params", {}).get("source") or "images"
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        seconds = time.perf_counter() - start
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>vislint report — {_e(source)}</title><style>{css}</style></head><body>"
            f"<header><h1>vislint report</h1><p class=\"sub\">{_e(source)} · {len(img):,} images · "
            f"vislint {_e(__version__)} · {when} · report built in "
            f"<span id=\"build-seconds\">{seconds:.2f}</span> s</p></header>"
            f"{overview}"
            "<nav id=\"filters\" aria-label=\"filters\"><label>label <select id=\"f-label\">"
            "<option value=\"\">all</option></select></label> <label>split <select id=\"f-split\">"
            "<option value=\"\">all</option></select></label> <label>file name "
            "<input id=\"f-search\" type=\"search\" placeholder=\"search paths\"></label>"
            "<span id=\"f-count\"></span></nav><main id=\"galleries\"></main>"
            f"<script type=\"application/json\" id=\"vislint-data\">{payload}</script>"
            f"<script>{js}</script></body></html>\n")


_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data) -> str:
    """``data`` as JSON that is safe inside an HTML ``<script>`` element: ``<``, ``>``, ``&``
    and the JavaScript line separators are written as ``\\uNNNN`` escapes, so no file name
    or label (``</script>``, ``<!--``) can end or re-mode the element (these characters only
    occur inside JSON strings, where the escapes mean the same text)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------ overview

def _overview(res, sections: list[dict]) -> str:
    img = res.columns("images")
    info = res.info
    th = info.get("thresholds", {})
    parts = ["<section id=\"overview\"><h2>Overview</h2><div class=\"cards\">"]
    splits = Counter(v for v in img["split"].tolist() if isinstance(v, str))
    labels = Counter(v for v in img["label"].tolist() if isinstance(v, str))
    timings = {k: v for k, v in info.get("timings", {}).items() if k != "report"}
    total = sum(timings.values())
    parts.append(_card("Images", f"<p class=\"big\" id=\"n-images\">{len(img):,}</p>"
                                 f"<p>{int(img['is_invalid'].sum()):,} invalid</p>"))
    parts.append(_card("Splits", _kv_table({k: f"{v:,}" for k, v in sorted(splits.items())})
                       if splits else "<p>no splits</p>"))
    label_rows = {k: f"{v:,}" for k, v in labels.most_common(30)}
    if len(labels) > 30:
        label_rows["…"] = f"{len(labels) - 30} more labels"
    parts.append(_card(f"Labels ({len(labels)})", _kv_table(label_rows) if len(labels) else "<p>no labels</p>"))
    stages = {k: f"{v:.2f} s" for k, v in timings.items()}
    parts.append(_card("Time taken", f"<p class=\"big\">{total:.1f} s</p>" + _kv_table(stages)))
    params = info.get("params", {})
    parts.append(_card("Features", _kv_table({k: str(params[k]) for k in ("features", "k", "index")
                                              if k in params})))
    if info.get("decisions"):
        parts.append(_decisions_card(info["decisions"]))
    parts.append("</div>")

    # counts per check: images and groups (never graph edges), with the threshold
    by_id = {s["id"]: s for s in sections}
    rows = []
    for r in res.summary_rows():
        check = r["check"]
        groups = "" if r["groups"] is None else f"{r['groups']:,}"
        link = f"<a href=\"#s-{check}\">{_e(by_id[check]['title'])}</a>" if check in by_id else _e(check)
        rows.append(f"<tr data-check=\"{check}\"><td>{link}</td><td class=\"num images\">"
                    f"{r['images']:,}</td><td class=\"num groups\">{groups}</td>"
                    f"<td>{_e(r['threshold'])}</td></tr>")
    parts.append("<h3>Findings per check</h3><table id=\"checks\" class=\"grid\"><thead><tr><th>check</th>"
                 "<th>images</th><th>groups</th><th>flagged when</th></tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table>")

    parts.append("<div class=\"cards\">")
    parts.append(_card("Leaks: split × split", _matrix(
        res.leak_table, "leak-matrix",
        "images in the row's split with a copy in the column's split")))
    parts.append(_card("Label conflicts: label × label", _matrix(
        _conflict_matrix(img), "conflict-matrix",
        "flagged images with the row's label that conflict with the column's label")))
    parts.append("</div><div class=\"cards plots\">")
    parts.append(_card("Nearest-neighbour similarity", _similarity_plot(img, th)))
    for title, svg in _quality_plots(img, th):
        parts.append(_card(title, svg))
    parts.append("</div>")
    parts.append("<details><summary>All thresholds</summary>"
                 + _kv_table({k: str(v) for k, v in th.items()}) + "</details></section>")
    return "".join(parts)


def _decisions_card(d: dict) -> str:
    """How many reviewer decisions the scan read and applied, per verdict, and those that
    named no image of the scan (with why)."""
    rows = {"read": f"{d['rows']:,}", "applied": f"{d['applied']:,}"}
    rows.update({f"images: {v}": f"{k:,}" for v, k in d["images_by_verdict"].items()})
    body = f"<div id=\"decisions\">{_kv_table(rows)}"
    if d["unmatched"]:
        items = "".join(f"<li>{_e(u['check'])}:{_e(u['verdict'])} {_e(u['image'])}"
                        + (f" + {_e(u['partner'])}" if u["partner"] else "") + f" — {_e(u['why'])}</li>"
                        for u in d["unmatched_rows"])
        more = d["unmatched"] - len(d["unmatched_rows"])
        body += (f"<p class=\"warn\">{d['unmatched']:,} name no image of this scan:</p><ul>{items}"
                 + (f"<li>and {more:,} more</li>" if more > 0 else "") + "</ul>")
    return _card("Reviewer decisions", body + "</div>")


def _card(title: str, body: str) -> str:
    return f"<div class=\"card\"><h3>{_e(title)}</h3>{body}</div>"


def _kv_table(rows: dict) -> str:
    return "<table class=\"kv\">" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows.items()) + "</table>"


def _conflict_matrix(img: Columns) -> dict:
    """{label: {other label: flagged images with label that conflict with other}}."""
    out: dict[str, dict[str, int]] = {}
    flagged = img["is_label_conflict"].astype(bool)
    for label, sugg, both in zip(img["label"][flagged], img["suggested_label"][flagged],
                                 img["conflict_labels"][flagged]):
        if not isinstance(label, str):
            continue
        others = [o for o in both.split("|") if o and o != label] if isinstance(both, str) else \
            ([sugg] if isinstance(sugg, str) and sugg != label else [])
        for o in others:
            out.setdefault(label, {})[o] = out.setdefault(label, {}).get(o, 0) + 1
    return out


def _matrix(table: dict, element_id: str, caption: str) -> str:
    if not table:
        return f"<p id=\"{element_id}\" class=\"empty\">none</p>"
    names = sorted(set(table) | {o for row in table.values() for o in row})
    if len(names) > 25:  # the most involved
        weight = {n: sum(table.get(n, {}).values()) + sum(r.get(n, 0) for r in table.values())
                  for n in names}
        names = sorted(sorted(names, key=lambda n: -weight[n])[:25])
    top = max((v for row in table.values() for v in row.values()), default=1) or 1
    head = "".join(f"<th scope=\"col\">{_e(n)}</th>" for n in names)
    body = []
    for a in names:
        cells = []
        for b in names:
            v = table.get(a, {}).get(b, 0)
            if a == b:
                cells.append("<td class=\"diag\">—</td>")
            else:
                alpha = 0.12 + 0.88 * v / top if v else 0
                style = f" style=\"background:rgba(200,40,40,{alpha:.2f})\"" if v else ""
                cells.append(f"<td class=\"num\" data-row=\"{_e(a)}\" data-col=\"{_e(b)}\"{style}>{v:,}</td>")
        body.append(f"<tr><th scope=\"row\">{_e(a)}</th>{''.join(cells)}</tr>")
    return (f"<table id=\"{element_id}\" class=\"grid matrix\"><caption>{_e(caption)}</caption>"
            f"<thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _outlier_similarity(img: Columns, th: dict) -> float | None:
    """The mean neighbour similarity below which an image is an outlier: 1 − the distance
    whose robust z equals the threshold (median and MAD as in :mod:`vislint.checks.outliers`)."""
    d = img["outlier_distance"].astype(float)
    d = d[np.isfinite(d)]
    if len(d) < 3 or "outlier_z" not in th:
        return None
    med = np.median(d)
    mad = max(1.4826 * np.median(np.abs(d - med)), 1e-6)
    return float(1.0 - (med + th["outlier_z"] * mad))


def _similarity_plot(img: Columns, th: dict) -> str:
    nearest = img["nearest_similarity"].astype(float)
    mean3 = 1.0 - img["outlier_distance"].astype(float)
    lines = []
    if "copy_candidate" in th:  # pairs from here on are verified (near_duplicate: a probability)
        lines.append(("copy_candidate", th["copy_candidate"], f"verified ≥ {th['copy_candidate']:g}"))
    elif "near_duplicate" in th:  # a scan saved before verification: a similarity
        lines.append(("near_duplicate", th["near_duplicate"], f"duplicate ≥ {th['near_duplicate']:g}"))
    cut = _outlier_similarity(img, th)
    if cut is not None:
        lines.append(("outlier", cut, f"outlier < {cut:.3f}"))
    return _histogram_svg(
        "similarity-plot",
        [("nearest neighbour", nearest), ("mean of 3 nearest non-copies", mean3)],
        lines, "cosine similarity", lo=None, hi=1.0)


def _quality_plots(img: Columns, th: dict):
    def line(key, label):
        return [(key, th[key], label.format(th[key]))] if key in th else []

    yield "Sharpness", _histogram_svg("sharpness-plot", [("sharpness", img["sharpness"].astype(float))],
                                      line("blurry", "blurry < {:g}"), "sharpness (unitless)",
                                      lo=0.0, hi=None)
    yield "Luminance", _histogram_svg(
        "luminance-plot", [("95th percentile", img["lum_p95"].astype(float)),
                           ("5th percentile", img["lum_p05"].astype(float))],
        line("dark", "dark: p95 < {:g}") + line("bright", "bright: p05 > {:g}"), "luminance (0–255)",
        lo=0.0, hi=255.0)
    yield "Entropy", _histogram_svg("entropy-plot", [("entropy", img["entropy"].astype(float))],
                                    line("low_information", "low information < {:g}"),
                                    "luminance entropy (bits)", lo=0.0, hi=8.0)


_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 420, 210, 44, 12, 34, 36
_COLOURS = ("#3b6ea5", "#d08a2c")


def _histogram_svg(element_id: str, series, lines, x_label: str, *, lo, hi, bins: int = 50) -> str:
    """An inline SVG histogram: the first series as bars, others as outlines; ``lines`` are
    (name, x, label) thresholds drawn as dashed vertical lines. Values outside [lo, hi] (the
    robust range of the data when None) go to the end bins."""
    series = [(name, v[np.isfinite(v)]) for name, v in series]
    allv = np.concatenate([v for _, v in series]) if series else np.zeros(0)
    if not len(allv):
        return f"<p id=\"{element_id}\" class=\"empty\">no data</p>"
    xs = [x for _, x, _ in lines]
    lo = float(min(np.percentile(allv, 0.5), *xs)) if lo is None else lo
    hi = float(max(np.percentile(allv, 99.5), *(x * 1.15 for x in xs))) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(np.clip(v, lo, hi), edges)[0] for _, v in series]
    top = max(int(c.max()) for c in counts) or 1
    pw, ph = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B

    def x_of(x):
        return _PAD_L + (x - lo) / (hi - lo) * pw

    def y_of(c):
        return _PAD_T + ph - c / top * ph

    out = [f"<svg id=\"{element_id}\" class=\"plot\" viewBox=\"0 0 {_W} {_H}\" width=\"{_W}\" "
           f"height=\"{_H}\" role=\"img\" aria-label=\"{_e(x_label)} histogram\">"]
    bw = pw / bins
    for i, c in enumerate(counts[0]):
        if c:
            out.append(f"<rect x=\"{_PAD_L + i * bw:.1f}\" y=\"{y_of(c):.1f}\" width=\"{max(bw - 1, 1):.1f}\" "
                       f"height=\"{ph - (y_of(c) - _PAD_T):.1f}\" fill=\"{_COLOURS[0]}\"/>")
    for s, c in enumerate(counts[1:], start=1):
        pts = [f"{_PAD_L:.1f},{y_of(0):.1f}"]
        for i, v in enumerate(c):
            pts += [f"{_PAD_L + i * bw:.1f},{y_of(v):.1f}", f"{_PAD_L + (i + 1) * bw:.1f},{y_of(v):.1f}"]
        pts.append(f"{_PAD_L + pw:.1f},{y_of(0):.1f}")
        out.append(f"<polyline points=\"{' '.join(pts)}\" fill=\"none\" stroke=\"{_COLOURS[s % 2]}\" "
                   f"stroke-width=\"1.5\"/>")
    # axes, ticks
    out.append(f"<line x1=\"{_PAD_L}\" y1=\"{_PAD_T + ph}\" x2=\"{_PAD_L + pw}\" y2=\"{_PAD_T + ph}\" "
               f"stroke=\"#555\"/><line x1=\"{_PAD_L}\" y1=\"{_PAD_T}\" x2=\"{_PAD_L}\" "
               f"y2=\"{_PAD_T + ph}\" stroke=\"#555\"/>")
    for t in np.linspace(lo, hi, 5):
        out.append(f"<text x=\"{x_of(t):.1f}\" y=\"{_PAD_T + ph + 14}\" class=\"tick\" "
                   f"text-anchor=\"middle\">{t:.3g}</text>")
    out.append(f"<text x=\"{_PAD_L - 4}\" y=\"{_PAD_T + 4}\" class=\"tick\" text-anchor=\"end\">{top:,}</text>"
               f"<text x=\"{_PAD_L - 4}\" y=\"{_PAD_T + ph}\" class=\"tick\" text-anchor=\"end\">0</text>"
               f"<text x=\"{_PAD_L + pw / 2:.1f}\" y=\"{_H - 4}\" class=\"axis\" "
               f"text-anchor=\"middle\">{_e(x_label)}</text>")
    for i, (name, x, label) in enumerate(lines):
        xp = x_of(min(max(x, lo), hi))
        out.append(f"<g class=\"threshold\" data-name=\"{_e(name)}\" data-value=\"{x:.6g}\">"
                   f"<line x1=\"{xp:.1f}\" y1=\"{_PAD_T - 4}\" x2=\"{xp:.1f}\" y2=\"{_PAD_T + ph}\" "
                   f"stroke=\"#c0392b\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/>"
                   f"<text x=\"{xp:.1f}\" y=\"{_PAD_T - 8 - 12 * (i % 2)}\" class=\"tick th\" "
                   f"text-anchor=\"{'end' if xp > _PAD_L + pw * 0.6 else 'start'}\">{_e(label)}</text></g>")
    legend = "".join(f"<span class=\"key\" style=\"--c:{_COLOURS[s % 2]}\">{_e(name)} "
                     f"({len(v):,})</span>" for s, (name, v) in enumerate(series))
    out.append("</svg>")
    return "".join(out) + f"<p class=\"legend\">{legend}</p>"

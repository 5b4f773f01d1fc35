"""vislint findings as Label Studio review queues, and the reviewers' decisions back.

    import vislint.integrations.label_studio as vls
    proj = vls.push(results, url="http://localhost:8080", api_key=KEY, project="scenes review")
    decisions = vls.pull(url=..., api_key=KEY, project=proj)       # a DataFrame
    vls.save_decisions(decisions, "vislint-out")                   # the next scan honours them
    vls.apply("vislint-out", dataset=fo_dataset)                   # optional: FiftyOne tags/labels

One project holds every queue. One task per finding — a duplicate group, a leak group or a
label-conflict group shows all its images side by side; an outlier or quality flag shows its
image — with the evidence (scores, similarities, labels, splits) and the verdicts that fit the
check (:data:`GROUP_VERDICTS`; keep / remove for an image). Task data carries ``vislint_id`` (stable: the check and the member
images), so pushing again updates tasks in place, adds only new findings, and closes
(``status = "closed"``) tasks whose finding is gone; a push cut off midway and run again ends
with exactly one task per finding. One Data Manager view (tab) per queue with findings shows
its open tasks, worst first, with vislint's columns and a thumbnail (:data:`VIEW_COLUMNS`; its
grid view shows the images); a queue gets its view at the first push that finds something in
it. Task data fields ``queue, score, group, label, suggested_label, split, status`` can be
filtered on, ``score`` and ``group`` (-1 for a finding in no group) as numbers. Predictions
(imported with the tasks) carry vislint's suggested verdict, ``score``, ``cluster`` (the
group), ``neighbors`` (the other images) and ``mislabeling`` (the label conflict score); the
project's ``model_version`` is set so score filters work.

Images: ``images_via="local-files"`` (default) serves them through Label Studio's local-files
storage — the server must run with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and
LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT a parent folder of the images (pass the same folder as
``document_root``); ``images_via="url"`` links ``url_prefix + relative path`` (cloud storage).

The API key is sent only in the Authorization header; it is never printed or logged, and a
password inside the URL (``http://user:pass@host``) is shown as ``***`` in every message.

Pushes to the same (url, project) from one machine run one at a time (a lock file in the
temporary folder), so they never duplicate tasks; pushes from several machines that create the
same new title at once end up sharing one project (the lowest id).
"""
from __future__ import annotations

import hashlib
import html
import math
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import vislint
from vislint import vocabulary
from vislint.decisions import (COLUMNS, DECISIONS_FILE, decisions_text, read_decisions,
                               write_decisions)
from vislint.results import ScanResults

GROUP_VERDICTS = {
    "duplicates": ["remove the copies, keep the first", "keep all", "not duplicates"],
    "leaks": ["remove from train", "remove from eval", "not a leak"],
}
"""Verdict choices of the queues whose tasks are groups (label conflicts build theirs per
task: "all should be <label>" / "label is right" / "change to <label>"); every queue of an
image check offers "keep" and "remove". What a task pre-selects: :func:`_suggested`."""
GROUP_QUEUES = ("duplicates", "leaks", "label conflicts")
"""The group queues whose tasks :func:`findings` builds by hand."""
OTHER_GROUP_VERDICTS = ["keep all", "remove the others, keep the first"]
"""Verdict choices of any other group queue (e.g. similar content): keeping is suggested."""

MODEL_VERSION = f"vislint-{vislint.__version__}"
BATCH = 500
"""Tasks per import request."""

DETAILS_MAX = 2000
"""Up to this many predictions to make in a push (for new tasks, and tasks lacking one), they
are created one by one so that their ``cluster``, ``neighbors`` and ``mislabeling`` are kept
(Label Studio 1.23.2's bulk imports drop those three, measured); beyond it they are imported in
bulk (score, model version and the suggested verdict only), since one call costs ~0.1–0.2 s."""

LABEL_CONFIG = """<View>
  <Header value="$title"/>
  <Text name="evidence" value="$evidence"/>
  <HyperText name="gallery" value="$gallery" inline="true"/>
  <Choices name="verdict" toName="gallery" choice="single" showInline="true" value="$verdicts"
           required="true"/>
</View>"""
"""One labeling config for every queue: the title, the evidence, the images side by side,
and the verdicts of the task's queue (dynamic choices from the task data)."""


class LabelStudioError(RuntimeError):
    """The server could not be reached, refused the key, or lacks what was asked for."""


class _Unanswered(LabelStudioError):
    """A connection error or a 5xx: the request may or may not have been carried out."""


def redact_url(url: str) -> str:
    """``url`` fit to show: the password of its user info replaced by ``***``
    (``http://user:***@host``), and a lone user name too (it may be a token: ``***@host``)."""
    # by hand rather than urlsplit, which raises on some malformed URLs and needs a scheme;
    # the authority ends at the first "/", "?" or "#", and the host follows its last "@"
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*)", url or "")
    userinfo, at, host = m.group(2).rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return (m.group(1) or "") + (f"{user}:***" if colon else "***") + "@" + host + url[m.end():]


def _client(url: str, api_key: str, retries: int, backoff: float):
    from label_studio_sdk import LabelStudio

    if not url or not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {redact_url(url)!r}")
    if not api_key:
        raise ValueError("api_key is empty; pass the Label Studio access token "
                         "(Account & Settings → Access Token), e.g. through $LABEL_STUDIO_API_KEY")
    return _Retrying(LabelStudio(base_url=url.rstrip("/"), api_key=api_key), url, retries, backoff)


class _Retrying:
    """Calls SDK methods with retries (exponential backoff) on connection errors and 5xx.

    ``url`` is kept redacted (:func:`redact_url`): it is only used in messages."""

    def __init__(self, client, url, retries, backoff):
        self.client, self.url, self.retries, self.backoff = client, redact_url(url), retries, backoff

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, retried up to ``retries`` times on connection errors and 5xx.
        Only for calls that are safe to repeat (reads, updates): see :meth:`once`."""
        return self._call(self.retries, fn, args, kwargs)

    def once(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` for creates: retried only when the request surely never
        reached the server (the connection was refused or timed out), since a create that
        succeeded but whose answer was lost (a 5xx, a cut connection) would be made twice.
        Raises :class:`_Unanswered` then: the caller looks at what is there before trying
        again."""
        return self._call(self.retries, fn, args, kwargs, unsent_only=True)

    def _call(self, retries, fn, args, kwargs, unsent_only=False):
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        for attempt in range(retries + 1):
            try:
                return fn(*args, **kwargs)
            except ApiError as e:
                if e.status_code in (401, 403):
                    raise LabelStudioError(f"{self.url} refused the API key (HTTP {e.status_code}); "
                                           f"check the token and that legacy tokens are enabled "
                                           f"if it is a legacy token") from None
                if (e.status_code is None or e.status_code < 500 or attempt == retries
                        or unsent_only):
                    error = _Unanswered if (e.status_code or 0) >= 500 else LabelStudioError
                    raise error(f"Label Studio at {self.url} answered HTTP "
                                f"{e.status_code}: {str(e.body)[:300]}") from None
            except (httpx.TransportError, ConnectionError) as e:
                unsent = isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout,
                                        ConnectionRefusedError))
                if attempt == retries or (unsent_only and not unsent):
                    raise _Unanswered(f"cannot reach Label Studio at {self.url} "
                                      f"({type(e).__name__}); is the server running and the "
                                      f"URL right?") from None
            time.sleep(self.backoff * 2 ** attempt)


def _find_project(ls: _Retrying, project, create: bool):
    """The project with this id or title; created (with the review config) when asked.

    Of several projects with the title, the lowest id: the one every push agrees on."""
    if isinstance(project, int) or (isinstance(project, str) and project.isdigit()):
        return ls.call(ls.client.projects.get, int(project))
    found = _titled(ls, project)
    if found:
        return found[0]
    if not create:
        raise LabelStudioError(f"no project titled {project!r} on {ls.url}; push a scan first")
    return _create_project(ls, project)


def _titled(ls: _Retrying, title: str) -> list:
    """The projects titled exactly ``title`` (the server's filter also matches substrings),
    lowest id first."""
    return sorted((p for p in ls.call(lambda: list(ls.client.projects.list(title=title)))
                   if p.title == title), key=lambda p: p.id)


def _create_project(ls: _Retrying, title: str):
    """Create the project titled ``title``, idempotently.

    A create is never retried blindly: after a failure whose outcome is unknown (a 5xx, a cut
    connection) the project may exist all the same, so the title is looked up again before
    another attempt (up to ``ls.retries`` of them). After a create, :func:`_settle` resolves a
    race with pushes creating the same title at the same time."""
    for attempt in range(ls.retries + 1):
        try:
            mine = ls.once(ls.client.projects.create, title=title, label_config=LABEL_CONFIG,
                           description="vislint review queues")
        except _Unanswered:
            if attempt == ls.retries:
                raise
            time.sleep(ls.backoff * 2 ** attempt)
            found = _titled(ls, title)
            if found:
                return found[0]
            continue
        return _settle(ls, title, mine)


def _settle(ls: _Retrying, title: str, mine):
    """The project every push uses when several were created with ``title`` at once (pushes
    from different machines): the lowest id. ``mine``, the project this push just created, is
    deleted when it is not that one: only its creator deletes it, right after creating it, so
    a duplicate is deleted once and while still empty."""
    found = _titled(ls, title)
    first = found[0] if found else mine
    if first.id != mine.id:
        ls.call(ls.client.projects.delete, mine.id)
    return first


def queues() -> dict[str, list[str]]:
    """The review queues (task data ``queue``, one Data Manager view each), in order: {queue
    title: the checks it holds}, from the checks' records (:mod:`vislint.vocabulary`: a check
    with ``queue`` set is reviewed in the queue named by its ``view``)."""
    out: dict[str, list[str]] = {}
    for c in vocabulary.checks():
        if c.queue and c.view:
            out.setdefault(c.view, []).append(c.name)
    return out


def _image_queues() -> dict[str, str]:
    """{queue: check} of the queues whose tasks are single images."""
    return {q: names[0] for q, names in queues().items()
            if vocabulary.check(names[0]).unit == "image"}


STRONG_COPY = 0.98
"""Copy probability every member needs (to the kept image) before a duplicates task
pre-selects removing the copies: of the labelled pairs scored this high, all were copies."""


def _suggested(queue: str, sims: list[float]) -> str | None:
    """The verdict pre-selected on a duplicates or leaks task: removing copies only when every
    member is a copy of the kept image beyond doubt (exact, or copy probability ≥
    :data:`STRONG_COPY`), else keeping them all; a leak pre-selects nothing (which side to
    drop is the reviewer's call). Nothing destructive is pre-selected anywhere else either:
    label conflicts and image findings (blurry, dark, ...) pre-select nothing, other group
    queues "keep all". A model's prediction is not strong enough to pre-select a relabel: of
    the MNIST candidates whose likeliest class had probability ≥ 0.99 and was not the given
    label, people agreed with the model on 4 of 12 (docs/defaults.md); the task shows the
    predicted class and its probability instead."""
    if queue == "duplicates":
        return GROUP_VERDICTS[queue][0] if min(sims[1:], default=0.0) >= STRONG_COPY else "keep all"
    return None


def _other_group_queues() -> dict[str, str]:
    """{queue: check} of the group queues other than duplicates, leaks and label conflicts
    (whose tasks are built by hand in :func:`findings`): one task per group of the check."""
    return {q: names[0] for q, names in queues().items()
            if vocabulary.check(names[0]).unit == "group" and q not in GROUP_QUEUES}


def _vid(check: str, members: list[str]) -> str:
    return f"{check}:" + hashlib.blake2b(";".join(sorted(members)).encode(), digest_size=8).hexdigest()


def findings(results: ScanResults, checks=None) -> list[dict]:
    """The findings of a scan as review items: {vislint_id, queue, score, group, rows (first =
    the kept / flagged image), verdicts, suggested}."""
    import numpy as np

    df = results.images
    wanted = list(queues()) if checks is None else [_queue_of(c) for c in checks]
    ids = df["id"].tolist()
    labels = [x if isinstance(x, str) else None for x in df["label"].tolist()]
    out = []
    g = results.group_table
    row_of = {i: r for r, i in enumerate(ids)}
    for queue, check in (("duplicates", "near_duplicate"), ("leaks", "leak"),
                         ("label conflicts", "label_conflict")):
        if queue not in wanted:
            continue
        # duplicates: every duplicate group (near or exact, exact groups are inside them)
        table = g[g["check"].isin(["near_duplicate", "exact_duplicate"] if queue == "duplicates"
                                  else [check])]
        seen = set()
        dgroup = df["duplicate_group"].to_numpy()
        for _, grp in table.groupby(["check", "group"], sort=True):
            rows = [row_of[i] for i in grp["id"]]  # representative first
            key = tuple(sorted(rows))
            # one task per duplicate group: an exact group is the finding only when it is the
            # whole duplicate group (not a pair of copies inside a larger group)
            whole = tuple(np.flatnonzero(dgroup == dgroup[rows[0]]).tolist())
            if key in seen or key != whole:
                continue
            seen.add(key)
            item = {"queue": queue, "rows": rows, "sims": grp["similarity"].tolist(),
                    "group": int(df["duplicate_group"].iat[rows[0]]),
                    "score": float(np.nanmax([df[f"{check}_score"].iat[r] for r in rows]))}
            if queue == "label conflicts":
                names = sorted({labels[r] for r in rows if labels[r]})
                item["verdicts"] = [f"all should be {n}" for n in names] + ["not duplicates"]
                item["suggested"] = None  # a relabelling is the reviewer's call
            else:
                item["verdicts"] = GROUP_VERDICTS[queue]
                item["suggested"] = _suggested(queue, item["sims"])
            item["vislint_id"] = _vid(queue, [ids[r] for r in rows])
            out.append(item)
        if queue == "label conflicts":  # an image's own conflict (the vote, a prediction)
            grouped = {r for key in seen for r in key}
            single = df["is_label_conflict"].to_numpy(bool)
            for r in [r for r in np.flatnonzero(single).tolist() if r not in grouped]:
                sugg = df["suggested_label"].iat[r]
                sugg = sugg if isinstance(sugg, str) else None
                verdicts = ["label is right"] + ([f"change to {sugg}"] if sugg else [])
                out.append({"queue": queue, "rows": [r], "sims": [1.0], "group": -1,
                            "score": float(df["label_conflict_score"].iat[r]),
                            "verdicts": verdicts, "suggested": None,
                            "vislint_id": _vid(queue, [ids[r]])})
    for queue, check in _other_group_queues().items():  # e.g. similar content: nothing removed
        if queue not in wanted:                              # unless a reviewer says so
            continue
        for _, grp in g[g["check"] == check].groupby("group", sort=True):
            rows = [row_of[i] for i in grp["id"]]  # representative first
            out.append({"queue": queue, "rows": rows, "sims": grp["similarity"].tolist(),
                        "group": int(grp["group"].iat[0]),
                        "score": float(np.nanmax([df[f"{check}_score"].iat[r] for r in rows])),
                        "verdicts": OTHER_GROUP_VERDICTS, "suggested": OTHER_GROUP_VERDICTS[0],
                        "vislint_id": _vid(queue, [ids[r] for r in rows])})
    for queue, check in _image_queues().items():
        if queue not in wanted or f"is_{check}" not in df.columns:
            continue
        for r in np.flatnonzero(df[f"is_{check}"].to_numpy(bool)).tolist():
            out.append({"queue": queue, "rows": [r], "sims": [1.0], "group": -1,
                        "score": float(df[f"{check}_score"].iat[r]), "verdicts": ["keep", "remove"],
                        "suggested": None, "vislint_id": _vid(queue, [ids[r]])})
    return out


def _queue_of(check: str) -> str:
    """The queue of a check (its name, or the queue's own title)."""
    every = queues()
    if check in every:
        return check
    for queue, names in every.items():
        if check in names:
            return queue
    raise ValueError(f"no review queue for {check!r}; the queues hold "
                     f"{', '.join(n for names in every.values() for n in names)}")


def _image_url(path: str, images_via: str, document_root: Path | None, url_prefix: str | None,
               relpath: str) -> str:
    # the path is percent-encoded: a raw "#" ends the URL, "&" ends the parameter, "+" reads as a
    # space and "%41" as "A" (another file); "/" stays readable
    if images_via == "url":
        return url_prefix.rstrip("/") + "/" + quote(relpath, safe="/")
    rel = os.path.relpath(os.path.abspath(path), document_root)
    if rel.startswith(".."):
        raise ValueError(f"{path} is not below the document root {document_root}; start Label "
                         f"Studio with LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to a folder "
                         f"holding the images, and pass it as document_root")
    return "/data/local-files/?d=" + quote(Path(rel).as_posix(), safe="/")


def _task(item: dict, results: ScanResults, urls: list[str]) -> dict:
    df = results.images
    rows = item["rows"]

    def val(col, r):
        v = df[col].iat[r]
        return v if isinstance(v, str) else None

    # how each image was verified against the first (the same-scene queue has its own notes)
    notes = "scene_evidence" if item["queue"] == "same scene" else "duplicate_evidence"
    cells = []
    for k, (r, sim) in enumerate(zip(rows, item["sims"])):
        caption = [html.escape(df["relpath"].iat[r]), f"label: {html.escape(val('label', r) or '—')}",
                   f"split: {html.escape(val('split', r) or '—')}"]
        if len(rows) > 1:
            caption.append("kept by the keep policy" if k == 0 else
                           html.escape(val(notes, r) or f"similarity {sim:.3f}"))
        cells.append(f'<figure style="display:inline-block;margin:4px;vertical-align:top">'
                     f'<img src="{html.escape(urls[r])}" style="max-width:300px;max-height:300px">'
                     f'<figcaption style="font-size:12px">{"<br>".join(caption)}</figcaption></figure>')
    first = rows[0]
    splits = sorted({val("split", r) for r in rows if val("split", r)})
    evidence = f"{item['queue']}: score {item['score']:.3f}"
    if item["group"] >= 0:
        evidence += f", duplicate group {item['group']} of {len(rows)} images"
    if item["queue"] == "duplicates":  # why the verdict is (or is not) pre-selected
        weakest = min(item["sims"][1:], default=1.0)
        evidence += (f"; suggested: {item['suggested']}, as every image is a copy of the first "
                     f"with probability ≥ {STRONG_COPY}" if item["suggested"] != "keep all" else
                     f"; suggested: keep all, as the least sure copy has probability "
                     f"{weakest:.3f} (removing is suggested from {STRONG_COPY})")
    # a suggested label only where it is the evidence of the finding: the label conflict's
    # (the neighbour vote in the semantic space, or a clear majority among copies); elsewhere
    # it would be the built-in look-alike vote, which is no evidence of a class
    sugg = val("suggested_label", first) if item["queue"] == "label conflicts" else None
    if item["queue"] == "label conflicts":
        evidence += _label_evidence(df, rows, sugg)
    if item["queue"] == "outliers":
        evidence += _outlier_evidence(df, first, results.info.get("thresholds") or {})
    # the keys the queue views show first, in their order: the Data Manager lists a project's
    # data columns in the order their keys first arrived (VIEW_COLUMNS). No group is -1, not
    # null: the Data Manager's "is empty" finds no null of a Number column, "group < 0" finds -1
    return {
        "image": urls[first], "title": f"{item['queue']} — {df['relpath'].iat[first]}",
        "score": round(item["score"], 5), "group": item["group"],
        "label": val("label", first), "suggested_label": sugg, "split": ";".join(splits),
        "vislint_id": item["vislint_id"], "queue": item["queue"], "status": "open",
        "evidence": evidence, "gallery": "<div>" + "".join(cells) + "</div>",
        "images": [df["id"].iat[r] for r in rows], "paths": [df["relpath"].iat[r] for r in rows],
        "hashes": [val("content_hash", r) or "" for r in rows],
        "labels": [val("label", r) for r in rows],
        "verdicts": [{"value": v} for v in item["verdicts"]],
    }


def _outlier_evidence(df, row: int, thresholds: dict) -> str:
    """Which measure finds the image odd, with its robust z (see vislint.checks.outliers);
    thresholds: the scan's (missing ones: the defaults)."""
    limits = {**vislint.Thresholds().to_dict(), **thresholds}
    parts = []
    for column, what in (("outlier_appearance_z", "how it looks"),
                         ("outlier_z", "distance to its nearest neighbours")):
        z = float(df[column].iat[row]) if column in df else math.nan
        if math.isfinite(z):
            parts.append(f"{what}: robust z {z:.1f}" + (" (odd)" if z >= limits[column] else ""))
    return "; " + ", ".join(parts) if parts else ""


def _label_evidence(df, rows: list[int], suggested: str | None) -> str:
    """What a label-conflict task rests on, source by source (``label_sources``): the labels of
    a copy group, the neighbours' vote, the model's prediction with its probability."""
    def val(col, r):
        v = df[col].iat[r] if col in df.columns else None
        return v if isinstance(v, str) else None

    parts, first = [], rows[0]
    if val("conflict_labels", first):
        parts.append(f"copies labelled {val('conflict_labels', first).replace('|', ', ')}"
                     + (f", most of them {suggested}" if suggested else ", no majority"))
    for r in rows:
        sources = val("label_sources", r) or ""
        name = df["relpath"].iat[r] if len(rows) > 1 else f"label {val('label', r)}"
        if "neighbours" in sources:
            parts.append(f"{name}: neighbours suggest {val('suggested_label', r)} "
                         f"(agreement {df['label_agreement'].iat[r]:.2f})")
        if "prediction" in sources:
            parts.append(f"{name}: the model predicts {val('predicted_label', r)} "
                         f"(probability {df['predicted_probability'].iat[r]:.2f})")
    return "".join(f"; {p}" for p in parts)


def _prediction(item: dict, results: ScanResults) -> dict:
    df = results.images
    first = item["rows"][0]
    # a mislabeling score only where a label is the finding (elsewhere, without a model, it
    # would be the look-alike vote's, no evidence of a class)
    mis = df["label_conflict_score"].iat[first] if item["queue"] == "label conflicts" else 0.0
    return {"model_version": MODEL_VERSION, "score": round(item["score"], 5),
            "cluster": item["group"] if item["group"] >= 0 else None,
            "neighbors": [df["id"].iat[r] for r in item["rows"][1:]] or None,
            "mislabeling": float(mis) if mis == mis else 0.0,
            "result": [{"from_name": "verdict", "to_name": "gallery", "type": "choices",
                        "value": {"choices": [item["suggested"]]}}] if item["suggested"] else []}


def _existing(ls: _Retrying, pid: int) -> dict:
    """{vislint_id: task} of the project's tasks (with their predictions)."""
    tasks = ls.call(lambda: list(ls.client.tasks.list(project=pid, fields="all", page_size=1000)))
    return {t.data.get("vislint_id"): t for t in tasks if t.data and t.data.get("vislint_id")}


def _has_prediction(task) -> bool:
    """Whether the task holds a prediction made by vislint (any version)."""
    return any(str(_get(p, "model_version") or "").startswith("vislint-")
               for p in task.predictions or [])


@contextmanager
def _push_lock(url: str, project, progress: bool):
    """One push at a time to (url, project) from this machine: an exclusive ``flock`` on
    ``<temp dir>/vislint-ls-push-<hash of url and project>.lock``. The system releases it when
    the push ends or its process dies, so a killed push never leaves it held."""
    import fcntl

    # the URL is hashed redacted: no file name derives from a password
    key = hashlib.blake2b(f"{redact_url(url).rstrip('/')}\n{project}".encode(),
                          digest_size=8).hexdigest()
    path = os.path.join(tempfile.gettempdir(), f"vislint-ls-push-{key}.lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    except PermissionError:  # another user's file in a sticky /tmp: open it as it is
        fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"another push to project {str(project)!r} is running on this machine; "
                      f"waiting for it to end", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def push(results: ScanResults | str | os.PathLike, *, url: str, api_key: str, project: str | int,
         checks=None, images_via: str = "local-files", document_root=None, url_prefix=None,
         batch_size: int = BATCH, retries: int = 4, backoff: float = 1.0, progress: bool = False):
    """Push a scan's findings into a Label Studio project (created or reused by title).

    results: a ScanResults or a saved scan's work dir. checks: queues to push (check names,
    default all: duplicates, leaks, label conflicts, outliers and the quality flags).
    images_via / document_root / url_prefix: see the module docstring (document_root
    defaults to $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT). batch_size: tasks per import request
    (default :data:`BATCH`). retries (default 4), backoff (s, default 1.0): on connection
    errors and 5xx. progress: print how far it got. Returns a :class:`Pushed`: the project
    (``.id``, ``.title``) and what changed.

    Every push converges on what the server holds: tasks are added for findings without one,
    updated or closed, and every open task of a finding gets vislint's prediction if it lacks
    one (a push killed between the two, or a server that lost them). Pushes to the same project
    from this machine wait for each other.
    """
    if not isinstance(results, ScanResults):
        results = vislint.load(results)
    if images_via not in ("local-files", "url"):
        raise ValueError("images_via must be 'local-files' or 'url'")
    if images_via == "url" and not url_prefix:
        raise ValueError("images_via='url' needs url_prefix (e.g. https://bucket.example.org/data)")
    root = None
    if images_via == "local-files":
        root = document_root or os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
        if not root:
            raise ValueError("images_via='local-files' needs document_root: the server's "
                             "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (a parent folder of the images)")
        root = Path(os.path.abspath(root))
    df = results.images
    urls = [_image_url(p, images_via, root, url_prefix, r)
            for p, r in zip(df["path"].tolist(), df["relpath"].tolist())]
    ls = _client(url, api_key, retries, backoff)
    with _push_lock(url, project, progress):
        proj = _find_project(ls, project, create=True)
        if images_via == "local-files":
            _ensure_storage(ls, proj.id, root, df["path"].tolist())
        items = {item["vislint_id"]: item for item in findings(results, checks)}
        tasks = {vid: _task(item, results, urls) for vid, item in items.items()}
        have = _existing(ls, proj.id)
        updates, report = [], Pushed(proj)
        for vid, t in have.items():
            if vid not in tasks:
                if t.data.get("status") != "closed":
                    updates.append((t.id, {**t.data, "status": "closed"}))
                    report.closed.append(t.id)
            elif {k: t.data.get(k) for k in tasks[vid]} != tasks[vid]:
                updates.append((t.id, {**t.data, **tasks[vid]}))
                (report.reopened if t.data.get("status") == "closed" else report.updated).append(t.id)
        report.new = sum(vid not in have for vid in tasks)
        have = _import_tasks(ls, proj.id, tasks, have, batch_size, progress)
        _complete_predictions(ls, proj.id, items, results, have, batch_size, progress)
        for tid, data in updates:
            ls.call(ls.client.tasks.update, str(tid), data=data)
        ls.call(ls.client.projects.update, proj.id, model_version=MODEL_VERSION)
        _ensure_views(ls, proj.id, {data["queue"] for data in tasks.values()})
    report.decisions = results.info.get("decisions")
    return report


@dataclass
class Pushed:
    """What a :func:`push` did. project: the Label Studio project (``id`` and ``title`` are
    its own); new: tasks added; updated, closed, reopened: ids of the tasks changed, closed
    (their finding is gone: a reviewer's decision applied by the scan, or a file that
    changed) and opened again (their finding is back); decisions: what the pushed scan did
    with the reviewers' decisions (``ScanResults.info["decisions"]``; None: it read none)."""

    project: object
    new: int = 0
    updated: list = field(default_factory=list)
    closed: list = field(default_factory=list)
    reopened: list = field(default_factory=list)
    decisions: dict | None = None

    @property
    def id(self) -> int:
        return self.project.id

    @property
    def title(self) -> str:
        return self.project.title

    def text(self) -> str:
        """For people: tasks added, updated, closed and reopened, and the decisions the
        pushed scan applied."""
        def ids(v):
            return f" (tasks {', '.join(map(str, v[:10]))}{' …' if len(v) > 10 else ''})" if v else ""
        text = (f"{self.new} new tasks, {len(self.updated)} updated, {len(self.closed)} closed"
                f"{ids(self.closed)}, {len(self.reopened)} reopened{ids(self.reopened)}")
        return text + ("\n" + decisions_text(self.decisions) if self.decisions else "")


def _import_tasks(ls: _Retrying, pid: int, tasks: dict, have: dict, batch_size: int,
                  progress: bool) -> dict:
    """Import the tasks ({vislint_id: data}) not in the project yet (``have``: its tasks),
    ``batch_size`` per request. Returns the project's tasks afterwards.

    An import whose outcome is unknown (a 5xx, a cut connection) is not repeated blindly -- it
    may have happened: the project's tasks are read again and only those still missing are
    imported, for up to ``ls.retries`` more rounds."""
    for attempt in range(ls.retries + 1):
        todo = [data for vid, data in tasks.items() if vid not in have]
        if not todo:
            return have
        try:
            for start in range(0, len(todo), batch_size):
                ls.once(ls.client.projects.import_tasks, pid,
                        request=[{"data": d} for d in todo[start:start + batch_size]])
                if progress:
                    print(f"pushed {min(start + batch_size, len(todo))}/{len(todo)} new tasks",
                          flush=True)
            return _existing(ls, pid)
        except _Unanswered:
            if attempt == ls.retries:
                raise
            time.sleep(ls.backoff * 2 ** attempt)
            have = _existing(ls, pid)


def _complete_predictions(ls: _Retrying, pid: int, items: dict, results: ScanResults,
                          have: dict, batch_size: int, progress: bool) -> None:
    """Give each task of a current finding (``have``: the project's tasks) vislint's prediction
    if it holds none: new tasks, and tasks an interrupted push or a server restart left
    without one. Unknown outcomes are handled as in :func:`_import_tasks`."""
    for attempt in range(ls.retries + 1):
        preds = [{**_prediction(items[vid], results), "task": t.id} for vid, t in have.items()
                 if vid in items and not _has_prediction(t)]
        if not preds:
            return
        try:
            if len(preds) <= DETAILS_MAX:
                # one call per prediction: the server's bulk imports (task import with inline
                # predictions, and import_predictions) drop cluster, neighbors and mislabeling
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(lambda p: ls.once(ls.client.predictions.create, **p), preds))
            else:
                for start in range(0, len(preds), batch_size):
                    ls.once(ls.client.projects.import_predictions, pid,
                            request=preds[start:start + batch_size])
            if progress:
                print(f"added vislint's prediction to {len(preds)} tasks", flush=True)
            return
        except _Unanswered:
            if attempt == ls.retries:
                raise
            time.sleep(ls.backoff * 2 ** attempt)
            have = _existing(ls, pid)


def _ensure_storage(ls: _Retrying, pid: int, root: Path, paths: list[str]) -> None:
    """A local-files storage over the images' common folder (below the document root)."""
    common = Path(os.path.commonpath([os.path.abspath(p) for p in paths]))
    if common.is_file():  # a single image
        common = common.parent
    if common == root:  # (paths outside the root were refused by _image_url already)
        raise ValueError(f"the images must sit in a subfolder of the document root {root} "
                         f"(Label Studio refuses a storage on the root itself)")
    for s in ls.call(lambda: list(ls.client.import_storage.local.list(project=pid))):
        if Path(s.path) == common:
            return
    ls.call(ls.client.import_storage.local.create, project=pid, path=str(common),
            title="vislint images", use_blob_urls=False)


VIEW_COLUMNS = ("image", "title", "score", "group", "label", "suggested_label", "split")
"""Task data fields a queue's Data Manager view shows, after the task ID (every other column,
Label Studio's ~15 own included, is hidden; a reviewer can show them again from "Columns").
``group`` is left out of the image queues (always -1 there) and ``suggested_label`` out of all
but the label conflicts (empty elsewhere). Label Studio lists data columns in the order their
keys first reached the project, after those of the labeling config: :func:`_task` puts these
first."""
LABELING_COLUMNS = ("image", "score")
"""Task data fields the narrow task list beside an open task shows, after the ID."""
VIEW_TYPES = {"image": "Image", "score": "Number", "group": "Number"}
"""Column types each view sets (``columnsDisplayType``). Label Studio types a data column from
the labeling config alone (``$image`` is in no <Image> tag, the gallery shows the images), so
every other data column is "Unknown": no thumbnail, and the Data Manager's filters compare as
text ("score > 0.9" typed in matched nothing) and the server orders by the JSON value's text
(PostgreSQL: "10" before "9"). With Number the server casts the field to a float for filters
and ordering; with Image the list shows a thumbnail and the grid view the image."""
VIEW_WIDTHS = {"image": 120, "title": 360}
"""Column widths each view sets (CSS px)."""


def _column_ids(ls: _Retrying, pid: int) -> list[str]:
    """The ids of the project's task columns in the Data Manager (``tasks:id``,
    ``tasks:data.score``, ...): what a view's ``hiddenColumns`` name. The SDK has no call for
    ``/api/dm/columns``; it is read through the SDK's own HTTP client (its authentication)."""
    from label_studio_sdk.core.api_error import ApiError

    def get():
        r = ls.client._client_wrapper.httpx_client.request(
            "api/dm/columns/", method="GET", params={"project": pid})
        if not 200 <= r.status_code < 300:
            raise ApiError(status_code=r.status_code, headers=dict(r.headers), body=r.text)
        return r.json()["columns"]

    return [f"tasks:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}"
            for c in ls.call(get) if c.get("target") == "tasks" and not c.get("children")]


def _view_columns(queue: str, columns: list[str]) -> dict:
    """The column settings of ``queue``'s view (``hiddenColumns``, ``columnsDisplayType``,
    ``columnsWidth``; see :data:`VIEW_COLUMNS`), given the project's column ids."""
    from label_studio_sdk.data_manager import Column

    shown = [f for f in VIEW_COLUMNS
             if not (f == "group" and queue in _image_queues())
             and not (f == "suggested_label" and queue != "label conflicts")]
    keep = lambda fields: {"tasks:id"} | {Column.data(f) for f in fields}  # noqa: E731
    return {"hiddenColumns": {"explore": [c for c in columns if c not in keep(shown)],
                              "labeling": [c for c in columns if c not in keep(LABELING_COLUMNS)]},
            "columnsDisplayType": {Column.data(f): t for f, t in VIEW_TYPES.items()},
            "columnsWidth": {Column.data(f): w for f, w in VIEW_WIDTHS.items()}}


def _ensure_views(ls: _Retrying, pid: int, open_queues: set[str]) -> None:
    """One Data Manager view (tab) per queue in ``open_queues`` (the queues with open tasks
    after this push): its open tasks, worst first, vislint's columns shown (:func:`_view_columns`).

    A queue with no findings gets no tab; a push that brings it findings creates it then. A tab
    whose queue has become empty stays: it shows the queue done, and a reviewer may have set
    it up. A view vislint made earlier that the Data Manager never saved (it always saves
    ``hiddenColumns``) gets the columns and the ordering of a new one; views a reviewer
    changed are left alone."""
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    views = {v.data.get("title"): v
             for v in ls.call(lambda: list(ls.client.views.list(project=pid)))}
    columns = None
    for queue in queues():
        view = views.get(queue)
        if (view is None and queue not in open_queues) or (view and "hiddenColumns" in view.data):
            continue
        columns = columns if columns is not None else _column_ids(ls, pid)
        filters = Filters.create(Filters.AND, [
            Filters.item(Column.data("queue"), Operator.EQUAL, Type.String, Filters.value(queue)),
            Filters.item(Column.data("status"), Operator.EQUAL, Type.String, Filters.value("open"))])
        # one field: the server orders by the first alone, while the Data Manager shows the last
        # as the tab's order (["-score", "group"] read "ordered by group")
        data = {"title": queue, "filters": filters, "ordering": ["-" + Column.data("score")],
                **_view_columns(queue, columns)}
        if view is None:
            ls.call(ls.client.views.create, project=pid, data=data)
        else:
            ls.call(ls.client.views.update, str(view.id), project=pid, data=data)


def queue_tasks(*, url: str, api_key: str, project, queue: str, retries: int = 4) -> list:
    """The open tasks of one queue, in the queue view's order (worst first); none for a queue
    that has no view (a tab is made only once the queue has findings). Raises
    :class:`LabelStudioError` for a name that is no queue (:func:`queues`)."""
    if queue not in queues():
        raise LabelStudioError(f"no review queue {queue!r}; the queues are "
                               f"{', '.join(queues())}")
    ls = _client(url, api_key, retries, 1.0)
    proj = _find_project(ls, project, create=False)
    views = {v.data.get("title"): v for v in ls.call(lambda: list(ls.client.views.list(project=proj.id)))}
    if queue not in views:
        return []
    return ls.call(lambda: list(ls.client.tasks.list(project=proj.id, view=views[queue].id,
                                                     fields="all", page_size=1000)))


def pull(*, url: str, api_key: str, project, retries: int = 4):
    """Reviewers' decisions as a DataFrame with :data:`vislint.decisions.COLUMNS` plus ``task``
    and ``queue``: one row per image decided on (pair verdicts name the partner)."""
    import pandas as pd

    ls = _client(url, api_key, retries, 1.0)
    proj = _find_project(ls, project, create=False)
    users = {u.id: (u.email or u.username) for u in ls.call(lambda: list(ls.client.users.list()))}
    rows = []
    for t in _existing(ls, proj.id).values():
        anns = [a for a in (t.annotations or []) if not _get(a, "was_cancelled")]
        if not anns:
            continue
        ann = max(anns, key=lambda a: str(_get(a, "updated_at") or _get(a, "created_at") or ""))
        verdict = None
        for r in _get(ann, "result") or []:
            if r.get("from_name") == "verdict":
                verdict = (r.get("value", {}).get("choices") or [None])[0]
        if not verdict:
            continue
        who = users.get(_get(ann, "completed_by"), str(_get(ann, "completed_by")))
        when = str(_get(ann, "updated_at") or _get(ann, "created_at") or "")
        # the task's address is kept in decisions.csv: never with a password
        source = f"{redact_url(url).rstrip('/')}/projects/{proj.id}/data?task={t.id}"
        for rec in _decision_rows(t.data, verdict):
            rows.append({**rec, "reviewer": who, "time": when, "source": source, "task": t.id,
                         "queue": t.data.get("queue")})
    cols = list(COLUMNS) + ["task", "queue"]
    return pd.DataFrame(rows, columns=cols).fillna("")


def _get(obj, name):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _decision_rows(data: dict, verdict: str) -> list[dict]:
    """Decisions rows (check, verdict, image, partner, their content hashes, new_label) of one
    task's verdict."""
    # images by relative path (readable) and content hash (what any later scan of the same
    # files matches on, from whatever folder or dataset; tasks pushed before hashes were
    # in them have none)
    queue, images, labels = data.get("queue"), data.get("paths") or [], data.get("labels") or []
    hash_of = dict(zip(images, data.get("hashes") or []))
    first, others = images[0], images[1:]
    row = lambda check, v, image, partner="", new_label="": {  # noqa: E731
        "check": check, "verdict": v, "image": image, "partner": partner,
        "image_hash": hash_of.get(image, ""), "partner_hash": hash_of.get(partner, "") if partner else "",
        "new_label": new_label}
    if queue == "duplicates":
        if verdict == "not duplicates":
            return [row("near_duplicate", "not_duplicate", o, first) for o in others]
        if verdict == "keep all":
            return [row("near_duplicate", "keep", i) for i in images]
        return [row("near_duplicate", "remove", o, first) for o in others]
    if queue == "leaks":
        v = {"not a leak": "not_leak", "remove from train": "remove_from_train",
             "remove from eval": "remove_from_eval"}[verdict]
        return [row("leak", v, o, first) for o in others]
    if queue == "label conflicts":
        if verdict == "not duplicates":
            return [row("near_duplicate", "not_duplicate", o, first) for o in others]
        if verdict == "label is right":
            return [row("label_conflict", "label_ok", first)]
        new = verdict.split(" to ", 1)[1] if verdict.startswith("change to ") else \
            verdict.split(" be ", 1)[1]
        return [row("label_conflict", "relabel", i, "", new) if lab != new else
                row("label_conflict", "label_ok", i) for i, lab in zip(images, labels)]
    check = _other_group_queues().get(queue)
    if check:
        return ([row(check, "keep", i) for i in images] if verdict == "keep all"
                else [row(check, "remove", o, first) for o in others])
    check = _image_queues().get(queue)
    return [row(check, verdict, first)] if check else []


def save_decisions(decisions, out) -> Path:
    """Merge ``decisions`` into ``out/decisions.csv`` (rows already there stay; identical rows
    are not repeated), atomically, with cells a spreadsheet would run as formulas quoted
    (:func:`vislint.decisions.write_decisions`). Returns the file's path."""
    import pandas as pd

    path = Path(out) / DECISIONS_FILE
    new = read_decisions(decisions[[c for c in COLUMNS if c in decisions.columns]])
    if path.is_file():
        new = pd.concat([read_decisions(path), new], ignore_index=True)
    return write_decisions(new.drop_duplicates(ignore_index=True), path)


def apply(decisions, *, dataset, root=None, key: str = "vislint") -> dict:
    """Apply decisions to a FiftyOne dataset whose samples are the scanned files: tag each
    decided sample ``<key>:review:<verdict>`` and write corrected labels to the field
    ``<key>_label`` (a Classification). Returns counts {"tagged", "relabelled"}.

    decisions: a DataFrame (:data:`vislint.decisions.COLUMNS`), a decisions CSV file, or a work
    dir (its ``decisions.csv``). A decision's image is a path relative to the scanned folder
    (absolute for scans of lists, DataFrames and FiftyOne datasets); it names exactly one file
    -- samples are matched on their whole absolute path, never on a suffix. root: the scanned
    folder relative paths are resolved against (default None: when ``decisions`` is a work dir
    or its decisions.csv, the folder that scan read, from its manifest.json); a relative path
    with no root known raises ValueError. key (default "vislint"): prefix of the tags and the
    field. Raises ValueError when ``<key>_label`` exists but vislint did not create it: a field
    of the user's is never written.
    """
    import fiftyone as fo

    frame, found_root = _read_decisions_arg(decisions)
    root = root if root is not None else found_root
    by_path = {}
    for sid, fp in zip(*dataset.values(["id", "filepath"])):
        by_path.setdefault(os.path.normpath(fp), []).append(sid)
    matched = [(by_path.get(_decided_path(rec.image, root), []), rec)
               for rec in frame.itertuples(index=False)]
    matched = [(sids, rec) for sids, rec in matched if sids]
    relabelled = {s: rec.new_label for sids, rec in matched if rec.verdict == "relabel"
                  for s in sids}
    field = f"{key}_label"
    if relabelled:  # before any change: a refusal leaves the dataset as it was
        _own_label_field(dataset, field)
    tagged = 0
    for sids, rec in matched:
        dataset.select(sids).tag_samples(f"{key}:review:{rec.verdict}")
        tagged += len(sids)
    if relabelled:
        view = dataset.select(list(relabelled), ordered=True)
        view.set_values(field, [fo.Classification(label=relabelled[s]) for s in view.values("id")])
    return {"tagged": tagged, "relabelled": len(relabelled)}


_FIELD_MARK = {"created_by": "vislint"}
"""Stored in the ``info`` of a field :func:`apply` created: only such a field is written."""


def _read_decisions_arg(decisions):
    """(the decisions table, the scanned folder or None) from a DataFrame, a CSV file or a
    work dir. The folder is known for a work dir, or a CSV inside one: its manifest's
    ``params["source"]``."""
    import json

    import pandas as pd

    if isinstance(decisions, pd.DataFrame):
        return read_decisions(decisions), None
    path = Path(decisions)
    workdir = path if path.is_dir() else path.parent
    if path.is_dir():
        path = path / DECISIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no decisions at {path}; pass a DataFrame, a decisions CSV or a "
                                f"work dir holding {DECISIONS_FILE}")
    source = None
    manifest = workdir / "manifest.json"
    if manifest.is_file():
        source = json.loads(manifest.read_text(encoding="utf-8")).get("params", {}).get("source")
    return read_decisions(path), source


def _decided_path(image: str, root) -> str:
    """The absolute, normalised path a decision's image names (see :func:`apply`)."""
    if os.path.isabs(image):
        return os.path.normpath(image)
    if root is None:
        raise ValueError(f"decision image {image!r} is relative to the scanned folder, which is "
                         f"not known here; pass root= (the folder that was scanned), or the "
                         f"scan's work dir as decisions")
    return os.path.normpath(os.path.join(os.path.abspath(root), image))


def _own_label_field(dataset, field: str) -> None:
    """Make sure ``field`` is vislint's to write: create it (marked) if missing; raise
    ValueError if it exists and vislint did not create it."""
    import fiftyone as fo

    if not dataset.has_sample_field(field):
        dataset.add_sample_field(field, fo.EmbeddedDocumentField,
                                 embedded_doc_type=fo.Classification, info=dict(_FIELD_MARK),
                                 description="labels corrected by reviewers (vislint)")
        return
    info = dataset.get_field(field).info or {}
    if info.get("created_by") != _FIELD_MARK["created_by"]:
        raise ValueError(f"the dataset already has a field {field!r} that vislint did not "
                         f"create; it is left untouched. Pass another key= (the labels go to "
                         f"<key>_label)")

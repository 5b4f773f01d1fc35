"""vislint in FiftyOne: scan a dataset or view, write what it found as fields, tags and saved
views, and keep the run so it can be listed, reloaded and deleted.

    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    ds = fo.load_dataset("scenes")
    run = vfo.scan(ds, label_field="ground_truth", split_field="tags", key="vislint")
    run.summary()
    ds.load_saved_view("vislint: leaks")
    vfo.resolve_duplicates(ds, key="vislint", action="tag")
    vfo.related(ds, [sample_id])       # a sample's copies, scene shots and partners
    vfo.find_copies(ds, [sample_id], index="other-work-dir")   # do these exist in another scan?
    vfo.list_runs(ds); vfo.load_run(ds, "vislint"); vfo.delete_run(ds, "vislint")

What a scan with key ``K`` writes on the dataset:

- **Field** ``K``: an embedded document on every scanned sample, with what every check of
  :mod:`vislint.vocabulary` writes (every subfield on every sample, None where it has no
  value): ``<check>_score`` (in [0, 1], higher = worse; None where the check does not
  apply), ``is_<check>`` and its evidence (e.g. ``duplicate_group``, None outside groups;
  ``duplicate_of``, ``nearest_id`` and ``leak_partners`` as FiftyOne sample ids;
  ``suggested_label``; the statistic of a quality check), ``is_representative``
  (the member of a duplicate group the keep policy keeps), and what reviewers decided:
  ``reviewed`` (the decisions that applied) and ``label_original`` (the label before a
  reviewer's relabel); and ``split``, the split the scan read.
- **The App's sidebar and tiles** (the dataset's App config): a sidebar group ``K``, open,
  with the flags and scores first, and :data:`TILE_FIELDS` shown on the grid's tiles (a
  duplicate group's number and which member is kept, and the split), added to the
  dataset's active fields.
- **Sample tags** ``K:<check>`` on the samples each check flags.
- **Saved views** ``"K: <title>"`` (see :func:`views`): duplicates, leaks and label
  conflicts group by group (the kept member first, so copies sit side by side), the others
  worst first.
- **A run** ``K`` (FiftyOne's custom runs): the scan's parameters, thresholds and versions in
  its config; the summary, leak table, timings and what was written in its results.

Scanning again with the same key replaces all of this; another key coexists with it.
:func:`delete_run` removes the field, the tags, the views and the run.

What vislint writes is only ever what it created: a scan refuses (ValueError, before scanning
or writing anything) a key whose field, tags ``K:<check>``/``K:keep``/``K:remove`` or views
already exist and were not written by the vislint run ``K``, and an ``embeddings_field`` that
exists and was not created by run ``K``. The run's stored record (:attr:`VislintRun.info`:
``field``, ``tags``, ``views``, ``own_embeddings_fields``) names what it wrote, and
:func:`delete_run` deletes exactly that.

Labels (``label_field``): a ``Classification`` gives its label; ``Detections``,
``Polylines`` or ``Classifications`` give a label only when every object in the sample
carries the same one (a sample with objects of several classes has no single image label, so
it gets none rather than a guessed one); a string field is used as is.
Splits (``split_field``): ``"tags"`` (the sample tag naming a split: train/training,
valid/val/validation/dev, test/testing, with suffixes like ``_set``; none or several → no
split), a string field, or a dict ``{split: view}``.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

import fiftyone as fo
from fiftyone import ViewField as F

import vislint
from vislint.catalog import canonical_split
from vislint.schema import REVIEW_COLUMNS
from vislint import vocabulary

def views() -> dict[str, str]:
    """Saved view titles (the view is named ``"<key>: <title>"``) and what each shows, from the
    checks' records (:mod:`vislint.vocabulary`; checks sharing a ``view`` share the view)."""
    out: dict[str, str] = {}
    for title, checks in _view_checks().items():
        groups = any(c.unit == "group" for c in checks)
        out[title] = (", ".join(c.title for c in checks)
                      + (", group by group" if groups else ", worst first"))
    return out


def _view_checks() -> dict[str, list]:
    """{view title: the records of its checks}, in order."""
    out: dict[str, list] = {}
    for c in vocabulary.checks():
        if c.view:
            out.setdefault(c.view, []).append(c)
    return out


_FIELD_TYPES = {"float": fo.FloatField, "int": fo.IntField, "bool": fo.BooleanField,
                "str": fo.StringField, "id": fo.StringField, "ids": fo.ListField,
                "labels": fo.ListField}
"""The FiftyOne field type of each kind of evidence column (:data:`vislint.vocabulary.EVIDENCE_KINDS`):
``id`` and ``ids`` hold FiftyOne sample ids, ``labels`` a list of labels."""


def _subfields() -> dict[str, type]:
    """{subfield of the run's field: FiftyOne field type}: every check's score, flag and
    evidence (see the module docstring), ``is_representative``, what reviewers decided
    (``reviewed``, ``label_original``) and the split the scan read (``split``)."""
    fields = {}
    for c in vocabulary.checks():
        if c.scored:
            fields[c.score] = fo.FloatField
        fields[c.flag] = fo.BooleanField
        fields.update((column, _FIELD_TYPES[kind]) for column, kind in c.evidence)
    if "duplicate_group" in fields:
        fields["is_representative"] = fo.BooleanField
    fields.update((column, fo.StringField) for column in REVIEW_COLUMNS)
    fields["split"] = fo.StringField
    return fields


WRITERS = 2
"""Threads sending update commands in :func:`_write`, each with its share of the samples."""

BATCH = 1000
"""Sample updates per database command in :func:`_write` (1,000 wrote 100k samples faster than
5,000: the two writer threads hand the database smaller, more frequent batches)."""


@dataclass
class VislintRun:
    """A vislint scan stored on a FiftyOne dataset.

    key: the run key (also the field name and the prefix of tags and views).
    info: the stored record: ``summary``, ``leak_table``, ``confused_labels``, ``timings``,
        what the run wrote (``field``, ``tags``, ``views``, ``embeddings_field``,
        ``own_embeddings_fields``: the embeddings fields vislint created under this key),
        ``sample_count``, ``group_sizes`` ({duplicate group: samples at the scan}) and
        ``decisions`` (what the scan did with reviewer decisions, see
        :meth:`vislint.decisions.Decisions.summary`; None when it read none), and what it
        added to the dataset's App config (``sidebar_group``, ``active_paths``).
    results: the :class:`vislint.ScanResults` when the scan ran in this process, else None.
    """

    dataset: fo.Dataset
    key: str
    info: dict
    results: vislint.ScanResults | None = None

    def summary(self):
        """One row per check: images flagged, groups, threshold (a DataFrame)."""
        import pandas as pd

        return pd.DataFrame(self.info["summary"])

    @property
    def leak_table(self) -> dict:
        """{split: {other split: samples in split with a duplicate in other split}}."""
        return self.info.get("leak_table", {})

    @property
    def views(self) -> list[str]:
        """Names of the saved views this run wrote."""
        return list(self.info.get("views", []))

    def view(self, title: str) -> fo.DatasetView:
        """The saved view ``"<key>: <title>"`` (titles: :func:`views`)."""
        if title not in views():
            raise ValueError(f"unknown view {title!r}; choose one of {', '.join(views())}")
        return self.dataset.load_saved_view(view_name(self.key, title))


def view_name(key: str, title: str) -> str:
    """The saved view name of a run's view: ``"<key>: <title>"``."""
    return f"{key}: {title}"


def scan(collection, *, label_field: str | None = None, split_field=None, embeddings=None,
         key: str = "vislint", out=None, thresholds=None, threads: int = 0,
         embeddings_field: str | None = None, predictions_field: str | None = None,
         progress: bool = True, features=None, **scan_kwargs) -> VislintRun:
    """Scan the images of a dataset or view and write the findings onto the dataset.

    collection: a ``fo.Dataset`` or any view of its samples (image media only; not a
        patches, clips or frames view, whose samples are generated: ValueError).
    label_field: a Classification, Detections/Polylines/Classifications or string field
        (see the module docstring); None = no labels.
    split_field: ``"tags"``, a string field, or a dict {split name: view}; None = no splits.
    embeddings: what the images show, for the label vote and outliers (never for copies):
        the name of a vector field already on the samples (e.g. a model's embeddings), an
        array with one row per sample of ``collection`` in its order, or what
        :func:`vislint.scan` takes (an ONNX model); None (default) = none.
    key: run key (default "vislint"); names the field, tag prefix and views. Scanning again
        with the same key replaces that run's output. A key whose field, tags or views exist
        but were not written by the vislint run of that key is refused (ValueError).
    out: optional vislint work dir (feature cache, resumable, saved results).
    thresholds, threads, scan_kwargs: as :func:`vislint.scan`.
    embeddings_field: also write the vectors the scan used to this field (so FiftyOne Brain's
        visualisation and similarity can use them); None (default) = don't. It must be a new
        field, or one that an earlier scan with this key created.
    predictions_field: a Classification field of a model's predictions, for label conflicts
        (:mod:`vislint.predictions`): its ``logits`` (softmaxed; the class of each logit from
        ``dataset.classes[field]`` or ``dataset.default_classes``), or, where it has none, its
        ``label`` and ``confidence`` — then the other classes share the rest of the
        probability equally, so only "the model prefers another class" is known, not by how
        much over the runner-up. None (default) = none; or ``predictions=`` as
        :func:`vislint.scan` takes.
    progress: show progress bars.
    features: the old name of ``embeddings`` (deprecated; "builtin" = None).
    """
    from vislint.pipeline import embeddings_argument

    embeddings = embeddings_argument(embeddings, features)
    _check_key(key)
    if collection.media_type != "image":
        raise ValueError(f"vislint scans images; this collection's media type is "
                         f"{collection.media_type!r}")
    dataset = _dataset_of(collection)
    # before the (long) scan, so that a refused name costs nothing and writes nothing
    previous = check_names(dataset, key, embeddings_field)
    own_embeddings = [f for f in previous.get("own_embeddings_fields", [])
                      if dataset.has_sample_field(f)]
    if embeddings_field is not None and embeddings_field not in own_embeddings:
        own_embeddings.append(embeddings_field)  # new (check_names refused an existing one)
    oids, paths, old_tags = _read_samples(collection)
    if not oids:
        raise ValueError("the collection has no samples")
    sample_ids = [str(o) for o in oids]
    frame = _catalog_frame(collection, sample_ids, paths, old_tags, label_field, split_field)
    source_field = None
    if isinstance(embeddings, str) and collection.has_sample_field(embeddings):
        source_field, embeddings = embeddings, _vector_field(collection, embeddings)
    first = _first_rows(paths)
    if embeddings is not None and not isinstance(embeddings, (str, vislint.features.Onnx)):
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(paths):
            raise ValueError(f"embeddings must have one row per sample ({len(paths)}), got shape "
                             f"{embeddings.shape}")
        embeddings = embeddings[first]

    if predictions_field is not None:
        scan_kwargs["predictions"] = _predictions(collection, predictions_field, paths,
                                                  frame["label"].tolist())
    res = vislint.scan(frame.iloc[first].reset_index(drop=True), out=out, embeddings=embeddings,
                       thresholds=thresholds, threads=threads, progress=progress, **scan_kwargs)
    # every sample gets its file's row (samples sharing a file share its findings)
    row_of_path = {p: i for i, p in enumerate(frame["path"].iloc[first])}
    rows = np.array([row_of_path[p] for p in paths], np.int64)

    row_list = rows.tolist()
    tags = _write(dataset, key, collection, res, row_list, oids, old_tags, sample_ids,
                  previous.get("tags", []))
    if embeddings_field is not None:
        dataset.select(sample_ids, ordered=True).set_values(
            embeddings_field, list(res.features[rows]), validate=False)
    views = _save_views(dataset, key)
    group, active_paths = _show_in_app(dataset, key, previous.get("active_paths", []))
    info = {
        "summary": res.summary().to_dict("records"),
        "leak_table": res.leak_table,
        "confused_labels": res.info.get("confused_labels", []),
        "timings": res.info.get("timings", {}),
        "decisions": res.info.get("decisions"),
        "field": key, "tags": tags, "views": views, "embeddings_field": embeddings_field,
        "own_embeddings_fields": own_embeddings, "sample_count": len(sample_ids),
        "active_paths": active_paths, "sidebar_group": group,
        "group_sizes": _group_sizes(res.images["duplicate_group"].to_numpy()[rows]),
    }
    config = collection.init_run(
        method="vislint", vislint_version=vislint.__version__, fiftyone_version=fo.__version__,
        label_field=label_field,
        split_field=split_field if isinstance(split_field, (str, type(None))) else sorted(split_field),
        embeddings_field=source_field, predictions_field=predictions_field,
        params=res.info.get("params", {}), thresholds=res.info.get("thresholds", {}),
        out=str(out) if out is not None else None)
    collection.register_run(key, config, overwrite=True)
    dataset.save_run_results(key, dataset.init_run_results(key, **info))
    return VislintRun(dataset, key, info, res)


def check_names(dataset, key: str, embeddings_field: str | None = None) -> dict:
    """Check that a scan with ``key`` would write only over what the vislint run ``key``
    wrote before: raises ValueError (saying what exists, and to choose another key or field)
    when the run key belongs to another kind of run, or when the field ``key``, a tag
    ``key:<check>``, ``key:keep`` or ``key:remove``, a view ``"key: <title>"`` or
    ``embeddings_field`` (default None: none) exists and that run's record does not name it.

    Returns the stored record of the vislint run ``key`` ({} when there is none)."""
    _check_key(key)
    if key in dataset.list_runs() and not _is_vislint_run(dataset, key):
        raise ValueError(f"run key {key!r} is taken by a run that vislint did not make; "
                         f"choose another key")
    previous = load_run(dataset, key).info if key in dataset.list_runs() else {}
    mine = f" (vislint run {key!r} did not create it)" if previous else ""
    if dataset.has_sample_field(key) and previous.get("field") != key:
        raise ValueError(f"the field {key!r} already exists on dataset {dataset.name!r}{mine}; "
                         f"a scan with key={key!r} would overwrite it: choose another key")
    if embeddings_field is not None:
        if embeddings_field == key:
            raise ValueError("embeddings_field must differ from key (the findings field)")
        if (dataset.has_sample_field(embeddings_field)
                and embeddings_field not in previous.get("own_embeddings_fields", [])):
            raise ValueError(f"the field {embeddings_field!r} already exists on dataset "
                             f"{dataset.name!r} and vislint run {key!r} did not create it; "
                             f"embeddings_field={embeddings_field!r} would overwrite it: choose "
                             f"another embeddings_field")
    existing, ours = set(dataset.distinct("tags")), set(previous.get("tags", []))
    for tag in _run_tags(key):
        if tag in existing and tag not in ours:
            raise ValueError(f"the sample tag {tag!r} already exists on dataset "
                             f"{dataset.name!r}{mine}; a scan with key={key!r} would add to it "
                             f"and its deletion remove it: choose another key")
    ours = set(previous.get("views", []))
    for title in views():
        name = view_name(key, title)
        if name not in ours and dataset.has_saved_view(name):
            raise ValueError(f"the saved view {name!r} already exists on dataset "
                             f"{dataset.name!r}{mine}; a scan with key={key!r} would replace it: "
                             f"choose another key")
    return previous


def list_runs(dataset) -> list[str]:
    """Keys of the vislint runs stored on ``dataset``."""
    return [k for k in dataset.list_runs() if _is_vislint_run(dataset, k)]


def run_parameters(dataset, key: str = "vislint") -> dict:
    """What the vislint run ``key`` was asked to read: ``label_field``, ``split_field`` (a
    string, a list of split names for a dict of views, or None), ``embeddings_field`` (the
    vector field its embeddings came from, or None) and ``predictions_field``; {} when there is no such run. Forms
    start from these, so that running one again as shown repeats it."""
    if key not in list_runs(dataset):
        return {}
    config = dataset.get_run_info(key).config
    return {name: getattr(config, name, None)
            for name in ("label_field", "split_field", "embeddings_field", "predictions_field")}


def load_run(dataset, key: str = "vislint") -> VislintRun:
    """The stored run ``key`` (its summary, leak table, views...)."""
    if key not in list_runs(dataset):
        raise KeyError(f"no vislint run {key!r} on dataset {dataset.name!r}; runs: "
                       f"{list_runs(dataset) or 'none'}")
    results = dataset.load_run_results(key, cache=False)
    info = {k: getattr(results, k) for k in results.attributes() if k not in ("cls",)}
    return VislintRun(dataset, key, info)


def delete_run(dataset, key: str = "vislint", *, missing_ok: bool = False) -> None:
    """Remove the vislint run ``key`` and what its stored record says it wrote: its field, its
    sample tags (``key:<check>``, and ``key:keep``/``key:remove`` if
    :func:`resolve_duplicates` tagged), its saved views, the embeddings fields it created, and
    its sidebar group and tile fields in the dataset's App config.
    Nothing else is touched: a field, tag or view of the user's with a similar name stays.

    missing_ok: False (default) raises KeyError when there is no vislint run ``key``; True
        then does nothing at all.
    Raises ValueError when ``key`` is a run that vislint did not make.
    """
    known = key in dataset.list_runs()
    if known and not _is_vislint_run(dataset, key):
        raise ValueError(f"run {key!r} on {dataset.name!r} was not made by vislint; not deleting it")
    if not known:
        if missing_ok:
            return  # no record of ours: every field, tag and view under this name is the user's
        raise KeyError(f"no vislint run {key!r} on dataset {dataset.name!r}")
    info = load_run(dataset, key).info
    for field in [info.get("field")] + info.get("own_embeddings_fields", []):
        if field and dataset.has_sample_field(field):
            dataset.delete_sample_field(field)
    if info.get("tags"):
        dataset.untag_samples(info["tags"])
    for name in info.get("views", []):
        if dataset.has_saved_view(name):
            dataset.delete_saved_view(name)
    _hide_from_app(dataset, info.get("active_paths", []), info.get("sidebar_group"))
    dataset.delete_run(key)


def related(dataset, sample_ids, key: str = "vislint"):
    """The samples the run ``key`` relates to ``sample_ids``, as a view: those sharing one of
    their groups (duplicate, same-scene, similar content: each check's group column) or
    named by their evidence (the kept copy, leak partners, the nearest image...: the checks'
    id columns), the given samples included; group by group, the kept member first. What a
    reviewer opens from a selected sample instead of following sample ids by hand."""
    from bson import ObjectId

    checks = vocabulary.checks()
    group_columns = sorted({c.group_column for c in checks if c.unit == "group"})
    id_columns = [col for c in checks for col, kind in c.evidence if kind in ("id", "ids")]
    chosen = dataset.select(list(sample_ids))
    ids = set(sample_ids)
    for col in id_columns:
        for v in chosen.values(f"{key}.{col}"):
            ids.update(v if isinstance(v, list) else [v] if v else [])
    condition = F("_id").is_in([ObjectId(i) for i in ids])
    for col in group_columns:
        groups = [g for g in chosen.distinct(f"{key}.{col}") if g is not None and g >= 0]
        if groups:
            condition = condition | F(f"{key}.{col}").is_in(groups)
    return dataset.match(condition).sort_by([(f"{key}.duplicate_group", 1),
                                              (f"{key}.is_representative", -1), ("filepath", 1)])


def run_work_dir(dataset, key: str = "vislint") -> str | None:
    """The work dir the vislint run ``key`` saved its scan in (``scan(out=...)``), or None."""
    if key not in list_runs(dataset):
        return None
    return getattr(dataset.get_run_info(key).config, "out", None)


def find_copies(dataset, sample_ids, index=None, key: str = "vislint", *, threads: int = 0,
                progress: bool = False):
    """Which of the samples ``sample_ids`` already exist in a saved scan (:func:`vislint.query`:
    exact copies, verified copies, same-scene shots), without changing that scan or the
    dataset. Returns (:class:`vislint.lookup.QueryResults`, a view): the view holds the chosen
    samples that match something, each followed by the samples of ``dataset`` it matches (by
    file path; indexed images outside the dataset are only in the results' tables).

    index: the work dir of a saved scan; None (default) = the work dir of the vislint run
        ``key`` on ``dataset`` (a scan with ``out=``), which ValueError asks for when there is
        none.
    """
    if index is None:
        index = run_work_dir(dataset, key)
        if index is None:
            raise ValueError(f"the vislint run {key!r} of dataset {dataset.name!r} was not saved in "
                             "a work dir: scan with out=DIR, or name a work dir as index")
    chosen = dataset.select(list(sample_ids), ordered=True)
    ids, paths = chosen.values("id"), chosen.values("filepath")
    found = vislint.query(list(dict.fromkeys(paths)), index, threads=threads, progress=progress)
    matches = found.matches_table
    by_path: dict[str, list[str]] = {}
    for q, m in zip(matches.column("query_path").to_pylist(), matches.column("match_path").to_pylist()):
        by_path.setdefault(q, []).append(m)
    id_of_path = dict(zip(*dataset.match(F("filepath").is_in(sorted({m for ms in by_path.values() for m in ms})))
                          .values(["filepath", "id"]))) if by_path else {}
    order: list[str] = []
    for sid, path in zip(ids, paths):
        if path in by_path:
            order.append(sid)
            order += [id_of_path[m] for m in by_path[path] if m in id_of_path]
    order = list(dict.fromkeys(order))
    return found, dataset.select(order, ordered=True)


def resolve_duplicates(dataset, key: str = "vislint", *, policy: str = "keep-representative",
                       action: str = "tag", dry_run: bool | None = None) -> dict:
    """Act on duplicate groups: keep one member per group, tag or delete the others.

    Each group is first checked against the dataset as it is now: a group whose kept sample
    is gone, or whose members are not those of the scan (some deleted, or copies added), is
    left alone, reported in ``"changed"`` and in a warning (``warnings.warn`` and
    ``"warning"``), dry run or not: scan again to resolve it. So the last members of a group
    are never deleted.

    key: the vislint run (default "vislint").
    policy: "keep-representative" (default) keeps the member vislint's keep policy chose
        (labelled, then train < valid < test, then more pixels, then sharper, then path order).
    action: "tag" (default) adds the tag ``<key>:remove`` to the others (``<key>:keep`` to
        the kept); "delete" deletes the others from the dataset.
    dry_run: only report what would happen. Default: True for "delete" (call again with
        dry_run=False to delete), False for "tag".

    Returns {"action", "dry_run", "groups" (resolved), "keep": [sample ids], "remove": [sample
    ids], "changed": [{"group", "change", "members": [sample ids now], "todo"}], "warning":
    str or None}.
    """
    if policy != "keep-representative":
        raise ValueError(f"unknown policy {policy!r}; the one policy is 'keep-representative'")
    if action not in ("tag", "delete"):
        raise ValueError(f"unknown action {action!r}; choose 'tag' or 'delete'")
    if key not in list_runs(dataset) or not dataset.has_sample_field(key):
        raise KeyError(f"no vislint results under {key!r} on dataset {dataset.name!r}; run "
                       f"vislint.integrations.fiftyone.scan(dataset, key={key!r}) first")
    if dry_run is None:
        dry_run = action == "delete"
    run = load_run(dataset, key)
    sizes = run.info.get("group_sizes")  # None from a vislint that did not record them
    members = {}  # duplicate group -> [(sample id, is kept, id of its kept sample)] as now
    for sid, g, rep, of in zip(*dataset.exists(f"{key}.duplicate_group").values(
            ["id", f"{key}.duplicate_group", f"{key}.is_representative", f"{key}.duplicate_of"])):
        members.setdefault(g, []).append((sid, rep, of))
    keep, remove, changed = [], [], []
    for g, group in members.items():
        kept = {sid for sid, rep, _ in group if rep}
        scanned = len(group) if sizes is None else sizes.get(str(g), 0)
        if not kept or any(of not in kept for _, rep, of in group if not rep):
            change = "its kept sample is gone (deleted, or no longer in this group)"
        elif len(group) < scanned:
            change = f"{scanned - len(group)} of {scanned} members were deleted"
        elif len(group) > scanned:
            n = len(group) - scanned
            change = f"{n} member{'s' if n > 1 else ''} more than at the scan"
        else:
            keep += sorted(kept)
            remove += [sid for sid, rep, _ in group if not rep]
            continue
        changed.append({"group": g, "change": change, "members": [sid for sid, _, _ in group],
                        "todo": f"scan again (key={key!r}) before resolving this group"})
    warning = None
    if changed:
        first, n = changed[0], len(changed)
        warning = (f"{n} duplicate group{'s' if n > 1 else ''} changed since the scan (group "
                   f"{first['group']}: {first['change']}); they are left alone: scan again "
                   f"with key={key!r} to resolve them")
        warnings.warn(warning, UserWarning, stacklevel=2)
    if not dry_run:
        if action == "tag":
            dataset.select(keep).tag_samples(f"{key}:keep")
            dataset.select(remove).tag_samples(f"{key}:remove")
            _record_tags(dataset, key, [f"{key}:keep", f"{key}:remove"])
        else:
            dataset.delete_samples(remove)
    return {"action": action, "dry_run": dry_run, "groups": len(members) - len(changed),
            "keep": keep, "remove": remove, "changed": changed, "warning": warning}


# ------------------------------------------------------------------ internals

def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"key must be a Python identifier (letters, digits, _), got {key!r}")


def _run_tags(key: str) -> list[str]:
    """Every sample tag vislint may write under ``key``: one per check, and the two of
    :func:`resolve_duplicates`."""
    return [f"{key}:{check}" for check in vocabulary.names()] + [f"{key}:keep", f"{key}:remove"]


def _record_tags(dataset, key: str, tags: list[str]) -> None:
    """Add ``tags`` to the tags the stored run ``key`` wrote (so :func:`delete_run` and the
    next scan with ``key`` remove them)."""
    results = dataset.load_run_results(key, cache=False)
    results.tags = list(results.tags) + [t for t in tags if t not in results.tags]
    results.save()


def _group_sizes(groups: np.ndarray) -> dict[str, int]:
    """{duplicate group (as a string: stored as a document key): samples in it}, from the
    duplicate group of every scanned sample (-1 outside groups)."""
    ids, counts = np.unique(groups[groups >= 0], return_counts=True)
    return {str(g): int(c) for g, c in zip(ids.tolist(), counts.tolist())}


def _is_vislint_run(dataset, key: str) -> bool:
    try:
        return getattr(dataset.get_run_info(key).config, "method", None) == "vislint"
    except Exception:  # a run of another kind, or an unreadable one, is not ours
        return False


def _dataset_of(collection) -> fo.Dataset:
    """The dataset whose samples ``collection`` (a dataset or a view of one) holds. Raises
    ValueError for a patches, clips or frames view: its samples are generated (not the
    dataset's), so findings written on them would not reach the dataset."""
    if isinstance(collection, fo.Dataset):
        return collection
    if type(collection) is not fo.DatasetView:
        kind = type(collection).__name__
        objects = (" Object-level checks (one finding per object patch) are not in vislint "
                   "yet; a whole-image scan with label_field set to the objects' field gives "
                   "each image its objects' label when they all agree."
                   if kind == "PatchesView" else "")
        raise ValueError(f"vislint scans whole images: a dataset or a view of its samples, not "
                         f"a {kind} (its samples are generated): scan the dataset "
                         f"{collection.dataset_name!r} or a view of it.{objects}")
    return fo.load_dataset(collection.dataset_name)


def _samples_collection(dataset):
    """The pymongo collection that holds the samples of ``dataset``.

    FiftyOne (1.22) has no public accessor for it (``Dataset._sample_collection`` is
    private), so it is read from FiftyOne's own record of the dataset: the document named
    like it in the ``datasets`` collection of the database FiftyOne connects to
    (:func:`fiftyone.core.odm.database.get_db_conn`, public)."""
    import fiftyone.core.odm as foo

    db = foo.get_db_conn()
    record = db["datasets"].find_one({"name": dataset.name}, {"sample_collection_name": 1})
    if record is None or "sample_collection_name" not in record:
        raise RuntimeError(f"FiftyOne's database has no record of dataset {dataset.name!r} "
                           f"naming its sample collection")
    return db[record["sample_collection_name"]]


def _read_samples(collection) -> tuple[list, list[str], list[list[str]]]:
    """(ObjectIds, file paths, tags) of the collection's samples, in its order.

    A whole dataset is read with one projected query on its sample collection (~2x faster
    than ``values()`` at 100k samples); a view through ``values()``, which applies its stages.
    """
    if isinstance(collection, fo.Dataset):
        docs = _samples_collection(collection).find({}, {"filepath": 1, "tags": 1})  # natural order, as values()
        oids, paths, tags = [], [], []
        for d in docs:
            oids.append(d["_id"])
            paths.append(d["filepath"])
            tags.append(d.get("tags") or [])
        return oids, paths, tags
    oids, paths, tags = collection.values(["_id", "filepath", "tags"])
    return oids, paths, [t or [] for t in tags]


def _first_rows(paths: list[str]) -> np.ndarray:
    """Index of the first sample of every distinct file path, in sample order."""
    seen, first = set(), []
    for i, p in enumerate(paths):
        if p not in seen:
            seen.add(p)
            first.append(i)
    return np.array(first, np.int64)


def _catalog_frame(collection, sample_ids, paths, tags, label_field, split_field):
    import pandas as pd

    labels = _labels(collection, label_field) if label_field else [None] * len(paths)
    splits = _splits(collection, sample_ids, tags, split_field) if split_field else [None] * len(paths)
    return pd.DataFrame({"path": paths, "label": labels, "split": splits})


def _labels(collection, field: str) -> list[str | None]:
    if not collection.has_sample_field(field):
        raise ValueError(f"label_field {field!r} is not a field of this dataset; fields: "
                         f"{', '.join(collection.get_field_schema())}")
    f = collection.get_field(field)
    doc = getattr(f, "document_type", None)
    if doc is fo.Classification:
        return collection.values(f"{field}.label")
    for kind, attr in ((fo.Detections, "detections"), (fo.Polylines, "polylines"),
                       (fo.Classifications, "classifications"), (fo.Keypoints, "keypoints")):
        if doc is kind:
            per_sample = collection.values(f"{field}.{attr}.label")
            return [_single(v) for v in per_sample]
    if isinstance(f, fo.StringField):
        return collection.values(field)
    raise ValueError(f"label_field {field!r} is a {type(f).__name__}"
                     f"{' of ' + doc.__name__ if doc else ''}; use a Classification, "
                     f"Detections, Polylines, Classifications or string field")


def _single(labels) -> str | None:
    """The one label every object carries, or None (no objects, or several classes)."""
    distinct = {x for x in (labels or []) if x is not None}
    return distinct.pop() if len(distinct) == 1 else None


def _splits(collection, sample_ids, tags, split_field) -> list[str | None]:
    if isinstance(split_field, dict):
        split_of = {}
        for name, view in split_field.items():
            for sid in view.values("id"):
                if sid in split_of and split_of[sid] != name:
                    raise ValueError(f"sample {sid} is in the views of splits {split_of[sid]!r} "
                                     f"and {name!r}; a sample belongs to one split")
                split_of[sid] = name
        return [split_of.get(s) for s in sample_ids]
    if split_field == "tags":
        out = []
        for sample_tags in tags:
            found = {canonical_split(t) for t in sample_tags or []} - {None}
            out.append(found.pop() if len(found) == 1 else None)
        return out
    if isinstance(split_field, str):
        if not collection.has_sample_field(split_field):
            raise ValueError(f"split_field {split_field!r} is not a field of this dataset; use "
                             f"'tags', a string field, or a dict of views")
        return [canonical_split(v) or v if isinstance(v, str) else None
                for v in collection.values(split_field)]
    raise ValueError("split_field must be 'tags', a field name, or a dict {split: view}")


def _predictions(collection, field: str, paths: list[str], labels: list):
    """A Classification field's class probabilities per sample, as the DataFrame
    :func:`vislint.scan` takes (``path`` and one column per class); see :func:`scan`."""
    import pandas as pd

    if not collection.has_sample_field(field):
        raise ValueError(f"predictions_field {field!r} is not a field of this dataset")
    if getattr(collection.get_field(field), "document_type", None) is not fo.Classification:
        raise ValueError(f"predictions_field {field!r} must be a Classification field (a "
                         f"model's prediction: logits, or a label with its confidence)")
    predicted, logits, confidence = collection.values(
        [f"{field}.label", f"{field}.logits", f"{field}.confidence"])
    missing = [i for i, p in enumerate(predicted) if p is None]
    if missing:
        raise ValueError(f"predictions_field {field!r} is empty on {len(missing)} samples; "
                         f"predict every sample, or scan a view without those samples")
    if all(v is not None for v in logits):
        classes = collection.classes.get(field) or collection.default_classes
        if not classes or any(len(v) != len(classes) for v in logits):
            raise ValueError(f"predictions_field {field!r}: its logits need the class of each "
                             f"position: set dataset.classes[{field!r}] (or default_classes) "
                             f"to the {len(logits[0])} class names in the model's order")
        z = np.asarray(logits, np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
    else:
        if any(c is None for c in confidence):
            raise ValueError(f"predictions_field {field!r} has neither logits nor a confidence "
                             f"on some samples: vislint needs one or the other on every sample")
        classes = sorted({*predicted, *(x for x in labels if isinstance(x, str))})
        col = {c: k for k, c in enumerate(classes)}
        rest = (1.0 - np.asarray(confidence, np.float64)) / max(len(classes) - 1, 1)
        probs = np.repeat(rest[:, None], len(classes), axis=1)
        probs[np.arange(len(predicted)), [col[p] for p in predicted]] = confidence
    return pd.DataFrame(probs, columns=[str(c) for c in classes]).assign(path=paths)


def _vector_field(collection, field: str) -> np.ndarray:
    if not collection.has_sample_field(field):
        raise ValueError(f"embeddings={field!r}: no such field; pass a vector field "
                         f"name or an array")
    vals = collection.values(field)
    missing = [i for i, v in enumerate(vals) if v is None]
    if missing:
        raise ValueError(f"embeddings field {field!r} is empty on {len(missing)} samples (first: "
                         f"sample {collection.values('id')[missing[0]]}); compute it for every "
                         f"sample or scan a view without those samples")
    return np.stack([np.asarray(v, np.float32).ravel() for v in vals])


def _write(dataset, key: str, collection, res, rows: list[int], oids: list, old_tags: list,
           sample_ids: list[str], previous_tags: list[str]) -> list[str]:
    """Write the field ``key`` and the tags ``<key>:<check>`` of every scanned sample, replacing
    those of an earlier run with the same key (``previous_tags``: the tags it wrote; other
    tags, even under ``<key>:``, are not vislint's to remove), and declare the field's schema.
    Returns the tags used.

    Each sample gets one ``$set`` of its embedded document, tag list and ``last_modified_at``
    (:class:`vislint.integrations.fiftyone_updates.SampleUpdates`, which encodes them), sent
    as raw ``update`` commands of :data:`BATCH` statements by :data:`WRITERS` threads, each
    building its next batch while the database applies the last one: one database command per
    1,000 samples, where pymongo's bulk ``UpdateOne`` objects and FiftyOne's ``set_values``
    cost far more client time per sample (docs/benchmarks/fiftyone-write.md has the
    measurements).
    """
    from datetime import datetime, timezone

    from vislint.integrations.fiftyone_updates import SampleUpdates

    updates = SampleUpdates(res, key, rows, sample_ids, oids, old_tags, previous_tags,
                            datetime.now(timezone.utc))
    coll = _samples_collection(dataset)

    def write_part(part: range) -> None:
        for start in range(part.start, part.stop, BATCH):
            _send_updates(coll, updates.encoded(start, min(start + BATCH, part.stop)))

    n = len(oids)
    bounds = [n * i // WRITERS for i in range(WRITERS + 1)]
    with ThreadPoolExecutor(WRITERS) as writer:  # pymongo waits for the database without the GIL
        for done in [writer.submit(write_part, range(a, b)) for a, b in zip(bounds, bounds[1:])]:
            done.result()
    if len(oids) < len(dataset):
        # samples outside the scanned view lose what an earlier run with this key wrote
        stale = dataset.exists(key).exclude(collection.values("id"))
        if len(stale):
            stale.clear_sample_field(key)
        old = sorted(set(previous_tags))
        outside = dataset.exclude(collection.values("id")).match_tags(old)
        if old and len(outside):
            outside.untag_samples(old)
    from fiftyone.core.odm.utils import create_field

    subfields = _subfields()
    if not dataset.has_sample_field(key):
        fields = [create_field(name, ftype, subfield=fo.StringField if ftype is fo.ListField else None)
                  for name, ftype in subfields.items()]
        dataset.add_sample_field(key, fo.EmbeddedDocumentField,
                                 embedded_doc_type=fo.DynamicEmbeddedDocument, fields=fields,
                                 description=f"vislint findings (run {key!r})")
    else:  # a check added since the last scan with this key: declare its subfields too
        for name, ftype in subfields.items():
            if not dataset.has_sample_field(f"{key}.{name}"):
                dataset.add_sample_field(f"{key}.{name}", ftype,
                                         subfield=fo.StringField if ftype is fo.ListField else None)
    dataset.reload()
    return updates.tags


TILE_FIELDS = ("duplicate_group", "is_representative", "split", "predicted_label",
               "predicted_probability")
"""Subfields of the run's field shown on the App's grid tiles: in the group-by-group views
each copy shows its group's number, which one the keep policy keeps (True) and its split, so
a reviewer sees where one group ends (FiftyOne's dynamic groups were tried: the grid then
shows one tile per group, and the copies only one group at a time in the sample modal); with
predictions, the model's class and its probability (absent values are not drawn)."""


def _sidebar_paths(key: str) -> list[str]:
    """The run's subfields in sidebar order: flags, then scores, then the rest."""
    names = list(_subfields())
    first = ([n for n in names if n.startswith("is_")]
             + [n for n in names if n.endswith("_score")])
    return [f"{key}.{n}" for n in first + [n for n in names if n not in first]]


def _show_in_app(dataset, key: str, previous: list[str]) -> tuple[str, list[str]]:
    """Add the run's sidebar group (open, flags and scores first, below the labels; replacing
    a group of that name: FiftyOne's own default group of the run's field) and :data:`TILE_FIELDS` to the dataset's App
    config, leaving everything else of it as it is. Returns the group's name and the active
    paths the run added (with those an earlier run of this key added)."""
    config = dataset.app_config
    groups = config.sidebar_groups or fo.DatasetAppConfig.default_sidebar_groups(dataset)
    # a group of this name is replaced only if it holds nothing but the run's field (as
    # FiftyOne's default group of it does); a group of the user's keeps its name
    name = key
    while any(g.name == name and any(not p.startswith(f"{key}.") for p in g.paths) for g in groups):
        name += " (vislint)"
    mine = fo.SidebarGroupDocument(name=name, paths=_sidebar_paths(key), expanded=True)
    at = next((i for i, g in enumerate(groups) if g.name == name), None)
    if at is None:  # below the labels
        labels = next((i for i, g in enumerate(groups) if g.name == "labels"), len(groups) - 1)
        groups.insert(labels + 1, mine)
    else:
        groups[at] = mine
    active = config.active_fields or fo.DatasetAppConfig.default_active_fields(dataset)
    added = list(previous)
    if not active.exclude:  # (an exclusion list is the user's way to hide fields: left alone)
        for path in (f"{key}.{f}" for f in TILE_FIELDS):
            if path not in active.paths:
                active.paths.append(path)
                added.append(path)
    config.sidebar_groups, config.active_fields = groups, active
    dataset.save()
    return name, sorted(set(added))


def _hide_from_app(dataset, active_paths: list[str], group: str | None) -> None:
    """Undo :func:`_show_in_app`: the run's sidebar group and the active paths it added."""
    config = dataset.app_config
    if group and config.sidebar_groups:
        config.sidebar_groups = [g for g in config.sidebar_groups if g.name != group]
    if active_paths and config.active_fields is not None:
        config.active_fields.paths = [p for p in config.active_fields.paths if p not in active_paths]
    # what equals FiftyOne's defaults again goes back to "default" (None), as it was before
    # the run made it explicit
    shape = lambda groups: [(g.name, list(g.paths)) for g in groups or []]  # noqa: E731
    if shape(config.sidebar_groups) == shape(fo.DatasetAppConfig.default_sidebar_groups(dataset)):
        config.sidebar_groups = None
    active, default = config.active_fields, fo.DatasetAppConfig.default_active_fields(dataset)
    if active is not None and not active.exclude and list(active.paths) == list(default.paths):
        config.active_fields = None
    dataset.save()


def _send_updates(coll, updates: list) -> None:
    """Apply ``updates`` (``{"q": filter, "u": update}`` each, a dict or encoded) to the
    pymongo collection ``coll`` with one ``update`` command, or with halves of it,
    recursively, when the command would pass the database's 16 MiB document limit (samples
    with very many partners). Raises RuntimeError with the database's first write error, if
    any."""
    from pymongo.errors import DocumentTooLarge

    try:
        reply = coll.database.command("update", coll.name, updates=updates, ordered=False)
    except DocumentTooLarge:
        if len(updates) == 1:
            raise
        half = len(updates) // 2
        _send_updates(coll, updates[:half])
        _send_updates(coll, updates[half:])
        return
    errors = reply.get("writeErrors")
    if errors:
        raise RuntimeError(f"writing vislint results: {len(errors)} of {len(updates)} sample "
                           f"updates failed; the first: {errors[0].get('errmsg')}")


def _save_views(dataset, key: str) -> list[str]:
    """Save one view per view title of the checks (see :func:`views`); returns the names saved."""
    group_order = [(f"{key}.duplicate_group", 1), (f"{key}.is_representative", -1),
                   ("filepath", 1)]
    saved = {}
    for title, checks in _view_checks().items():
        flagged = F(f"{key}.{checks[0].flag}")
        for c in checks[1:]:
            flagged = flagged | F(f"{key}.{c.flag}")
        first = checks[0]
        if first.unit == "group" and first.group_column != "duplicate_group":
            order = [(f"{key}.{first.group_column}", 1), ("filepath", 1)]
        elif any(c.unit == "group" for c in checks):  # group by group (the worst first, for conflicts)
            order = ([(f"{key}.{first.score}", -1)] if first.gallery == "conflict" else []) + group_order
        elif first.scored:
            order = [(f"{key}.{first.score}", -1), ("filepath", 1)]
        else:  # (invalid files: by their first piece of evidence, the reason)
            order = [(f"{key}.{first.evidence[0][0]}", 1), ("filepath", 1)]
        saved[title] = dataset.match(flagged).sort_by(order)
    names, descriptions = [], views()
    for title, view in saved.items():
        name = view_name(key, title)
        dataset.save_view(name, view, description=descriptions[title], overwrite=True)
        names.append(name)
    return names

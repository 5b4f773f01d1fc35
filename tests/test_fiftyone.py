"""vislint.integrations.fiftyone and the App plugin against a real FiftyOne database
(a private mongod started by the ``fo_db`` fixture on 127.0.0.1).

fiftyone is imported inside the tests, after ``fo_db`` configured the database."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import vislint
from conftest import shared
from fo_fixtures import fo_app, fo_db  # noqa: F401  (fixtures)
from vislint.catalog import build_catalog

KEY = "vislint"
PLUGIN = "@vislint/vislint"


def dataset_from_folder(name: str, root, label_field="ground_truth"):
    """A persistent dataset: one sample per image, its label as a Classification and its split
    (train/valid/test folder) as a sample tag."""
    import fiftyone as fo

    cat = build_catalog(root)
    ds = fo.Dataset(name, overwrite=True, persistent=True)
    samples = []
    for path, label, split in zip(cat.paths, cat.labels, cat.splits):
        s = fo.Sample(filepath=path, tags=[f"{split}_set"] if split else [])
        if label is not None:
            s[label_field] = fo.Classification(label=label)
        samples.append(s)
    ds.add_samples(samples, progress=False)
    return ds


@pytest.fixture
def demo_ds(fo_db, demo_data, request):
    ds = dataset_from_folder(f"demo-{request.node.name}"[:60], demo_data.root)
    yield ds
    ds.delete()


def by_path(ds, field):
    return dict(zip(ds.values("filepath"), ds.values(field)))


def test_scan_writes_fields_tags_views_and_a_run(demo_ds):
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    run = vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    res = run.results
    df = res.images.set_index("path")
    # the embedded field holds the engine's scores and flags, sample by sample
    assert isinstance(demo_ds.get_field(KEY), fo.EmbeddedDocumentField)
    for col in ("near_duplicate_score", "is_near_duplicate", "is_leak", "is_invalid",
                "dark_score", "is_label_conflict", "sharpness"):
        got = by_path(demo_ds, f"{KEY}.{col}")
        for path, want in df[col].items():
            if isinstance(want, float) and np.isnan(want):
                assert got[path] is None, (col, path)
            else:
                assert got[path] == pytest.approx(want), (col, path)
    assert by_path(demo_ds, f"{KEY}.invalid_reason") == {
        p: (r if isinstance(r, str) else None) for p, r in df["invalid_reason"].items()}
    # partners are FiftyOne sample ids of the partners' files
    sid = by_path(demo_ds, "id")
    id_to_path = dict(zip(res.images["id"], res.images["path"]))
    for path, partners in by_path(demo_ds, f"{KEY}.leak_partners").items():
        want = df.loc[path, "leak_partners"]
        want = sorted(sid[id_to_path[i]] for i in want.split(";")) if isinstance(want, str) else None
        assert (sorted(partners) if partners else None) == want
    # tags: exactly the flagged samples carry <key>:<check>
    tags = by_path(demo_ds, "tags")
    for check in ("exact_duplicate", "near_duplicate", "leak", "invalid", "dark", "label_conflict"):
        flagged = set(df.index[df[f"is_{check}"]])
        assert flagged, check
        assert {p for p, t in tags.items() if f"{KEY}:{check}" in t} == flagged, check
    # views: duplicates group by group, the kept member first
    dups = demo_ds.load_saved_view(f"{KEY}: duplicates")
    assert set(dups.values("filepath")) == set(df.index[df.is_exact_duplicate | df.is_near_duplicate])
    groups = dups.values(f"{KEY}.duplicate_group")
    reps = dups.values(f"{KEY}.is_representative")
    assert groups == sorted(groups)
    for g in set(groups):
        first = groups.index(g)
        assert reps[first] and not any(reps[first + 1:first + groups.count(g)])
    for title in vfo.views():
        assert demo_ds.has_saved_view(f"{KEY}: {title}")
    dark = demo_ds.load_saved_view(f"{KEY}: dark")
    assert set(dark.values("filepath")) == set(df.index[df.is_dark])
    # the stored run
    assert vfo.list_runs(demo_ds) == [KEY]
    loaded = vfo.load_run(demo_ds, KEY)
    assert loaded.leak_table == res.leak_table and loaded.leak_table
    pd.testing.assert_frame_equal(loaded.summary(), res.summary(), check_dtype=False)
    info = demo_ds.get_run_info(KEY)
    assert info.config.method == "vislint" and info.config.vislint_version == vislint.__version__
    assert info.config.thresholds["near_duplicate"] == 0.5


def test_similar_content_groups_from_embeddings_reach_fields_and_their_view(demo_ds):
    import vislint.integrations.fiftyone as vfo

    # embeddings that say "same content" for triples of samples, and nothing alike otherwise
    n = len(demo_ds)
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(n, 64))
    order = rng.permutation(n)
    triples = [order[i:i + 3] for i in range(0, 30, 3)]
    for t in triples:
        emb[t] = emb[t[0]] + rng.normal(0, 0.01, (3, 64))
    vfo.scan(demo_ds, embeddings=emb, progress=False, thresholds={"similar_content": 0.95})
    ids = np.array(demo_ds.values("id"))
    valid = ~np.array(demo_ds.values(f"{KEY}.is_invalid"))
    want = [set(ids[t][valid[t]]) for t in triples]
    want = sorted(sorted(w) for w in want if len(w) > 1)
    view = demo_ds.load_saved_view(f"{KEY}: similar content")
    groups = view.values(f"{KEY}.similar_group")
    assert groups == sorted(groups)  # group by group
    got = {}
    for g, sid in zip(groups, view.values("id")):
        got.setdefault(g, []).append(sid)
    assert sorted(sorted(v) for v in got.values()) == want and len(want) >= 8
    tagged = demo_ds.match_tags(f"{KEY}:similar_content")
    assert set(tagged.values("id")) == set(view.values("id"))


def test_rescan_replaces_new_key_coexists_delete_cleans_up(demo_ds):
    import vislint.integrations.fiftyone as vfo

    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    n_tagged = len(demo_ds.match_tags(f"{KEY}:dark"))
    # same key, stricter dark threshold: replaced, not added to
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False,
             thresholds={"dark": 1})
    assert vfo.list_runs(demo_ds) == [KEY]
    assert n_tagged > 0 and len(demo_ds.match_tags(f"{KEY}:dark")) == 0
    assert demo_ds.get_run_info(KEY).config.thresholds["dark"] == 1
    # a second key coexists
    vfo.scan(demo_ds, key="second", progress=False)
    assert sorted(vfo.list_runs(demo_ds)) == ["second", KEY]
    assert demo_ds.has_sample_field("second") and demo_ds.has_sample_field(KEY)
    assert demo_ds.has_saved_view("second: duplicates")
    # delete removes field, tags, views and run of that key only
    vfo.delete_run(demo_ds, "second")
    assert vfo.list_runs(demo_ds) == [KEY]
    assert not demo_ds.has_sample_field("second")
    assert not [t for t in demo_ds.distinct("tags") if t.startswith("second:")]
    assert not [v for v in demo_ds.list_saved_views() if v.startswith("second:")]
    assert demo_ds.has_saved_view(f"{KEY}: duplicates")
    with pytest.raises(KeyError, match="no vislint run 'second'"):
        vfo.delete_run(demo_ds, "second")


def test_written_documents_hold_the_values_and_null_for_missing_ones(demo_ds):
    """What lands in the database for every scanned sample: the embedded document with the
    "_cls" FiftyOne itself writes for its class, every subfield (NaN floats, negative groups
    and missing text or lists as null, so that FiftyOne reads None, also as an attribute),
    ids as FiftyOne sample ids, the new tag list and a fresh ``last_modified_at``."""
    import math
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    import bson
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo
    from vislint import vocabulary

    coll = vfo._samples_collection(demo_ds)
    assert coll.name == demo_ds._sample_collection_name  # the collection FiftyOne reads
    first = demo_ds.first()
    first["probe"] = fo.DynamicEmbeddedDocument(a=1)  # what FiftyOne writes for the class
    first.save()
    fo_cls = coll.find_one({"_id": bson.ObjectId(first.id)})["probe"]["_cls"]
    # two samples of one file share its findings; each keeps its own other tags
    demo_ds.add_sample(fo.Sample(filepath=first.filepath, tags=["extra"]))

    run = vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    df = run.results.images.copy()
    ids = df["id"].tolist()
    # values at the edges of what each kind of subfield holds, on the first rows
    df.loc[0, ["outlier_score", "sharpness", "exact_group", "duplicate_group"]] = [
        np.nan, -0.0, 2**40, -1]
    df.loc[1, ["suggested_label", "invalid_reason", "conflict_labels"]] = ["čaj ☕", "", "a|ü"]
    df.loc[2, ["leak_partners", "nearest_id", "suggested_label"]] = [
        f"{ids[0]};{ids[1]}", None, None]
    oids, paths, old_tags = vfo._read_samples(demo_ds)
    sample_ids = [str(o) for o in oids]
    row_of_path = {p: i for i, p in enumerate(df["path"])}
    rows = [row_of_path[p] for p in paths]
    assert len(rows) == len(df) + 1 and paths.count(first.filepath) == 2
    before = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    tags_used = vfo._write(demo_ds, KEY, demo_ds, SimpleNamespace(images=df), rows, oids,
                           old_tags, sample_ids, run.info["tags"])

    sid_of_id = {}
    for sid, r in zip(sample_ids, rows):
        sid_of_id.setdefault(ids[r], sid)
    # every check's score, flag and evidence (ids and lists are checked below)
    columns = [c for check in vocabulary.checks()
               for c in [check.score, check.flag] + [col for col, kind in check.evidence
                                                     if kind in ("float", "int", "bool", "str")] if c]
    columns += ["split", "reviewed", "label_original"]
    docs = {d["_id"]: d for d in coll.find({}, {KEY: 1, "tags": 1, "last_modified_at": 1})}
    assert len(docs) == len(oids)
    for oid, r, old in zip(oids, rows, old_tags):
        doc, row = docs[oid], df.iloc[r]
        got = doc[KEY]
        want = {"_cls": fo_cls, **{c: None for c in vfo._subfields()}}
        for c in columns:
            v = row[c]
            if isinstance(v, str) or (v is not None and not pd.isna(v)
                                      and not (c.endswith("_group") and v < 0)):
                want[c] = v.item() if hasattr(v, "item") else v
        want["is_representative"] = bool(row["duplicate_group"] >= 0
                                         and not isinstance(row["duplicate_of"], str))
        for c in [col for check in vocabulary.checks() for col, kind in check.evidence
                  if kind == "id"]:
            if isinstance(row[c], str):
                want[c] = sid_of_id[row[c]]
        if isinstance(row["leak_partners"], str) and row["leak_partners"]:
            want["leak_partners"] = [sid_of_id[i] for i in row["leak_partners"].split(";")]
        if isinstance(row["conflict_labels"], str) and row["conflict_labels"]:
            want["conflict_labels"] = row["conflict_labels"].split("|")
        assert got == want, (r, {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                                 if got.get(k) != want.get(k)})
        mine = [f"{KEY}:{c}" for c in vocabulary.names() if row[f"is_{c}"]]
        assert doc["tags"] == [t for t in old if t not in run.info["tags"]] + mine
        assert doc["last_modified_at"].replace(tzinfo=timezone.utc) >= before
    assert sorted(tags_used) == sorted({t for d in docs.values() for t in d["tags"]
                                        if t.startswith(f"{KEY}:")})
    # the edge values, as FiftyOne reads them back
    def read(field, r):
        return by_path(demo_ds, f"{KEY}.{field}")[df["path"][r]]

    assert read("outlier_score", 0) is None and read("duplicate_group", 0) is None
    assert read("exact_group", 0) == 2**40 and math.copysign(1, read("sharpness", 0)) == -1
    assert read("suggested_label", 1) == "čaj ☕" and read("invalid_reason", 1) == ""
    assert read("conflict_labels", 1) == ["a", "ü"]
    assert read("leak_partners", 2) == [sid_of_id[ids[0]], sid_of_id[ids[1]]]
    assert read("nearest_id", 2) is None and read("suggested_label", 2) is None
    # and as attributes of the sample's document (they used to raise AttributeError)
    doc = demo_ds.one(fo.ViewField("filepath") == df["path"][2])[KEY]
    assert doc.suggested_label is None and doc.reviewed is None and doc.nearest_id is None


@pytest.mark.parametrize("key", ["vislint", "clé ☕"])
def test_each_encoded_statement_is_pymongos_encoding_of_its_dict(fo_db, demo_scan, key,
                                                                   monkeypatch):
    """The statements laid out column by column (fiftyone_updates) are, byte for byte, what
    pymongo makes of their dicts: values at the edges of each kind, samples sharing a file,
    tag lists that change or not, batches cut anywhere; statements of one shape by the column
    path."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    import bson
    from vislint.integrations.fiftyone_updates import SampleUpdates

    df = demo_scan[0].images.copy()
    ids = df["id"].tolist()
    df.loc[0, ["outlier_score", "sharpness", "exact_group", "duplicate_group"]] = [
        np.nan, -0.0, 2**40, -1]
    df.loc[1, ["suggested_label", "invalid_reason", "conflict_labels"]] = ["čaj ☕", "", "a|ü"]
    df.loc[2, ["leak_partners", "nearest_id", "exact_group"]] = [f"{ids[0]};{ids[1]}", None,
                                                                  2**31 - 1]
    df.loc[3, ["exact_group", "sharpness", "suggested_label"]] = [2**31, np.inf, "a\x00b"]
    # samples sharing files: a few, then 300 sharing ten files with no finding
    plain = [r for r in range(4, len(df)) if not df.loc[r, [c for c in df.columns
                                                             if c.startswith("is_")]].any()]
    rows = list(range(len(df))) + [0, 3, 5, 5] + plain[:10] * 30
    oids = [bson.ObjectId() for _ in rows]
    previous = [f"{key}:outlier", f"{key}:blurry"]
    old_tags = [[["train"], [], None, [f"{key}:outlier", "mine"]][i % 4] for i in range(len(rows))]
    updates = SampleUpdates(SimpleNamespace(images=df), key, rows, [str(o) for o in oids], oids,
                            old_tags, previous, datetime.now(timezone.utc))
    for start, stop in [(0, len(rows)), (0, 7), (7, len(rows)), (3, 4)]:
        want = [bson.encode(s) for s in updates.statements(start, stop)]
        calls = []
        encode = bson.encode
        monkeypatch.setattr(bson, "encode", lambda doc: calls.append(1) or encode(doc))
        got = [r.raw for r in updates.encoded(start, stop)]
        monkeypatch.undo()
        assert len(got) == len(want) and got == want
        if stop == len(rows):  # pymongo encoded one statement of each shape, not the 300
            assert len(calls) < len(rows) - 250


def test_updates_beyond_the_command_size_limit_are_split(demo_ds, monkeypatch):
    """A batch whose update command would pass MongoDB's 16 MiB limit (samples with very many
    partners) is sent in halves, and every sample still gets its update."""
    import vislint.integrations.fiftyone as vfo

    coll = vfo._samples_collection(demo_ds)
    ids = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(24)]
    blob = "x" * (1 << 20)  # 1 MiB a sample: 24 MiB in one command
    sent = []
    command = coll.database.command

    def counting(name, *args, **kwargs):  # the real command, counted
        sent.append(len(kwargs["updates"]))
        return command(name, *args, **kwargs)

    monkeypatch.setattr(coll.database, "command", counting)
    vfo._send_updates(coll, [{"q": {"_id": i}, "u": {"$set": {"big": blob}}} for i in ids])
    assert sent == [24, 12, 12]  # refused whole (over 16 MiB), then sent in halves
    assert coll.count_documents({"_id": {"$in": ids}, "big": blob}) == len(ids)
    with pytest.raises(RuntimeError, match="updates failed"):  # the database's errors surface
        vfo._send_updates(coll, [{"q": {"_id": ids[0]}, "u": {"$set": {"tags": 1},
                                                           "$push": {"tags": "y"}}}])


def test_resolve_duplicates_tag_dry_run_and_delete(demo_ds):
    import vislint.integrations.fiftyone as vfo

    run = vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    df = run.results.images
    n_groups = df.loc[df.duplicate_group >= 0, "duplicate_group"].nunique()
    in_groups = int((df.duplicate_group >= 0).sum())
    n = len(demo_ds)
    plan = vfo.resolve_duplicates(demo_ds, action="delete")  # dry run by default for delete
    assert plan["dry_run"] and len(demo_ds) == n
    assert plan["groups"] == n_groups and len(plan["keep"]) == n_groups
    assert len(plan["remove"]) == in_groups - n_groups
    # the kept sample of each group is the keep policy's representative
    rep_paths = set(df.loc[(df.duplicate_group >= 0) & df.duplicate_of.isna(), "path"])
    assert set(demo_ds.select(plan["keep"]).values("filepath")) == rep_paths
    out = vfo.resolve_duplicates(demo_ds, action="tag")
    assert not out["dry_run"]
    assert len(demo_ds.match_tags(f"{KEY}:remove")) == len(plan["remove"])
    assert len(demo_ds.match_tags(f"{KEY}:keep")) == n_groups
    out = vfo.resolve_duplicates(demo_ds, action="delete", dry_run=False)
    assert len(demo_ds) == n - len(plan["remove"])
    assert set(plan["remove"]).isdisjoint(demo_ds.values("id"))
    with pytest.raises(ValueError, match="unknown action"):
        vfo.resolve_duplicates(demo_ds, action="archive")


def test_view_scan_label_and_split_variants(demo_ds, fo_db):
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    # Detections: a label only when every object agrees; splits from a dict of views
    for s in demo_ds.iter_samples(autosave=True):
        label = s.ground_truth.label if s.ground_truth else None
        dets = [fo.Detection(label=label, bounding_box=[0.1, 0.1, 0.2, 0.2])] * 2 if label else []
        if s.filepath.endswith("0.jpg") and label:
            dets.append(fo.Detection(label="other", bounding_box=[0.5, 0.5, 0.2, 0.2]))
        s["objects"] = fo.Detections(detections=dets)
    train = demo_ds.match_tags("train_set")
    rest = demo_ds.match_tags("train_set", bool=False)
    view = demo_ds.limit(60)
    run = vfo.scan(view, label_field="objects", split_field={"train": train, "eval": rest},
                   key="viewscan", progress=False, embeddings_field="vislint_vec")
    res = run.results
    assert len(res.images) == 60
    scanned = set(view.values("id"))
    written = demo_ds.exists("viewscan")
    assert set(written.values("id")) == scanned  # only the view's samples
    # a patches view's samples are generated, not the dataset's: refused, nothing written
    one = demo_ds.first()
    one["boxes"] = fo.Detections(detections=[fo.Detection(label="x", bounding_box=[0, 0, 1, 1])])
    one.save()
    with pytest.raises(ValueError, match="not a PatchesView.*Object-level checks .* not in vislint "
                                         "yet; a whole-image scan with label_field"):
        vfo.scan(demo_ds.to_patches("boxes"), label_field="boxes", key="patches", progress=False)
    assert not demo_ds.has_sample_field("patches")
    paths = view.values("filepath")
    labels = dict(zip(res.images.path, res.images.label))
    gt = dict(zip(paths, view.values("ground_truth.label")))
    for p in paths:
        want = None if p.endswith("0.jpg") else gt[p]
        assert (labels[p] if isinstance(labels[p], str) else None) == want, p
    assert set(res.images.split.dropna()) <= {"train", "eval"}
    vecs = np.array(view.values("vislint_vec"))
    assert vecs.shape == (60, res.features.shape[1])
    # a vector field on the samples can be the features of the next scan
    run2 = vfo.scan(view, embeddings="vislint_vec", key="fromfield", progress=False)
    assert run2.results.info["params"]["embeddings"].startswith("precomputed")
    with pytest.raises(ValueError, match="label_field 'nope' is not a field"):
        vfo.scan(view, label_field="nope", progress=False)
    with pytest.raises(ValueError, match="key must be a Python identifier"):
        vfo.scan(view, key="bad key", progress=False)


def install_plugin(fo_db):
    from vislint.integrations.commands import install_plugin as install

    return install(fo_db.plugins_dir)


def test_operators_immediate_and_delegated(demo_ds, fo_db):
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService

    install_plugin(fo_db)
    uris = {o.uri for o in foo.list_operators()}
    for name in ("scan_dataset", "show_issues", "show_related", "find_copies", "resolve_duplicates",
                 "delete_run"):
        assert f"{PLUGIN}/{name}" in uris

    def run(name, params, delegated=False):
        r = foo.execute_operator(f"{PLUGIN}/{name}", ctx=dict(dataset=demo_ds, params=params),
                                 request_delegation=delegated)
        assert r.error is None, r.error
        return r

    r = run("scan_dataset", {"label_field": "ground_truth", "split_field": "tags", "key": KEY})
    assert r.result["flagged"]["exact_duplicate"] > 0 and f"{KEY}: duplicates" in r.result["views"]
    r = run("show_issues", {"key": KEY, "check": "leaks"})
    assert r.result == {"view": f"{KEY}: leaks", "count": len(demo_ds.match_tags(f"{KEY}:leak"))}
    # delegated: queued, then run by a worker (here in-process)
    svc = DelegatedOperationService()
    run("scan_dataset", {"split_field": "tags", "key": "queued", "delegate": True}, delegated=True)
    assert "queued" not in demo_ds.list_runs()
    svc.execute_queued_operations(dataset_name=demo_ds.name)
    demo_ds.reload()
    assert "queued" in demo_ds.list_runs() and demo_ds.has_saved_view("queued: duplicates")
    ops = [d for d in svc.list_operations(dataset_name=demo_ds.name)
           if d.operator == f"{PLUGIN}/scan_dataset"]
    assert ops[-1].run_state == "completed" and ops[-1].result.result["key"] == "queued"
    # the scan reported its progress to the delegated operation
    assert ops[-1].status.progress == 1.0
    assert ops[-1].status.label == f"{len(demo_ds)}/{len(demo_ds)} images"
    run("delete_run", {"key": "queued", "confirm": True}, delegated=True)
    svc.execute_queued_operations(dataset_name=demo_ds.name)
    demo_ds.reload()
    assert "queued" not in demo_ds.list_runs() and not demo_ds.has_sample_field("queued")
    # destructive operators refuse without confirmation: the form requires it, and an
    # unticked box is refused
    from fiftyone.operators.executor import ExecutionError

    n = len(demo_ds)
    with pytest.raises(ExecutionError, match="confirm"):
        foo.execute_operator(f"{PLUGIN}/resolve_duplicates",
                             ctx=dict(dataset=demo_ds, params={"key": KEY, "action": "delete"}))
    with pytest.raises(ExecutionError, match="confirmation box"):
        foo.execute_operator(f"{PLUGIN}/resolve_duplicates", ctx=dict(
            dataset=demo_ds, params={"key": KEY, "action": "delete", "confirm": False}))
    assert len(demo_ds) == n
    r = run("resolve_duplicates", {"key": KEY, "action": "tag"})
    assert r.result["removed"] == len(demo_ds.match_tags(f"{KEY}:remove")) > 0
    # show_issues and resolve_duplicates delegated too
    run("show_issues", {"key": KEY, "check": "dark"}, delegated=True)
    run("resolve_duplicates", {"key": KEY, "action": "tag"}, delegated=True)
    svc.execute_queued_operations(dataset_name=demo_ds.name)
    done = {d.operator.rsplit("/", 1)[1]: d for d in svc.list_operations(dataset_name=demo_ds.name)}
    assert done["show_issues"].run_state == "completed"
    assert done["show_issues"].result.result == {"view": f"{KEY}: dark",
                                                 "count": len(demo_ds.match_tags(f"{KEY}:dark"))}
    assert done["resolve_duplicates"].run_state == "completed"
    assert done["resolve_duplicates"].result.result["removed"] == r.result["removed"]
    r = run("resolve_duplicates", {"key": KEY, "action": "delete", "confirm": True})
    assert len(demo_ds) == n - r.result["removed"]
    r = run("delete_run", {"key": KEY, "confirm": True})
    assert KEY not in demo_ds.list_runs() and not demo_ds.has_saved_view(f"{KEY}: duplicates")


def test_plugin_refuses_a_version_mismatch(demo_ds, fo_db):
    import fiftyone.operators as foo

    dest = install_plugin(fo_db)
    yml = dest / "fiftyone.yml"
    text = yml.read_text()
    try:
        yml.write_text(text.replace(f'version: "{vislint.__version__}"', 'version: "0.0.0"'))
        from fiftyone.operators.executor import ExecutionError

        with pytest.raises((ExecutionError, RuntimeError), match="vislint fiftyone install-plugin"):
            foo.execute_operator(f"{PLUGIN}/show_issues",
                                 ctx=dict(dataset=demo_ds, params={"key": KEY, "check": "dark"}))
    finally:
        yml.write_text(text)


def test_plugin_version_matches_the_package():
    from vislint.integrations.commands import plugin_source

    assert f'version: "{vislint.__version__}"' in (plugin_source() / "fiftyone.yml").read_text()


def test_intel_sample_in_fiftyone(fo_db):
    import vislint.integrations.fiftyone as vfo

    ds = dataset_from_folder("intel-sample", shared("intel-scenes-sample"))
    try:
        run = vfo.scan(ds, label_field="ground_truth", split_field="tags", progress=False)
        pair = {"train_set/glacier/10234.jpg", "train_set/mountain/7654.jpg"}
        for title in ("duplicates", "label conflicts"):
            view = ds.load_saved_view(f"{KEY}: {title}")
            rel = {p.split("intel-scenes-sample/")[1] for p in view.values("filepath")}
            assert pair <= rel, title
        # the two sit side by side in the duplicates view (same group, consecutive)
        view = ds.load_saved_view(f"{KEY}: duplicates")
        rel = [p.split("intel-scenes-sample/")[1] for p in view.values("filepath")]
        i, j = sorted(rel.index(p) for p in pair)
        groups = view.values(f"{KEY}.duplicate_group")
        assert groups[i] == groups[j] and j == i + 1
        # leak counts: the engine's table, and the tags in the dataset agree
        assert vfo.load_run(ds).leak_table == run.results.leak_table
        n_leak = int(run.results.images.is_leak.sum())
        assert len(ds.match_tags(f"{KEY}:leak")) == n_leak == len(ds.load_saved_view(f"{KEY}: leaks"))
    finally:
        ds.delete()


def check_duplicates_view_in_the_app(ds, fo_app, png):
    """Open "vislint: duplicates" of a scanned persistent dataset in the App (headless
    chromium) and check what a reviewer sees: the view and its sample count; the vislint
    sidebar group open below the labels, flags first; and on each tile its duplicate group,
    whether it is the kept member, and its split, so that groups can be told apart."""
    from fo_services import open_in_browser

    name = f"{KEY}: duplicates"
    view = ds.load_saved_view(name)
    count = len(view)
    app = fo_app(ds.name, view=name)
    page = open_in_browser(app.view_url, png, min_tiles=min(count, 4))
    assert page.saved_view == name
    assert page.sample_count == count > 0
    assert page.tiles >= min(count, 4)
    groups = page.sidebar_groups
    assert groups.index(KEY.upper()) == groups.index("LABELS") + 1
    assert {f"{KEY}.is_exact_duplicate", f"{KEY}.is_near_duplicate"} <= set(page.shown_fields)
    assert {f"{KEY}.near_duplicate_score", f"{KEY}.duplicate_group", f"{KEY}.leak_partners"} <= set(
        page.sidebar_fields)
    tiles = page.text.split("\nSamples\n", 1)[1]
    first = view.limit(4)
    for kept, group, split in zip(first.values(f"{KEY}.is_representative"),
                                  first.values(f"{KEY}.duplicate_group"), first.values(f"{KEY}.split")):
        assert f"{kept}{group}{split or ''}" in tiles, (kept, group, split, tiles[:300])
    assert page.screenshot.stat().st_size > 10_000
    return page


def test_app_shows_the_duplicates_view(demo_ds, fo_app, artifacts):
    import vislint.integrations.fiftyone as vfo

    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    check_duplicates_view_in_the_app(demo_ds, fo_app, artifacts / "fiftyone-demo-duplicates.png")


def test_app_shows_the_intel_duplicates_view(fo_db, fo_app, artifacts):
    import vislint.integrations.fiftyone as vfo

    ds = dataset_from_folder("intel-app", shared("intel-scenes-sample"))
    try:
        vfo.scan(ds, label_field="ground_truth", split_field="tags", progress=False)
        check_duplicates_view_in_the_app(ds, fo_app, artifacts / "fiftyone-intel-duplicates.png")
    finally:
        ds.delete()


def test_cli_installs_the_plugin_shipped_in_the_package(tmp_path):
    import subprocess
    import sys

    from vislint.integrations.commands import plugin_source

    for _ in range(2):  # a second install replaces the first
        out = subprocess.run([sys.executable, "-m", "vislint", "fiftyone", "install-plugin",
                              "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    dest = tmp_path / "vislint"
    assert sorted(p.name for p in dest.iterdir()) == ["__init__.py", "fiftyone.yml"]
    for name in ("__init__.py", "fiftyone.yml"):
        assert (dest / name).read_bytes() == (plugin_source() / name).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["vislint"]  # no temp or old copies left
    assert "installed the vislint FiftyOne plugin" in out.stderr


# ------------------------------------------------------------------ names vislint did not create
# (issue 13: a run key or field name must never overwrite or delete what the user made)

def snapshot(ds):
    """What a user made on the dataset: label counts, tags per sample, saved views, fields."""
    return {"labels": ds.count_values("ground_truth.label"),
            "tags": dict(zip(ds.values("id"), ds.values("tags"))),
            "views": sorted(ds.list_saved_views()),
            "fields": sorted(ds.get_field_schema()),
            "app": ds.app_config.to_dict()}


def test_scan_refuses_a_key_or_embeddings_field_naming_a_user_field(demo_ds):
    import vislint.integrations.fiftyone as vfo

    rng = np.random.default_rng(0)
    uniqueness = rng.random(len(demo_ds)).tolist()  # a float field, as FiftyOne Brain writes
    demo_ds.set_values("uniqueness", uniqueness)
    demo_ds.set_values("user_vec", [rng.random(4) for _ in range(len(demo_ds))])
    demo_ds.take(3, seed=1).tag_samples("leaky:dark")  # a user tag in the name space of key 'leaky'
    demo_ds.save_view("viewed: duplicates", demo_ds.limit(2))  # a user view named like a run's
    before = snapshot(demo_ds)
    refused = [
        (dict(key="ground_truth"), "field 'ground_truth' already exists"),
        (dict(key="uniqueness"), "field 'uniqueness' already exists"),
        (dict(key="tags"), "field 'tags' already exists"),
        (dict(embeddings_field="ground_truth"), "field 'ground_truth' already exists"),
        (dict(embeddings_field="user_vec"), "field 'user_vec' already exists"),
        (dict(key="leaky"), "tag 'leaky:dark' already exists"),
        (dict(key="viewed"), "saved view 'viewed: duplicates' already exists"),
    ]
    for kwargs, message in refused:
        with pytest.raises(ValueError, match=message) as err:
            vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False,
                     **kwargs)
        assert "choose another" in str(err.value)
        # refused before anything was written
        assert snapshot(demo_ds) == before, kwargs
        assert vfo.list_runs(demo_ds) == [] and demo_ds.list_runs() == []
    assert demo_ds.values("uniqueness") == uniqueness
    assert demo_ds.first().uniqueness == uniqueness[0]  # readable (a TypeError once overwritten)

    # an embeddings field vislint created under a key may be rewritten by that key only
    vfo.scan(demo_ds, progress=False, embeddings_field="vl_vec")
    assert vfo.load_run(demo_ds, KEY).info["own_embeddings_fields"] == ["vl_vec"]
    vfo.scan(demo_ds, progress=False, embeddings_field="vl_vec")  # rescan: its own field
    with pytest.raises(ValueError, match="field 'vl_vec' already exists"):
        vfo.scan(demo_ds, key="other", progress=False, embeddings_field="vl_vec")
    with pytest.raises(ValueError, match=f"field '{KEY}' already exists"):
        vfo.scan(demo_ds, key="other", progress=False, embeddings_field=KEY)
    with pytest.raises(ValueError, match="field 'vl_vec' already exists"):  # not a run's field
        vfo.scan(demo_ds, key="vl_vec", progress=False)
    assert vfo.list_runs(demo_ds) == [KEY]


def test_delete_run_removes_only_what_the_run_recorded(demo_ds):
    import vislint.integrations.fiftyone as vfo

    demo_ds.take(5, seed=2).tag_samples(["ground_truth:checked", "mine"])
    demo_ds.save_view("ground_truth: duplicates", demo_ds.limit(3))
    demo_ds.save_view("my view", demo_ds.limit(4))
    demo_ds.set_values("user_vec", [[0.5, 1.0]] * len(demo_ds))
    before = snapshot(demo_ds)
    # no vislint run under this key: nothing at all is deleted
    vfo.delete_run(demo_ds, "ground_truth", missing_ok=True)
    vfo.delete_run(demo_ds, "user_vec", missing_ok=True)
    assert snapshot(demo_ds) == before
    with pytest.raises(KeyError, match="no vislint run 'ground_truth'"):
        vfo.delete_run(demo_ds, "ground_truth")
    assert snapshot(demo_ds) == before

    # a real run under another key: its own field, tags, views and embeddings go, nothing else
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False,
             embeddings_field="vl_vec")
    vfo.resolve_duplicates(demo_ds, action="tag")  # adds vislint:keep / vislint:remove
    assert len(demo_ds.match_tags([f"{KEY}:keep", f"{KEY}:remove"])) > 0
    demo_ds.take(4, seed=3).tag_samples(f"{KEY}:todo")  # the user's, added after the scan
    todo = sorted(demo_ds.match_tags(f"{KEY}:todo").values("id"))
    vfo.delete_run(demo_ds, KEY)
    assert vfo.list_runs(demo_ds) == []
    assert not demo_ds.has_sample_field(KEY) and not demo_ds.has_sample_field("vl_vec")
    assert not [v for v in demo_ds.list_saved_views() if v.startswith(f"{KEY}: ")]
    after = snapshot(demo_ds)
    assert sorted(demo_ds.match_tags(f"{KEY}:todo").values("id")) == todo
    for sid in after["tags"]:  # the user's tags only
        after["tags"][sid] = [t for t in after["tags"][sid] if t != f"{KEY}:todo"]
    assert after == before


def test_scan_opens_its_sidebar_group_and_tile_fields_and_keeps_the_users_app_config(demo_ds):
    """The run's sidebar group is open with flags and scores first, and the tiles show each
    copy's group, kept member and split; a sidebar group and active fields of the user's stay,
    and delete_run puts the App config back as it was."""
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    groups = fo.DatasetAppConfig.default_sidebar_groups(demo_ds)
    groups.append(fo.SidebarGroupDocument(name=KEY, paths=["ground_truth"], expanded=False))
    demo_ds.app_config.sidebar_groups = groups  # the user's group, named like the run key
    demo_ds.app_config.active_fields = fo.ActiveFields(paths=["ground_truth", "filepath"])
    demo_ds.save()
    before = demo_ds.app_config.to_dict()
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    config = demo_ds.app_config
    by_name = {g.name: g for g in config.sidebar_groups}
    assert by_name[KEY].paths == ["ground_truth"] and not by_name[KEY].expanded  # the user's
    mine = by_name[f"{KEY} (vislint)"]
    assert mine.expanded
    flags = [p for p in mine.paths if p.split(".")[1].startswith("is_")]
    scores = [p for p in mine.paths if p.endswith("_score")]
    assert mine.paths[:len(flags) + len(scores)] == flags + scores and len(flags) >= 10
    assert config.active_fields.paths == ["ground_truth", "filepath", *(
        f"{KEY}.{f}" for f in ("duplicate_group", "is_representative", "split", "predicted_label",
                               "predicted_probability"))]
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)  # again
    assert [g.name for g in demo_ds.app_config.sidebar_groups].count(f"{KEY} (vislint)") == 1
    vfo.delete_run(demo_ds, KEY)
    assert demo_ds.app_config.to_dict() == before


def test_resolve_duplicates_leaves_groups_that_changed_since_the_scan(demo_ds):
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    members = {}  # duplicate group -> {sample id: is the kept one}
    for sid, g, rep in zip(*demo_ds.exists(f"{KEY}.duplicate_group").values(
            ["id", f"{KEY}.duplicate_group", f"{KEY}.is_representative"])):
        members.setdefault(g, {})[sid] = rep
    assert len(members) >= 5
    lost_kept, lost_copy, cloned, *normal = sorted(members)
    kept = lambda g: [s for s, r in members[g].items() if r]  # noqa: E731
    copies = lambda g: [s for s, r in members[g].items() if not r]  # noqa: E731
    # the user deletes the kept sample of one group and a copy in another, and clones a copy of
    # a third (the clone carries the vislint field, so its group has a member more)
    demo_ds.delete_samples(kept(lost_kept) + copies(lost_copy))
    demo_ds.add_sample(demo_ds[copies(cloned)[0]].copy())
    left = {g: set(demo_ds.match(fo.ViewField(f"{KEY}.duplicate_group") == g).values("id"))
            for g in (lost_kept, lost_copy, cloned)}
    assert left[lost_kept] == set(copies(lost_kept))
    changed = {lost_kept: "kept sample is gone", lost_copy: "1 of 2 members",
               cloned: "1 member more"}

    def check_changed(out):
        assert sorted(c["group"] for c in out["changed"]) == sorted(changed)
        for c in out["changed"]:
            assert changed[c["group"]] in c["change"] and "scan again" in c["todo"]
            assert set(c["members"]) == left[c["group"]]
        assert "3 duplicate groups changed since the scan" in out["warning"]
        untouched = set().union(*left.values())
        assert untouched.isdisjoint(out["remove"]) and untouched.isdisjoint(out["keep"])

    n = len(demo_ds)
    with pytest.warns(UserWarning, match="3 duplicate groups changed since the scan"):
        plan = vfo.resolve_duplicates(demo_ds, action="delete")  # the dry run warns
    check_changed(plan)
    assert plan["groups"] == len(normal) and len(demo_ds) == n
    assert sorted(plan["remove"]) == sorted(s for g in normal for s in copies(g))
    with pytest.warns(UserWarning, match="changed since the scan"):
        out = vfo.resolve_duplicates(demo_ds, action="delete", dry_run=False)
    check_changed(out)
    # the changed groups keep every member they still had; the others lost their copies
    for g, ids in left.items():
        assert set(demo_ds.select(list(ids)).values("id")) == ids, g
    assert len(demo_ds) == n - len(plan["remove"])
    assert set(plan["remove"]).isdisjoint(demo_ds.values("id"))
    assert set(plan["keep"]) <= set(demo_ds.values("id"))


def resolve_form(ds, name: str, params: dict) -> str:
    """The input form of a plugin operator as the App gets it (JSON text), resolved by
    FiftyOne's own ``resolve_type`` (what the App server calls while the user fills the form)."""
    import asyncio
    import json

    from fiftyone.operators.executor import resolve_type
    from fiftyone.operators.registry import OperatorRegistry

    form = asyncio.run(resolve_type(OperatorRegistry(), f"{PLUGIN}/{name}", dict(
        dataset_name=ds.name, view=ds.view()._serialize(), params=params)))
    assert hasattr(form, "to_json"), getattr(form, "error", form)
    return json.dumps(form.to_json())


def test_show_related_opens_a_samples_copies_and_partners(demo_ds, fo_db):
    """From a selected sample (or the one open in the modal) the operator shows its duplicate
    group and what its evidence names, group by group: what a reviewer would otherwise find
    by copying sample ids from duplicate_of / leak_partners."""
    import fiftyone.operators as foo
    from fiftyone import ViewField as F
    from fiftyone.operators.executor import ExecutionError

    import vislint.integrations.fiftyone as vfo

    install_plugin(fo_db)
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    leak = demo_ds.match(F(f"{KEY}.is_leak")).first()
    group = leak[KEY].duplicate_group
    members = set(demo_ds.match(F(f"{KEY}.duplicate_group") == group).values("id"))
    assert set(leak[KEY].leak_partners) <= members and len(members) >= 2
    for ctx in (dict(selected=[leak.id]), dict(current_sample=leak.id)):
        r = foo.execute_operator(f"{PLUGIN}/show_related", ctx=dict(
            dataset=demo_ds, params={"key": KEY}, **ctx))
        assert r.error is None and r.result["count"] >= len(members)
    view = vfo.related(demo_ds, [leak.id], KEY)
    assert members <= set(view.values("id"))
    groups = view.values(f"{KEY}.duplicate_group")
    at = groups.index(group)
    assert view.values(f"{KEY}.is_representative")[at]  # the kept member first in its group
    others = set(view.values("id")) - members  # e.g. its nearest image, named by its evidence
    assert others <= {leak[KEY].nearest_id}
    with pytest.raises(ExecutionError, match="select samples"):
        foo.execute_operator(f"{PLUGIN}/show_related", ctx=dict(dataset=demo_ds, params={"key": KEY}))


def _predict(ds, wrong: str, *, logits: bool):
    """A 'predictions' Classification on every sample: its ground truth, confidently, except
    the sample ``wrong`` (id), predicted as another class — as logits with the dataset's class
    list, or as a label with its confidence."""
    import fiftyone as fo

    names = sorted(set(ds.distinct("ground_truth.label")))
    if logits:
        ds.classes = {"predictions": names}
        ds.save()
    for s in ds.iter_samples(autosave=True):
        truth = s.ground_truth.label if s.ground_truth else names[0]
        label = next(n for n in names if n != truth) if s.id == wrong else truth
        z = [4.0 if n == label else 0.0 for n in names]
        s["predictions"] = (fo.Classification(label=label, logits=z) if logits
                            else fo.Classification(label=label, confidence=0.9))
    return names


@pytest.mark.parametrize("logits", [True, False])
def test_a_predictions_field_makes_label_conflicts(demo_ds, logits):
    from fiftyone import ViewField as F

    import vislint.integrations.fiftyone as vfo

    wrong = demo_ds.match(F("ground_truth") != None).first()  # noqa: E711
    _predict(demo_ds, wrong.id, logits=logits)
    run = vfo.scan(demo_ds, label_field="ground_truth", predictions_field="predictions",
                   progress=False)
    doc = demo_ds[wrong.id][KEY]
    assert doc.is_label_conflict and doc.label_sources.endswith("prediction")
    assert doc.predicted_label == demo_ds[wrong.id].predictions.label
    assert doc.predicted_probability == pytest.approx(0.9 if not logits else np.e ** 4 / (
        np.e ** 4 + len(demo_ds.distinct("ground_truth.label")) - 1), abs=1e-4)
    flagged = demo_ds.match(F(f"{KEY}.label_sources").contains_str("prediction"))
    assert flagged.values("id") == [wrong.id]
    assert vfo.run_parameters(demo_ds)["predictions_field"] == "predictions"
    assert run.results.info["params"]["predictions"].endswith("classes")
    with pytest.raises(ValueError, match="must be a Classification field"):
        vfo.scan(demo_ds, predictions_field="filepath", progress=False)


def test_app_shows_predicted_class_and_probability_in_the_label_conflict_view(demo_ds, fo_db,
                                                                               fo_app, artifacts):
    """Issue 17: a dataset with a predictions field, scanned from the App's operator, shows the
    label-conflict view with each image's predicted class and probability on its tile."""
    import fiftyone.operators as foo
    from fiftyone import ViewField as F

    from fo_services import open_in_browser

    install_plugin(fo_db)
    wrong = demo_ds.match(F("ground_truth") != None).first()  # noqa: E711
    _predict(demo_ds, wrong.id, logits=True)
    r = foo.execute_operator(f"{PLUGIN}/scan_dataset", ctx=dict(dataset=demo_ds, params={
        "label_field": "ground_truth", "split_field": "tags", "predictions": "predictions",
        "key": KEY}))
    assert r.error is None, r.error
    name = f"{KEY}: label conflicts"
    view = demo_ds.load_saved_view(name)
    assert wrong.id in view.values("id")
    doc = demo_ds[wrong.id][KEY]
    app = fo_app(demo_ds.name, view=name)
    page = open_in_browser(app.view_url, artifacts / "fiftyone-label-conflicts-predictions.png",
                           min_tiles=min(len(view), 4))
    tiles = page.text.split("\nSamples\n", 1)[1]
    assert f"{doc.predicted_label}{doc.predicted_probability:.3f}".rstrip("0") in tiles.replace(
        "\n", ""), tiles[:400]


def _defaults(form: str) -> dict:
    """{input: its default} of a resolved operator form."""
    import json

    props = json.loads(form)["type"]["properties"]
    return {name: p.get("default") for name, p in props.items()}


def test_scan_form_starts_from_the_last_run_of_its_key(demo_ds, fo_db):
    """The scan form's fields start as the run of the key last read them, so running it as
    shown repeats that run (it used to start with no label field, and replaced a run with
    labels by one without)."""
    import fiftyone as fo
    import vislint.integrations.fiftyone as vfo

    install_plugin(fo_db)
    demo_ds.add_sample_field("where", fo.StringField)
    fresh = _defaults(resolve_form(demo_ds, "scan_dataset", {}))
    assert fresh["label_field"] == "" and fresh["split_field"] == "tags"
    vecs = np.random.default_rng(0).normal(size=(len(demo_ds), 8))
    demo_ds.set_values("vec", list(vecs))
    vfo.scan(demo_ds, label_field="ground_truth", split_field="where", embeddings="vec",
             progress=False)
    again = _defaults(resolve_form(demo_ds, "scan_dataset", {}))
    assert (again["label_field"], again["split_field"], again["embeddings"]) == (
        "ground_truth", "where", "vec")
    other = _defaults(resolve_form(demo_ds, "scan_dataset", {"key": "other"}))
    assert other["label_field"] == "" and other["split_field"] == "tags"


def test_plugin_refuses_a_taken_key_and_warns_of_changed_groups(demo_ds, fo_db):
    import fiftyone.operators as foo
    from fiftyone import ViewField as F
    from fiftyone.operators.executor import ExecutionError
    import vislint.integrations.fiftyone as vfo

    install_plugin(fo_db)
    before = snapshot(demo_ds)
    # the scan form marks a key naming a user field as invalid, with the reason
    form = resolve_form(demo_ds, "scan_dataset", {"key": "ground_truth"})
    assert "field 'ground_truth' already exists" in form
    with pytest.raises(ExecutionError, match="field 'ground_truth' already exists"):
        foo.execute_operator(f"{PLUGIN}/scan_dataset", ctx=dict(
            dataset=demo_ds, params={"key": "ground_truth", "split_field": "tags"}))
    assert snapshot(demo_ds) == before and demo_ds.list_runs() == []
    assert "already exists" not in resolve_form(demo_ds, "scan_dataset", {"key": KEY})

    # the resolve form and its result say which groups changed since the scan
    vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", progress=False)
    reps = demo_ds.match(F(f"{KEY}.is_representative")).values("id")
    demo_ds.delete_samples(reps[:1])
    for action in ("tag", "delete"):
        form = resolve_form(demo_ds, "resolve_duplicates", {"key": KEY, "action": action})
        assert "1 duplicate group changed since the scan" in form, action
    r = foo.execute_operator(f"{PLUGIN}/resolve_duplicates", ctx=dict(
        dataset=demo_ds, params={"key": KEY, "action": "delete", "confirm": True}))
    assert "1 duplicate group changed since the scan" in r.result["warning"]
    assert r.result["changed"] == 1


def test_find_copies_of_selected_samples_in_a_saved_scan(demo_ds, fo_db, tmp_path):
    """New samples (edited copies of scanned images, and an unrelated image) added after a
    scan with a work dir: the operator says which already exist, shows them beside the
    samples they copy, and changes neither the work dir nor the dataset's findings."""
    import random

    import fiftyone as fo
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionError
    from PIL import Image

    import vislint.integrations.fiftyone as vfo
    from conftest import fingerprint, write_images
    from planted import _save, transform

    install_plugin(fo_db)
    work = tmp_path / "work"
    run = vfo.scan(demo_ds, label_field="ground_truth", split_field="tags", out=work, progress=False)
    df = run.results.images
    originals = df.path[~df.is_invalid & ~df.is_near_duplicate & ~df.is_exact_duplicate][:2].tolist()
    rng = random.Random(0)
    new = []
    for i, (src, kind) in enumerate(zip(originals, ("resize", "hflip"))):
        im, _, quality = transform(Image.open(src).convert("RGB"), kind, rng)
        _save(im, tmp_path / f"copy{i}.jpg", quality)
        new.append(str(tmp_path / f"copy{i}.jpg"))
    new += [str(p) for p in write_images(tmp_path / "other", 1, seed=3)]
    demo_ds.add_samples([fo.Sample(filepath=p) for p in new], progress=False)
    before, findings = fingerprint(work), demo_ds.values(f"{KEY}.near_duplicate_score")
    ids = demo_ds.select_by("filepath", new, ordered=True).values("id")
    r = foo.execute_operator(f"{PLUGIN}/find_copies", ctx=dict(
        dataset=demo_ds, selected=ids, params={"key": KEY}))
    assert r.error is None, r.error
    assert r.result["counts"] == {"exact": 0, "copy": 2, "same_scene": 0, "new": 1, "invalid": 0}
    assert {(m["query_relpath"], m["match_path"]) for m in r.result["matches"] if m["kind"] == "copy"} \
        == {(p, o) for p, o in zip(new[:2], originals)}
    found, view = vfo.find_copies(demo_ds, ids, index=work)
    shown = view.values("filepath")
    assert shown[:2] == [new[0], originals[0]] and shown[2:4] == [new[1], originals[1]]
    assert r.result["in_dataset"] == len(view)
    assert fingerprint(work) == before and demo_ds.values(f"{KEY}.near_duplicate_score") == findings
    vfo.scan(demo_ds, key="nowork", progress=False)
    with pytest.raises(ValueError, match="not saved in a work dir"):
        vfo.find_copies(demo_ds, ids, key="nowork")
    with pytest.raises(ExecutionError, match="index"):  # the form asks for a work dir
        foo.execute_operator(f"{PLUGIN}/find_copies", ctx=dict(
            dataset=demo_ds, selected=ids, params={"key": "nowork"}))

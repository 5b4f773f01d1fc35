"""vislint.integrations.label_studio against a real Label Studio server (ls_server fixture:
its own venv, started on 127.0.0.1, stopped by PID)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

import vislint
from conftest import shared
from fo_fixtures import fo_db  # noqa: F401  (fixtures)
from ls_fixtures import ls_client, ls_server  # noqa: F401  (fixtures)
from vislint.demo import build_demo


@pytest.fixture(scope="module")
def demo(ls_server, tmp_path_factory):
    """The demo data set inside the server's document root, scanned into a work dir."""
    info = build_demo(ls_server.document_root / "demo")
    out = tmp_path_factory.mktemp("ls-demo-out")
    return info, out, vislint.scan(info.root, out=out)


@pytest.fixture(scope="module")
def scan_dir(demo, tmp_path_factory):
    """A saved scan of the demo data set that no test adds decisions to (for CLI pushes)."""
    info, _, _ = demo
    out = tmp_path_factory.mktemp("ls-scan")
    return out, vislint.scan(info.root, out=out)


def connect(ls_server):
    return dict(url=ls_server.url, api_key=ls_server.api_key)


def expected_counts(res):
    import vislint.integrations.label_studio as vls

    counts = {}
    for item in vls.findings(res):
        counts[item["queue"]] = counts.get(item["queue"], 0) + 1
    return counts


def project_tasks(ls_client, pid):
    return [t for t in ls_client.tasks.list(project=pid, fields="all", page_size=1000)]


def test_push_creates_queues_with_the_findings(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    info, out, res = demo
    proj = vls.push(res, **connect(ls_server), project="demo review",
                    document_root=ls_server.document_root)
    counts = expected_counts(res)
    assert counts["duplicates"] >= 5 and counts["dark"] == 1
    titles = [v.data["title"] for v in ls_client.views.list(project=proj.id)]
    assert sorted(titles) == sorted(counts)  # a tab per queue with findings, once
    for queue in vls.queues():
        tasks = vls.queue_tasks(**connect(ls_server), project="demo review", queue=queue)
        assert len(tasks) == counts.get(queue, 0), queue
        scores = [t.data["score"] for t in tasks]
        assert scores == sorted(scores, reverse=True), queue  # worst first
        assert all(t.data["queue"] == queue and t.data["status"] == "open" for t in tasks)
    # a suggested label only where it is the finding's evidence (no look-alike vote on a copy)
    everything = project_tasks(ls_client, proj.id)
    suggesting = {t.data["queue"] for t in everything if t.data.get("suggested_label")}
    assert suggesting <= {"label conflicts"}
    assert res.images["suggested_label"].notna().sum() > 0  # the vote did fill the column
    conflict = next(t for t in everything if t.data["queue"] == "label conflicts")
    assert "copies labelled" in conflict.data["evidence"]
    # a duplicates task: every member image, the kept one first; predictions with score etc.
    dups = vls.queue_tasks(**connect(ls_server), project="demo review", queue="duplicates")
    t = ls_client.tasks.get(str(dups[0].id))
    assert len(t.data["paths"]) >= 2 and t.data["gallery"].count("<img") == len(t.data["paths"])
    # each copy's caption says how it was verified against the kept image
    notes = res.images.set_index("relpath")["duplicate_evidence"]
    for p in t.data["paths"][1:]:
        assert notes[p] and notes[p] in t.data["gallery"], (p, notes[p])
    pred = t.predictions[0]
    assert pred.model_version == vls.MODEL_VERSION and pred.score == t.data["score"]
    assert pred.mislabeling == 0  # no label is the finding of a duplicates task
    assert pred.cluster == t.data["group"] and len(pred.neighbors) == len(t.data["paths"]) - 1
    assert ls_client.projects.get(proj.id).model_version == vls.MODEL_VERSION
    # the images serve: HTTP 200 and the file's bytes
    req = urllib.request.Request(ls_server.url + t.data["image"],
                                 headers={"Authorization": f"Token {ls_server.api_key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        assert r.read() == (info.root / t.data["paths"][0]).read_bytes()
    # pushing again changes nothing
    n = len(project_tasks(ls_client, proj.id))
    vls.push(res, **connect(ls_server), project="demo review", document_root=ls_server.document_root)
    assert len(project_tasks(ls_client, proj.id)) == n == sum(counts.values())
    assert sorted(v.data["title"] for v in ls_client.views.list(project=proj.id)) == sorted(titles)


def test_interrupted_push_resumes_to_one_task_per_finding(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    total = sum(expected_counts(res).values())
    failure = {}

    def run():
        try:
            vls.push(res, **connect(ls_server), project="interrupted", batch_size=4, retries=0,
                     document_root=ls_server.document_root)
        except vls.LabelStudioError as e:
            failure["error"] = e

    pusher = threading.Thread(target=run)
    pusher.start()
    deadline = time.time() + 120
    pid = None
    while time.time() < deadline and pid is None:  # wait until the first tasks landed
        projects = [p for p in ls_client.projects.list(title="interrupted") if p.title == "interrupted"]
        if projects and projects[0].task_number:
            pid = projects[0].id
        time.sleep(0.05)
    ls_server.stop(grace=0)  # the server dies mid-push
    pusher.join(120)
    ls_server.start()
    assert "error" in failure and "cannot reach Label Studio" in str(failure["error"])
    partial = len(project_tasks(ls_client, pid))
    assert 0 < partial < total
    vls.push(res, **connect(ls_server), project="interrupted", document_root=ls_server.document_root)
    tasks = project_tasks(ls_client, pid)
    ids = [t.data["vislint_id"] for t in tasks]
    assert len(ids) == len(set(ids)) == total
    # and each task holds vislint's prediction, once (the batch cut off had none)
    assert all([p.model_version for p in t.predictions] == [vls.MODEL_VERSION] for t in tasks)


def test_decisions_round_trip_and_the_rescan_honours_them(demo, ls_server, ls_client, tmp_path):
    import vislint.integrations.label_studio as vls

    info, out, res = demo
    proj = vls.push(res, **connect(ls_server), project="decisions",
                    document_root=ls_server.document_root)
    gt = pd.read_csv(info.root / "ground_truth.csv")
    near = gt[gt.kind == "near_duplicate"].iloc[0]
    dark = gt[gt.kind == "dark"].iloc[0].file
    tasks = project_tasks(ls_client, proj.id)
    dup_task = next(t for t in tasks if t.data["queue"] == "duplicates"
                    and set(t.data["paths"]) == {near.file, near.partner})
    dark_task = next(t for t in tasks if t.data["queue"] == "dark" and t.data["paths"] == [dark])
    for task, verdict in ((dup_task, "not duplicates"), (dark_task, "keep")):
        ls_client.annotations.create(id=task.id, result=[{
            "from_name": "verdict", "to_name": "gallery", "type": "choices",
            "value": {"choices": [verdict]}}], lead_time=3.0)
    decisions = vls.pull(**connect(ls_server), project="decisions")
    assert len(decisions) == 2
    me = ls_client.users.whoami().email
    assert set(decisions.reviewer) == {me}
    d = decisions.set_index("check")
    assert d.loc["near_duplicate", "verdict"] == "not_duplicate"
    assert {d.loc["near_duplicate", "image"], d.loc["near_duplicate", "partner"]} == {near.file, near.partner}
    assert d.loc["dark", "verdict"] == "keep" and d.loc["dark", "image"] == dark
    vls.save_decisions(decisions, out)
    vls.save_decisions(decisions, out)  # idempotent
    assert len(pd.read_csv(out / "decisions.csv")) == 2
    before = res.images.set_index("relpath")
    after = vislint.scan(info.root, out=out).images.set_index("relpath")
    assert not after.loc[near.file, "is_near_duplicate"] and not after.loc[dark, "is_dark"]
    assert after.loc[dark, "reviewed"] == f"dark:keep by {me}"
    others = before.index.difference([near.file, near.partner, dark])
    flags = ["is_near_duplicate", "is_exact_duplicate", "is_leak", "is_label_conflict", "is_dark",
             "is_blurry", "is_outlier"]
    pd.testing.assert_frame_equal(after.loc[others, flags], before.loc[others, flags])
    # a re-push closes the tasks whose finding is gone, adds none, and says so
    rescanned = vislint.load(out)
    n = len(project_tasks(ls_client, proj.id))
    pushed = vls.push(rescanned, **connect(ls_server), project="decisions",
                      document_root=ls_server.document_root)
    tasks = {t.id: t for t in project_tasks(ls_client, proj.id)}
    assert len(tasks) == n
    assert tasks[dup_task.id].data["status"] == "closed" and tasks[dark_task.id].data["status"] == "closed"
    assert pushed.new == 0 and set(pushed.closed) == {dup_task.id, dark_task.id}
    assert pushed.decisions["applied"] == 2
    text = pushed.text()
    assert text.startswith("0 new tasks") and f"2 closed (tasks {min(pushed.closed)}, {max(pushed.closed)})" in text
    assert "reviewer decisions: 2 of 2 applied" in text
    open_dark = vls.queue_tasks(**connect(ls_server), project="decisions", queue="dark")
    assert dark_task.id not in {t.id for t in open_dark}


def test_label_studio_decisions_hold_for_a_list_of_paths_and_a_fiftyone_scan(demo, ls_server,
                                                                            ls_client, fo_db):
    """Decisions pulled from Label Studio name images by the content hash of their files too:
    a scan of the same files listed by absolute path and a FiftyOne scan of a dataset of
    them honour them, and say so."""
    import fiftyone as fo

    import vislint.integrations.fiftyone as vfo
    import vislint.integrations.label_studio as vls

    info, _, res = demo
    proj = vls.push(res, **connect(ls_server), project="decisions by content",
                    document_root=ls_server.document_root)
    dark = pd.read_csv(info.root / "ground_truth.csv").query("kind == 'dark'").iloc[0].file
    task = next(t for t in project_tasks(ls_client, proj.id)
                if t.data["queue"] == "dark" and t.data["paths"] == [dark])
    ls_client.annotations.create(id=task.id, result=[{
        "from_name": "verdict", "to_name": "gallery", "type": "choices",
        "value": {"choices": ["keep"]}}], lead_time=1.0)
    decisions = vls.pull(**connect(ls_server), project="decisions by content")
    row = decisions.iloc[0]
    assert row.image == dark and row.image_hash == res.images.set_index("relpath").loc[dark, "content_hash"]
    work = info.root.parent / "by-content"
    work.mkdir(exist_ok=True)
    vls.save_decisions(decisions, work)
    paths = res.images["path"].tolist()
    listed = vislint.scan(paths, decisions=work / "decisions.csv")
    by_path = listed.images.set_index("path")
    assert not by_path.loc[str(info.root / dark), "is_dark"]
    assert listed.info["decisions"]["applied"] == 1
    ds = fo.Dataset("decisions-by-content")
    ds.add_samples([fo.Sample(filepath=p) for p in paths])
    run = vfo.scan(ds, decisions=work / "decisions.csv", progress=False)
    sample = ds.match({"filepath": str(info.root / dark)}).first()
    assert sample.vislint.is_dark is False and sample.vislint.reviewed.startswith("dark:keep")
    assert run.info["decisions"]["applied"] == 1


def test_similar_content_groups_are_tasks_that_suggest_keeping(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    info, _, base = demo
    labels = base.images["label"].fillna("").tolist()
    names = sorted(set(labels))
    emb = np.stack([np.eye(len(names))[names.index(x)] for x in labels])
    emb = emb + np.random.default_rng(3).normal(0, 0.01, emb.shape)
    res = vislint.scan(info.root, embeddings=emb, thresholds={"similar_content": 0.95})
    groups = res.group_table[res.group_table.check == "similar_content"]
    assert groups.group.nunique() >= 2
    proj = vls.push(res, **connect(ls_server), project="similar", checks=["similar_content"],
                    document_root=ls_server.document_root)
    tasks = vls.queue_tasks(**connect(ls_server), project="similar", queue="similar content")
    assert len(tasks) == groups.group.nunique() == len(project_tasks(ls_client, proj.id))
    t = ls_client.tasks.get(str(tasks[-1].id))
    members = groups[groups.group == t.data["group"]]
    rel = dict(zip(res.images["id"], res.images["relpath"]))
    assert t.data["paths"] == [rel[i] for i in members.id]  # the representative first
    assert t.predictions[0].result[0]["value"]["choices"] == ["keep all"]  # nothing removed
    ls_client.annotations.create(id=t.id, result=[{
        "from_name": "verdict", "to_name": "gallery", "type": "choices",
        "value": {"choices": ["remove the others, keep the first"]}}], lead_time=1.0)
    got = vls.pull(**connect(ls_server), project="similar")
    assert sorted(got.image) == sorted(t.data["paths"][1:])
    assert set(got.check) == {"similar_content"} and set(got.verdict) == {"remove"}
    assert set(got.partner) == {t.data["paths"][0]}


def test_tasks_pre_select_removal_only_on_strong_evidence(demo):
    """A reviewer who submits the default never loses an image or a right label on weak
    evidence: a duplicates task suggests removing copies only when every member is an exact
    copy or a copy with probability ≥ 0.98 of the kept image (keeping the best of them), and no
    other task pre-selects anything (leaks, label conflicts, blurry/dark/... images)."""
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    items = vls.findings(res)
    dups = [i for i in items if i["queue"] == "duplicates"]
    assert dups and all(i["suggested"] == ("remove the copies, keep the first"
                                           if min(i["sims"][1:]) >= vls.STRONG_COPY else "keep all")
                        for i in dups)
    others = {i["suggested"] for i in items if i["queue"] != "duplicates"}
    assert others <= {None, "keep all"}, others  # (same scene: keep all)
    assert {i["queue"] for i in items} >= {"duplicates", "leaks", "label conflicts", "dark"}
    weak = dict(dups[0], sims=[1.0, 0.99, 0.6])
    assert vls._suggested("duplicates", weak["sims"]) == "keep all"


def test_clear_errors(ls_server, demo):
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    with pytest.raises(vls.LabelStudioError, match="refused the API key"):
        vls.pull(url=ls_server.url, api_key="not-a-token", project="demo review", retries=0)
    with pytest.raises(vls.LabelStudioError, match="cannot reach Label Studio"):
        vls.pull(url="http://127.0.0.1:9", api_key="x", project="p", retries=0)
    with pytest.raises(vls.LabelStudioError, match="no project titled 'nope'"):
        vls.pull(**connect(ls_server), project="nope", retries=0)
    with pytest.raises(ValueError, match="document_root"):
        vls.push(res, **connect(ls_server), project="p", document_root="/nonexistent-root")


def test_browser_shows_both_images_of_a_duplicates_task(demo, ls_server, ls_client, artifacts):
    import vislint.integrations.label_studio as vls
    from ls_services import open_in_browser

    _, _, res = demo
    proj = vls.push(res, **connect(ls_server), project="demo review",
                    document_root=ls_server.document_root)
    task = vls.queue_tasks(**connect(ls_server), project="demo review", queue="duplicates")[0]
    n = len(task.data["paths"])
    page = open_in_browser(f"{ls_server.url}/projects/{proj.id}/data?task={task.id}",
                           artifacts / "label-studio-duplicates-task.png",
                           image_selector="figure img", min_images=n)
    assert len(page["selected_loaded"]) >= n
    assert task.data["paths"][0] in page["text"]


def test_a_duplicates_task_that_is_not_sure_preselects_keeping_all_in_the_browser(
        demo, ls_server, ls_client, artifacts):
    """Issue 16: a copy that is not beyond doubt (probability < 0.98) comes with "keep all"
    ticked, not removal, and the task says why; what the reviewer sees is a screenshot."""
    import vislint.integrations.label_studio as vls
    from ls_services import log_in
    from browser import chromium_page

    _, _, res = demo
    proj = vls.push(res, **connect(ls_server), project="demo review",
                    document_root=ls_server.document_root)
    unsure = [t for t in vls.queue_tasks(**connect(ls_server), project="demo review", queue="duplicates")
              if "suggested: keep all" in t.data["evidence"]]
    assert unsure, "the demo has a copy below 0.98"
    task = ls_client.tasks.get(str(unsure[0].id))
    assert [r["value"]["choices"] for r in task.predictions[0].result] == [["keep all"]]
    assert "the least sure copy has probability 0.9" in task.data["evidence"]
    with chromium_page((1400, 900)) as page:
        log_in(page, ls_server.url)
        page.goto(f"{ls_server.url}/projects/{proj.id}/data?task={task.id}")
        page.wait_for_selector("text=not duplicates", timeout=60_000)
        page.wait_for_timeout(1500)
        ticked = page.evaluate("""() => [...document.querySelectorAll('input[type=checkbox]')]
            .filter(i => i.checked).map(i => i.closest('label') && i.closest('label').innerText)
            .filter(Boolean)""")
        page.screenshot(path=str(artifacts / "label-studio-duplicates-task-keep-all.png"))
    assert any(t.startswith("keep all") for t in ticked), ticked
    assert not any(t.startswith("remove") for t in ticked), ticked


def dm_columns(ls_server, pid):
    """{column id ("tasks:data.score"): type} of the project's Data Manager columns, as the
    server describes them (GET /api/dm/columns)."""
    import json

    _, body = fetch(ls_server, f"/api/dm/columns/?project={pid}")
    cols = json.loads(body)["columns"]
    return {f"tasks:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}": c["type"]
            for c in cols if c.get("target") == "tasks"}


def dm_type(view, columns, column):
    """The type the Data Manager gives ``column`` in ``view`` (which filter inputs and operators
    it offers): the view's display type for it, else the server's column type."""
    return (view.data.get("columnsDisplayType") or {}).get(column) or columns[column]


def header_boxes(page):
    """{column title: (left, right) in CSS px} of the Data Manager table's header cells."""
    return {h["text"]: (h["left"], h["right"]) for h in page.evaluate(
        """() => Array.from(document.querySelectorAll('.lsf-th-content')).map(e => {
               const r = e.getBoundingClientRect();
               return {text: e.innerText.trim(), left: r.left, right: r.right}; })""")}


def test_queue_views_show_vislint_columns_with_thumbnails_and_images_in_grid_view(
        demo, ls_server, ls_client, artifacts):
    """A queue's tab at 1,400 px shows the task ID, then vislint's columns -- a thumbnail,
    title, score, group, label, split -- and none of Label Studio's own; its grid view shows
    each task's first image, not the gallery's HTML."""
    from browser import chromium_page
    from ls_services import log_in

    import vislint.integrations.label_studio as vls

    _, _, res = demo
    title = "queue columns"
    proj = vls.push(res, **connect(ls_server), project=title, document_root=ls_server.document_root)
    view = next(v for v in ls_client.views.list(project=proj.id) if v.data["title"] == "duplicates")
    tasks = vls.queue_tasks(**connect(ls_server), project=title, queue="duplicates")
    shown = ["ID", "image", "title", "score", "group", "label", "split"]
    with chromium_page((1400, 900)) as page:
        log_in(page, ls_server.url)
        page.goto(f"{ls_server.url}/projects/{proj.id}/data?tab={view.id}")
        # a thumbnail per visible row: the task's image, decoded
        page.wait_for_function(
            """n => Array.from(document.querySelectorAll('.lsf-table__cell img[alt=Data]'))
                        .filter(i => i.complete && i.naturalWidth > 0).length >= n""",
            arg=min(len(tasks), 5), timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts / "label-studio-queue-columns-1400.png"))
        boxes = header_boxes(page)
        thumbs = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.lsf-table__cell img[alt=Data]')).map(i => i.getAttribute('src'))""")
        # vislint's columns, in this order, all inside the 1,400 px window; nothing else
        assert list(boxes) == shown, boxes
        assert all(boxes[a][1] <= boxes[b][0] for a, b in zip(shown, shown[1:])), boxes
        assert boxes["split"][1] <= 1400, boxes
        assert thumbs[:5] == [t.data["image"] for t in tasks[:5]]  # worst first, the kept image
        # the grid view: the images, and no gallery HTML
        page.click('[aria-label="Switch to grid view"]')
        page.wait_for_function(
            """n => Array.from(document.querySelectorAll('.lsf-grid-image-wrapper img'))
                        .filter(i => i.complete && i.naturalWidth > 0).length >= n""",
            arg=min(len(tasks), 4), timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts / "label-studio-queue-grid-1400.png"))
        grid = page.evaluate("""() => Array.from(document.querySelectorAll('.lsf-grid-view__cell'))
            .map(c => ({text: c.innerText, images: Array.from(c.querySelectorAll('img'))
                        .map(i => i.getAttribute('src'))}))""")
    assert grid and all("<figure" not in c["text"] and "<img" not in c["text"] for c in grid)
    assert [c["images"] for c in grid[:4]] == [[t.data["image"]] for t in tasks[:4]]


def test_score_and_group_filter_as_numbers_in_the_data_manager(demo, ls_server, ls_client):
    """The Data Manager types score and group as numbers in every queue's tab: a filter
    "score > 0.9" made there returns exactly the tasks scoring above 0.9 (typed as text, the
    value 0.9 matched nothing), "group >= 5" the groups from 5 on, and "group < 0" the findings
    in no group (-1)."""
    import json

    from label_studio_sdk.data_manager import Column, Filters, Operator

    import vislint.integrations.label_studio as vls

    _, _, res = demo
    proj = vls.push(res, **connect(ls_server), project="numeric filters",
                    document_root=ls_server.document_root)
    columns = dm_columns(ls_server, proj.id)
    everything = project_tasks(ls_client, proj.id)
    views = list(ls_client.views.list(project=proj.id))

    def matching(column, operator, value):
        # the filter as the Data Manager sends it: a number from a Number input, else text
        kind = dm_type(views[0], columns, column)
        item = Filters.item(column, operator, kind,
                            Filters.value(value if kind == "Number" else str(value)))
        query = json.dumps({"filters": Filters.create(Filters.AND, [item])})
        return {t.id for t in ls_client.tasks.list(project=proj.id, query=query, page_size=1000)}

    high = {t.id for t in everything if t.data["score"] > 0.9}
    assert 0 < len(high) < len(everything)  # the demo's scores straddle 0.9
    assert matching(Column.data("score"), Operator.GREATER, 0.9) == high
    late = {t.id for t in everything if t.data["group"] >= 5}
    assert 0 < len(late) < len(everything)
    assert matching(Column.data("group"), Operator.GREATER_OR_EQUAL, 5) == late
    # a finding in no group (-1; the number input drops a typed minus sign, "< 0" finds them)
    alone = {t.id for t in everything if t.data["group"] == -1}
    assert alone and matching(Column.data("group"), Operator.LESS, 0) == alone
    assert views
    for view in views:  # every tab, and its image column shows the images
        for field in ("score", "group"):
            assert dm_type(view, columns, Column.data(field)) == "Number", (view.data["title"],
                                                                            field)
        assert dm_type(view, columns, Column.data("image")) == "Image"


def test_a_queue_gets_its_tab_once_it_has_findings(demo, ls_server, ls_client):
    """No tab for a queue without findings; a push that brings the queue findings makes its
    tab; a tab whose queue empties stays (showing nothing open); a tab an older vislint made
    without column settings gets them."""
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    title = "tabs with findings"
    counts = expected_counts(res)
    empty = [q for q in vls.queues() if q not in counts]
    assert empty and "blurry" in counts  # the demo leaves some queues empty

    def tabs(pid):
        return sorted(v.data["title"] for v in ls_client.views.list(project=pid))

    proj = vls.push(res, **connect(ls_server), project=title, checks=["dark"],
                    document_root=ls_server.document_root)
    assert tabs(proj.id) == ["dark"]
    assert vls.queue_tasks(**connect(ls_server), project=title, queue="blurry") == []
    with pytest.raises(vls.LabelStudioError, match="no review queue 'blury'"):
        vls.queue_tasks(**connect(ls_server), project=title, queue="blury")
    # a view as vislint made it before column settings existed
    dark = next(v for v in ls_client.views.list(project=proj.id))
    bare = {k: dark.data[k] for k in ("title", "filters", "ordering")}
    ls_client.views.update(str(dark.id), project=proj.id, data=bare)
    assert "hiddenColumns" not in ls_client.views.get(str(dark.id)).data
    vls.push(res, **connect(ls_server), project=title, document_root=ls_server.document_root)
    assert tabs(proj.id) == sorted(counts)  # the queues with findings, each once
    updated = ls_client.views.get(str(dark.id)).data
    assert updated["hiddenColumns"]["explore"] and updated["columnsDisplayType"]
    # the blurry findings go (another push of the dark queue alone): the tab stays, empty
    vls.push(res, **connect(ls_server), project=title, checks=["dark"],
             document_root=ls_server.document_root)
    assert tabs(proj.id) == sorted(counts)
    assert vls.queue_tasks(**connect(ls_server), project=title, queue="blurry") == []
    assert len(vls.queue_tasks(**connect(ls_server), project=title, queue="dark")) == counts["dark"]


def test_cli_push_and_pull(demo, ls_server, ls_client, tmp_path):
    import subprocess
    import sys

    info, _, _ = demo
    out = tmp_path / "scan"  # a fresh scan: other tests leave decisions in the shared work dir
    vislint.scan(info.root, out=out)
    env = {**__import__("os").environ, "LABEL_STUDIO_API_KEY": ls_server.api_key}
    base = [sys.executable, "-m", "vislint"]
    push = subprocess.run(base + ["push", "label-studio", str(out), "--url", ls_server.url,
                                  "--project", "cli review", "--checks", "dark,blurry",
                                  "--document-root", str(ls_server.document_root)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert push.returncode == 0, push.stderr
    assert ls_server.api_key not in push.stdout + push.stderr  # the key is never printed
    pid = next(p.id for p in ls_client.projects.list(title="cli review") if p.title == "cli review")
    tasks = project_tasks(ls_client, pid)
    assert {t.data["queue"] for t in tasks} == {"dark", "blurry"}
    ls_client.annotations.create(id=tasks[0].id, result=[{
        "from_name": "verdict", "to_name": "gallery", "type": "choices",
        "value": {"choices": ["keep"]}}])
    work = tmp_path / "work"
    work.mkdir()
    pull = subprocess.run(base + ["pull", "label-studio", str(work), "--url", ls_server.url,
                                  "--project", "cli review"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert pull.returncode == 0, pull.stderr
    assert "1 decisions from 1 reviewed tasks" in pull.stderr
    saved = pd.read_csv(work / "decisions.csv")
    assert saved.verdict.tolist() == ["keep"] and saved.image.tolist() == tasks[0].data["paths"]
    bad = subprocess.run(base + ["pull", "label-studio", str(work), "--url", ls_server.url,
                                 "--project", "cli review", "--api-key", "wrong"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "refused the API key" in bad.stderr and "wrong" not in bad.stderr


def test_intel_sample_queues(ls_server, ls_client, tmp_path_factory):
    import shutil

    import vislint.integrations.label_studio as vls

    src = shared("intel-scenes-sample")
    root = ls_server.document_root / "intel"
    if not root.exists():
        shutil.copytree(src, root)  # a temporary copy inside the server's document root
    out = tmp_path_factory.mktemp("intel-out")
    res = vislint.scan(root, out=out)
    proj = vls.push(res, **connect(ls_server), project="intel review",
                    document_root=ls_server.document_root)
    counts = expected_counts(res)
    # the queues hold what the engine found, counted independently of the push code
    df = res.images
    engine = {"duplicates": df.loc[df.duplicate_group >= 0, "duplicate_group"].nunique(),
              "leaks": res.groups("leak").group.nunique(),
              "label conflicts": res.groups("label_conflict").group.nunique()
              + int((df.is_label_conflict & (df.duplicate_group < 0)).sum())}
    for queue, check in (("outliers", "outlier"), ("blurry", "blurry"), ("dark", "dark"),
                         ("bright", "bright"), ("low information", "low_information"),
                         ("odd size", "odd_size")):
        engine[queue] = int(df[f"is_{check}"].sum())
    engine["similar content"] = 0  # no embeddings, and off by default
    engine["in reference"] = 0  # no reference scan
    engine["same scene"] = res.groups("same_scene").group.nunique()
    assert engine["duplicates"] > 40 and engine["leaks"] > 10 and engine["label conflicts"] > 5
    for queue in vls.queues():
        n = len(vls.queue_tasks(**connect(ls_server), project=proj.id, queue=queue))
        assert n == counts.get(queue, 0) == engine[queue], queue
    # an outlier task says which measure finds the image odd (on these photos: how it looks)
    odd = vls.queue_tasks(**connect(ls_server), project=proj.id, queue="outliers")
    assert odd and all("how it looks: robust z" in t.data["evidence"]
                       and "(odd)" in t.data["evidence"] for t in odd)
    pair = {"train_set/glacier/10234.jpg", "train_set/mountain/7654.jpg"}
    for queue in ("duplicates", "label conflicts"):
        tasks = [t for t in vls.queue_tasks(**connect(ls_server), project=proj.id, queue=queue)
                 if pair & set(t.data["paths"])]
        assert len(tasks) == 1 and set(tasks[0].data["paths"]) == pair, queue
    # a reviewer says a two-image near-duplicate group is no duplicate
    near_pairs = res.pairs("near_duplicate")
    by_ids = {frozenset((x, y)): (x, y) for x, y in zip(near_pairs.id_a, near_pairs.id_b)}
    task = next(t for t in vls.queue_tasks(**connect(ls_server), project=proj.id, queue="duplicates")
                if len(t.data["images"]) == 2 and frozenset(t.data["images"]) in by_ids)
    near = pd.Series(dict(zip(("id_a", "id_b"), by_ids[frozenset(task.data["images"])])))
    ls_client.annotations.create(id=task.id, result=[{
        "from_name": "verdict", "to_name": "gallery", "type": "choices",
        "value": {"choices": ["not duplicates"]}}])
    vls.save_decisions(vls.pull(**connect(ls_server), project=proj.id), out)
    after = vislint.scan(root, out=out)
    found = {frozenset((x, y)) for x, y in zip(after.pairs("near_duplicate").id_a,
                                               after.pairs("near_duplicate").id_b)}
    assert frozenset((near.id_a, near.id_b)) not in found
    before = {frozenset((x, y)) for x, y in zip(res.pairs("near_duplicate").id_a,
                                                res.pairs("near_duplicate").id_b)}
    assert found == before - {frozenset((near.id_a, near.id_b))}
    cols = ["is_exact_duplicate", "is_leak", "is_label_conflict", "is_outlier", "is_dark"]
    pd.testing.assert_frame_equal(after.images[cols], res.images[cols])


def test_apply_to_fiftyone(demo, fo_db):
    import fiftyone as fo

    import vislint.integrations.label_studio as vls

    info, _, res = demo
    ds = fo.Dataset("ls-apply", overwrite=True)
    ds.add_samples([fo.Sample(filepath=p) for p in res.images.path], progress=False)
    first, second = res.images.relpath.iloc[0], res.images.relpath.iloc[1]
    decisions = pd.DataFrame([
        {"check": "label_conflict", "verdict": "relabel", "image": first, "partner": "",
         "new_label": "coffee", "reviewer": "r", "time": "2026-11-22T00:00:00", "source": ""},
        {"check": "dark", "verdict": "keep", "image": second, "partner": "", "new_label": "",
         "reviewer": "r", "time": "2026-11-22T00:00:00", "source": ""}])
    counts = vls.apply(decisions, dataset=ds, root=info.root)
    assert counts == {"tagged": 2, "relabelled": 1}
    s1 = ds.match(fo.ViewField("filepath").ends_with(first)).first()
    assert "vislint:review:relabel" in s1.tags and s1.vislint_label.label == "coffee"
    assert len(ds.match_tags("vislint:review:keep")) == 1
    ds.delete()


def test_push_survives_a_server_restart_with_retries(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    ls_server.stop(grace=0)
    done = {}

    def run():
        done["project"] = vls.push(res, **connect(ls_server), project="retried", retries=8,
                                   backoff=0.5, checks=["dark", "blurry"],
                                   document_root=ls_server.document_root)

    pusher = threading.Thread(target=run)
    pusher.start()
    time.sleep(2)  # the first attempts fail: connection refused
    ls_server.start()
    pusher.join(240)
    assert "project" in done
    queues = {t.data["queue"] for t in project_tasks(ls_client, done["project"].id)}
    assert queues == {"dark", "blurry"}


def test_images_by_url_prefix(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    proj = vls.push(res, **connect(ls_server), project="by url", images_via="url",
                    url_prefix="https://bucket.example.org/data/", checks=["dark"])
    (task,) = project_tasks(ls_client, proj.id)
    assert task.data["image"] == "https://bucket.example.org/data/" + task.data["paths"][0]
    assert f'src="{task.data["image"]}"' in task.data["gallery"]
    with pytest.raises(ValueError, match="url_prefix"):
        vls.push(res, **connect(ls_server), project="by url", images_via="url")


# ---- issue 13: hostile testing ----------------------------------------------------------------

def fetch(ls_server, path):
    """(HTTP status, body) of a GET of ``path`` on the server, with the API key."""
    req = urllib.request.Request(ls_server.url + path,
                                 headers={"Authorization": f"Token {ls_server.api_key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def cli(*args, env):
    """``vislint ARGS`` in a subprocess, no terminal: CompletedProcess with text output."""
    return subprocess.run([sys.executable, "-m", "vislint", *map(str, args)], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def push_args(ls_server, out, title, *extra):
    return ["push", "label-studio", str(out), "--url", ls_server.url, "--project", title,
            "--document-root", str(ls_server.document_root), *extra]


def key_env(ls_server=None, **extra):
    """This environment with $LABEL_STUDIO_API_KEY set to the server's key, or unset."""
    env = {k: v for k, v in os.environ.items() if k != "LABEL_STUDIO_API_KEY"}
    if ls_server is not None:
        env["LABEL_STUDIO_API_KEY"] = ls_server.api_key
    return {**env, **extra}


def titled(ls_client, title):
    return [p for p in ls_client.projects.list(title=title) if p.title == title]


def test_image_names_with_url_characters_serve_their_own_bytes(ls_server, ls_client, tmp_path):
    import numpy as np
    from PIL import Image

    import vislint.integrations.label_studio as vls

    root = ls_server.document_root / "odd-names"
    root.mkdir()
    names = ["a#b.jpg", "a&b=c.jpg", "100%.jpg", "a+b.jpg", "a b.jpg", "%41.jpg", "A.jpg",
             "?.jpg", "%2e%2e.jpg"]
    rng = np.random.default_rng(13)
    for name in names:  # dark noise: one "dark" finding per file, the bytes all different
        Image.fromarray(rng.integers(0, 30, (64, 64, 3), dtype=np.uint8)).save(root / name)
    res = vislint.scan(root, out=tmp_path / "scan")
    proj = vls.push(res, **connect(ls_server), project="odd names", checks=["dark"],
                    document_root=ls_server.document_root)
    tasks = project_tasks(ls_client, proj.id)
    assert sorted(t.data["paths"][0] for t in tasks) == sorted(names)
    for t in tasks:
        status, body = fetch(ls_server, t.data["image"])
        assert status == 200, (t.data["paths"][0], t.data["image"], status)
        assert body == (root / t.data["paths"][0]).read_bytes(), t.data["paths"][0]
    # "%41" is not read as "A": the file named %41.jpg shows itself, not A.jpg
    percent = next(t for t in tasks if t.data["paths"][0] == "%41.jpg")
    assert fetch(ls_server, percent.data["image"])[1] != (root / "A.jpg").read_bytes()


def test_push_killed_before_its_predictions_adds_them_on_the_rerun(scan_dir, ls_server, ls_client,
                                                                    tmp_path):
    import vislint.integrations.label_studio as vls

    out, res = scan_dir
    total = sum(expected_counts(res).values())
    title = "killed push"
    log = tmp_path / "push.log"
    with open(log, "w") as sink:
        pusher = subprocess.Popen([sys.executable, "-m", "vislint", *push_args(ls_server, out, title)],
                                  env=key_env(ls_server), stdin=subprocess.DEVNULL, stdout=sink,
                                  stderr=subprocess.STDOUT)
    try:
        deadline, pid = time.time() + 180, None
        while pid is None:  # every task is in: kill the push before its predictions are done
            assert pusher.poll() is None, f"the push ended before it was killed:\n{log.read_text()}"
            assert time.time() < deadline, log.read_text()
            full = [p for p in titled(ls_client, title) if p.task_number == total]
            pid = full[0].id if full else None
        pusher.kill()  # SIGKILL: the process dies at once, nothing cleaned up
    finally:
        pusher.kill()
        pusher.wait()
    time.sleep(1)  # requests the push had in flight finish on the server
    tasks = project_tasks(ls_client, pid)
    assert len(tasks) == total
    assert any(not t.predictions for t in tasks), "killed too late: every prediction was made"
    vls.push(out, **connect(ls_server), project=title, document_root=ls_server.document_root)
    tasks = project_tasks(ls_client, pid)
    assert len(tasks) == total
    for t in tasks:
        (pred,) = t.predictions
        assert pred.model_version == vls.MODEL_VERSION and pred.score == t.data["score"]
        assert pred.cluster == (t.data["group"] if t.data["group"] >= 0 else None)


# A push process that loads everything first, says so (creates argv[1]) and waits for the file
# argv[2] before pushing, so that several start their push within a millisecond of each other.
PUSH_TOGETHER = """
import os, sys, time
import vislint, vislint.integrations.label_studio as vls
ready, go, out, url, project, root, checks = sys.argv[1:8]
res = vislint.load(out)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
vls.push(res, url=url, api_key=os.environ["LABEL_STUDIO_API_KEY"], project=project,
         checks=checks.split(",") if checks else None, document_root=root, progress=True)
"""


def push_together(ls_server, out, title, tmp_path, envs, checks=""):
    """Run one push process per environment in ``envs``, all starting at the same instant;
    returns each one's (exit code, output)."""
    sync = tmp_path / "sync"
    sync.mkdir()
    pushers = []
    for i, env in enumerate(envs):
        log = open(tmp_path / f"push-{i}.log", "w")
        pushers.append((subprocess.Popen(
            [sys.executable, "-c", PUSH_TOGETHER, str(sync / f"ready-{i}"), str(sync / "go"),
             str(out), ls_server.url, title, str(ls_server.document_root), checks],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT), log))
    deadline = time.time() + 300
    while len(list(sync.glob("ready-*"))) < len(envs):
        assert time.time() < deadline and all(p.poll() is None for p, _ in pushers)
        time.sleep(0.05)
    (sync / "go").touch()
    done = []
    for i, (p, log) in enumerate(pushers):
        p.wait(600)
        log.close()
        done.append((p.returncode, (tmp_path / f"push-{i}.log").read_text()))
    return done


def test_concurrent_pushes_make_one_project_with_one_task_per_finding(scan_dir, ls_server,
                                                                      ls_client, tmp_path):
    import vislint.integrations.label_studio as vls

    out, res = scan_dir
    title = "pushed three times at once"
    done = push_together(ls_server, out, title, tmp_path, [key_env(ls_server)] * 3)
    assert [code for code, _ in done] == [0, 0, 0], done
    (proj,) = titled(ls_client, title)
    ids = sorted(t.data["vislint_id"] for t in project_tasks(ls_client, proj.id))
    assert ids == sorted(item["vislint_id"] for item in vls.findings(res))
    assert sum("waiting for it to end" in text for _, text in done) == 2  # the lock took turns


def test_pushes_from_several_machines_share_one_new_project(scan_dir, ls_server, ls_client,
                                                           tmp_path):
    # each push with a temporary folder of its own, as on separate machines: no shared lock
    out, _ = scan_dir
    title = "pushed from three machines"
    envs = []
    for i in range(3):
        (tmp_path / f"machine-{i}").mkdir()
        envs.append(key_env(ls_server, TMPDIR=str(tmp_path / f"machine-{i}")))
    done = push_together(ls_server, out, title, tmp_path, envs, checks="dark")
    assert [code for code, _ in done] == [0, 0, 0], done
    assert len(titled(ls_client, title)) == 1


def test_projects_with_one_title_resolve_to_the_lowest_id(demo, ls_server, ls_client):
    import vislint.integrations.label_studio as vls

    _, _, res = demo
    title = "made twice"
    a, b = (ls_client.projects.create(title=title, label_config=vls.LABEL_CONFIG) for _ in "ab")
    proj = vls.push(res, **connect(ls_server), project=title, checks=["dark"],
                    document_root=ls_server.document_root)
    assert proj.id == a.id and project_tasks(ls_client, b.id) == []
    # after racing creates, the push that made the lowest id keeps it and the other deletes its own
    ls = vls._client(ls_server.url, ls_server.api_key, 0, 0.0)
    assert vls._settle(ls, title, a).id == a.id and len(titled(ls_client, title)) == 2
    assert vls._settle(ls, title, b).id == a.id
    assert [p.id for p in titled(ls_client, title)] == [a.id]


def run_in_terminal(cmd, env, answer: str, prompt: str, timeout: float = 300):
    """Run ``cmd`` with a pseudo-terminal as stdin, stdout and stderr; type ``answer`` and Enter
    once ``prompt`` shows. Returns (exit code, everything the terminal showed)."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    shown, answered, deadline = b"", False, time.time() + timeout
    try:
        while time.time() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process is gone and the terminal closed
                break
            if not chunk:
                break
            shown += chunk
            if not answered and prompt.encode() in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, shown.decode(errors="replace")


def test_cli_takes_the_key_from_a_file_or_a_prompt(scan_dir, ls_server, ls_client, tmp_path):
    out, _ = scan_dir
    title = "key from a file"
    key_file = tmp_path / "ls.key"
    key_file.write_text(ls_server.api_key + "\n")
    push = cli(*push_args(ls_server, out, title, "--checks", "dark", "--api-key-file", key_file),
               env=key_env())
    assert push.returncode == 0, push.stderr
    assert "warning" not in push.stderr and ls_server.api_key not in push.stdout + push.stderr
    (proj,) = titled(ls_client, title)
    assert {t.data["queue"] for t in project_tasks(ls_client, proj.id)} == {"dark"}
    pull = ["pull", "label-studio", tmp_path / "work", "--url", ls_server.url, "--project", title]
    (tmp_path / "work").mkdir()
    # no key anywhere and no terminal to ask in: a clear error
    nokey = cli(*pull, env=key_env())
    assert nokey.returncode == 2
    assert "LABEL_STUDIO_API_KEY" in nokey.stderr and "--api-key-file" in nokey.stderr
    # in a terminal, it asks; what is typed is not echoed
    code, shown = run_in_terminal([sys.executable, "-m", "vislint", *map(str, pull)], key_env(),
                                  answer=ls_server.api_key, prompt="API key")
    assert code == 0, shown
    assert "0 decisions from 0 reviewed tasks" in shown and ls_server.api_key not in shown


def test_cli_api_key_argument_warns_that_ps_shows_it(ls_server, ls_client, tmp_path):
    import vislint.integrations.label_studio as vls

    title = "key as an argument"
    ls_client.projects.create(title=title, label_config=vls.LABEL_CONFIG)
    pull = cli("pull", "label-studio", tmp_path, "--url", ls_server.url, "--project", title,
               "--api-key", ls_server.api_key, env=key_env())
    assert pull.returncode == 0, pull.stderr  # still works
    assert "--api-key is visible to other users of this machine in `ps`" in pull.stderr
    assert "LABEL_STUDIO_API_KEY" in pull.stderr and "--api-key-file" in pull.stderr
    assert ls_server.api_key not in pull.stderr


def test_a_password_in_the_url_is_never_shown(ls_server, ls_client, tmp_path):
    import vislint.integrations.label_studio as vls

    secret = "s3cret-pw"
    host = ls_server.url.split("://", 1)[1]
    title = "password in the url"
    ls_client.projects.create(title=title, label_config=vls.LABEL_CONFIG)
    # the real server refuses (the password goes as basic auth, in place of the token)
    pull = cli("pull", "label-studio", tmp_path, "--url", f"http://reviewer:{secret}@{host}",
               "--project", title, env=key_env(ls_server))
    assert pull.returncode == 2, pull.stderr
    assert f"http://reviewer:***@{host}" in pull.stderr and secret not in pull.stdout + pull.stderr
    with pytest.raises(vls.LabelStudioError) as e:  # nothing listens there
        vls.pull(url=f"http://reviewer:{secret}@127.0.0.1:9", api_key="x", project="p", retries=0)
    assert "cannot reach" in str(e.value) and "reviewer:***@127.0.0.1:9" in str(e.value)
    assert secret not in str(e.value)
    with pytest.raises(ValueError) as e:
        vls.pull(url=f"ftp://reviewer:{secret}@example.org", api_key="x", project="p")
    assert secret not in str(e.value)
    assert vls.redact_url(f"https://{secret}@example.org/a@b?c#d") == "https://***@example.org/a@b?c#d"


def pets(tmp_path, labels=("cats", "dogs")):
    """A folder with one image named 0001.jpg in each of ``labels``: (root, relative paths)."""
    import numpy as np

    from conftest import smooth_image

    root = tmp_path / "pets"
    rng = np.random.default_rng(19)
    rels = [f"{label}/0001.jpg" for label in labels]
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        smooth_image(rng).save(root / rel)
    return root, rels


def decision(image, verdict, new_label=""):
    return {"check": "label_conflict" if verdict == "relabel" else "dark", "verdict": verdict,
            "image": image, "partner": "", "new_label": new_label, "reviewer": "r",
            "time": "2026-11-22T00:00:00", "source": ""}


def test_apply_changes_only_the_file_decided_on(fo_db, tmp_path):
    import fiftyone as fo

    import vislint.integrations.label_studio as vls

    root, rels = pets(tmp_path)
    ds = fo.Dataset("ls-apply-exact", overwrite=True)
    ds.add_samples([fo.Sample(filepath=str(root / r)) for r in rels], progress=False)

    def sample(rel):
        return ds.one(fo.ViewField("filepath") == str(root / rel))

    relabel = pd.DataFrame([decision("cats/0001.jpg", "relabel", "lion")])
    with pytest.raises(ValueError, match="root="):  # relative, and the scanned folder unknown
        vls.apply(relabel, dataset=ds)
    assert vls.apply(relabel, dataset=ds, root=root) == {"tagged": 1, "relabelled": 1}
    cat, dog = sample("cats/0001.jpg"), sample("dogs/0001.jpg")
    assert cat.tags == ["vislint:review:relabel"] and cat.vislint_label.label == "lion"
    assert dog.tags == [] and dog.vislint_label is None
    # decisions as a work dir (or its decisions.csv): the scanned folder is in its manifest
    out = tmp_path / "scan"
    vislint.scan(root, out=out)
    vls.save_decisions(pd.DataFrame([decision("dogs/0001.jpg", "keep")]), out)
    assert vls.apply(out, dataset=ds) == {"tagged": 1, "relabelled": 0}
    assert vls.apply(out / "decisions.csv", dataset=ds, key="again")["tagged"] == 1
    assert sample("dogs/0001.jpg").tags == ["vislint:review:keep", "again:review:keep"]
    assert sample("cats/0001.jpg").tags == ["vislint:review:relabel"]
    # an absolute path matches as it is, with no root
    absolute = pd.DataFrame([decision(str(root / "dogs/0001.jpg"), "relabel", "wolf")])
    assert vls.apply(absolute, dataset=ds) == {"tagged": 1, "relabelled": 1}
    assert sample("dogs/0001.jpg").vislint_label.label == "wolf"
    assert sample("cats/0001.jpg").vislint_label.label == "lion"
    ds.delete()


def test_apply_never_writes_a_label_field_it_did_not_create(fo_db, tmp_path):
    import fiftyone as fo

    import vislint.integrations.label_studio as vls

    root, rels = pets(tmp_path)
    ds = fo.Dataset("ls-apply-foreign-field", overwrite=True)
    ds.add_samples([fo.Sample(filepath=str(root / r), vislint_label=fo.Classification(label="mine"))
                    for r in rels], progress=False)
    relabel = pd.DataFrame([decision("cats/0001.jpg", "relabel", "lion")])
    with pytest.raises(ValueError, match="did not create"):
        vls.apply(relabel, dataset=ds, root=root)
    assert ds.values("vislint_label.label") == ["mine", "mine"]
    assert ds.count_sample_tags() == {}  # refused before any change
    ds.delete()


def test_a_label_conflict_from_predictions_shows_the_predicted_class_and_preselects_nothing(
        demo, ls_server, ls_client):
    """Issue 17: the task of a label the model contradicts says what the model predicts, with
    its probability; no relabel is pre-selected (a prediction is not evidence enough)."""
    import vislint.integrations.label_studio as vls

    info, _, base = demo
    df = base.images
    names = sorted(set(df.label.dropna()))
    row = int(df.index[df.label.notna() & ~df.is_label_conflict & ~df.is_invalid][0])
    other = next(n for n in names if n != df.label[row])
    probs = np.array([[0.96 if n == lab else 0.04 / (len(names) - 1) for n in names]
                      if isinstance(lab, str) else [1 / len(names)] * len(names) for lab in df.label])
    probs[row] = [0.9 if n == other else 0.1 / (len(names) - 1) for n in names]
    frame = pd.DataFrame(probs, columns=names).assign(path=df.path)
    res = vislint.scan(info.root, predictions=frame)
    assert res.images.is_label_conflict[row] and res.images.label_sources[row] == "prediction"
    proj = vls.push(res, **connect(ls_server), project="predicted", checks=["label_conflict"],
                    document_root=ls_server.document_root)
    task = next(t for t in project_tasks(ls_client, proj.id) if t.data["paths"] == [df.relpath[row]])
    assert f"the model predicts {other} (probability 0.90)" in task.data["evidence"]
    full = ls_client.tasks.get(str(task.id))
    assert full.predictions and not full.predictions[0].result  # nothing pre-selected

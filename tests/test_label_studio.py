"""vislint.integrations.label_studio against a real Label Studio server (ls_server fixture:
its own venv, started on 127.0.0.1, stopped by PID)."""
from __future__ import annotations

import threading
import time
import urllib.request

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
    titles = {v.data["title"]: v for v in ls_client.views.list(project=proj.id)}
    assert set(vls.QUEUES) <= set(titles)
    for queue in vls.QUEUES:
        tasks = vls.queue_tasks(**connect(ls_server), project="demo review", queue=queue)
        assert len(tasks) == counts.get(queue, 0), queue
        scores = [t.data["score"] for t in tasks]
        assert scores == sorted(scores, reverse=True), queue  # worst first
        assert all(t.data["queue"] == queue and t.data["status"] == "open" for t in tasks)
    # a duplicates task: every member image, the kept one first; predictions with score etc.
    dups = vls.queue_tasks(**connect(ls_server), project="demo review", queue="duplicates")
    t = ls_client.tasks.get(str(dups[0].id))
    assert len(t.data["paths"]) >= 2 and t.data["gallery"].count("<img") == len(t.data["paths"])
    pred = t.predictions[0]
    assert pred.model_version == vls.MODEL_VERSION and pred.score == t.data["score"]
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
    # a re-push closes the tasks whose finding is gone, and adds none
    rescanned = vislint.load(out)
    n = len(project_tasks(ls_client, proj.id))
    vls.push(rescanned, **connect(ls_server), project="decisions", document_root=ls_server.document_root)
    tasks = {t.id: t for t in project_tasks(ls_client, proj.id)}
    assert len(tasks) == n
    assert tasks[dup_task.id].data["status"] == "closed" and tasks[dark_task.id].data["status"] == "closed"
    open_dark = vls.queue_tasks(**connect(ls_server), project="decisions", queue="dark")
    assert dark_task.id not in {t.id for t in open_dark}


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
    assert engine["duplicates"] > 40 and engine["leaks"] > 10 and engine["label conflicts"] > 5
    for queue in vls.QUEUES:
        n = len(vls.queue_tasks(**connect(ls_server), project=proj.id, queue=queue))
        assert n == counts.get(queue, 0) == engine[queue], queue
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
    counts = vls.apply(decisions, dataset=ds)
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

"""Proof that the Label Studio test services work end to end, through label-studio-sdk 2.x:
project, local-files storage, tasks with predictions, Data Manager views, image serving,
annotations, a restart on the same data dir and port, and a task page in chromium."""
from __future__ import annotations

import os
import time
import urllib.request

import pytest
from PIL import Image

from ls_fixtures import ls_client, ls_server  # noqa: F401  (fixtures)
from ls_services import API_KEY, EMAIL, PASSWORD, open_in_browser, start_label_studio

LABEL_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="decision" toName="image" choice="single">
    <Choice value="keep"/><Choice value="drop"/>
  </Choices>
</View>"""
MODEL_VERSION = "vislint-test-1"
# (file, issue, rank, score, size): the view keeps "duplicate" and orders by rank, descending.
TASKS = [("a.jpg", "duplicate", 1, 0.9, (64, 48)),
         ("b.jpg", "blur", 3, 0.6, (80, 60)),
         ("c.jpg", "duplicate", 2, 0.7, (96, 72))]


def choice(value: str) -> dict:
    return {"from_name": "decision", "to_name": "image", "type": "choices",
            "value": {"choices": [value]}}


@pytest.fixture(scope="module")
def review(ls_server, ls_client):
    """A project over 3 images in ``<document_root>/review``, with inline predictions and a
    "duplicates" view: ``dict(project, storage, task_ids (in TASKS order), view, urls)``."""
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    folder = ls_server.document_root / "review"
    folder.mkdir()
    for i, (name, _, _, _, size) in enumerate(TASKS):
        Image.new("RGB", size, (40 + 70 * i, 120, 200 - 60 * i)).save(folder / name, quality=95)
    project = ls_client.projects.create(title="vislint review", label_config=LABEL_CONFIG)
    # The storage path must be *below* the document root (the root itself is refused); not synced.
    storage = ls_client.import_storage.local.create(project=project.id, path=str(folder),
                                                    title="vislint files")
    urls = [f"/data/local-files/?d={(folder / name).relative_to(ls_server.document_root)}"
            for name, *_ in TASKS]
    tasks = [{"data": {"image": url, "issue": issue, "rank": rank, "name": name},
              "predictions": [{"model_version": MODEL_VERSION, "score": score,
                               "result": [choice("drop")]}]}
             for url, (name, issue, rank, score, _) in zip(urls, TASKS)]
    imported = ls_client.projects.import_tasks(project.id, request=tasks, return_task_ids=True)
    ls_client.projects.update(project.id, model_version=MODEL_VERSION)
    view = ls_client.views.create(project=project.id, data={
        "title": "vislint: duplicates",
        "filters": Filters.create(Filters.AND, [Filters.item(
            Column.data("issue"), Operator.EQUAL, Type.String, Filters.value("duplicate"))]),
        "ordering": ["-" + Column.data("rank")],  # ordering takes no "filter:" prefix
    })
    return dict(project=project, storage=storage, task_ids=list(imported.task_ids), view=view,
                urls=urls, imported=imported)


def test_preset_user_and_token(ls_server, ls_client):
    me = ls_client.users.whoami()
    assert me.email == EMAIL and ls_server.api_key == API_KEY
    assert ls_server.url == f"http://127.0.0.1:{ls_server.port}"
    assert ls_server.data_dir.is_dir() and ls_server.log.is_file()


def test_import_with_predictions(ls_client, review):
    assert review["imported"].task_count == 3 and review["imported"].prediction_count == 3
    assert review["storage"].type == "localfiles" and review["storage"].last_sync is None
    assert ls_client.projects.get(review["project"].id).model_version == MODEL_VERSION
    task = ls_client.tasks.get(str(review["task_ids"][0]))
    assert task.data["issue"] == "duplicate"
    (pred,) = task.predictions
    assert pred.model_version == MODEL_VERSION and pred.score == pytest.approx(0.9)


def test_view_filters_and_orders(ls_client, review):
    ids = review["task_ids"]
    listed = list(ls_client.tasks.list(project=review["project"].id, view=review["view"].id,
                                       fields="all"))
    # duplicates only (a, c), by rank descending: c (2) then a (1)
    assert [t.id for t in listed] == [ids[2], ids[0]]
    assert [t.data["name"] for t in listed] == ["c.jpg", "a.jpg"]
    assert [t.predictions[0].score for t in listed] == pytest.approx([0.7, 0.9])
    views = ls_client.views.list(project=review["project"].id)
    assert "vislint: duplicates" in [v.data["title"] for v in views]


def test_view_on_prediction_score(ls_client, review):
    """Works because the project's model_version was set to the predictions' version."""
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    view = ls_client.views.create(project=review["project"].id, data={
        "title": "confident",
        "filters": Filters.create(Filters.AND, [Filters.item(
            Column.predictions_score, Operator.GREATER_OR_EQUAL, Type.Number,
            Filters.value(0.7))]),
        "ordering": [Column.predictions_score]})
    listed = list(ls_client.tasks.list(project=review["project"].id, view=view.id))
    assert [t.id for t in listed] == [review["task_ids"][2], review["task_ids"][0]]


def test_image_served_with_api_key(ls_server, review):
    req = urllib.request.Request(ls_server.url + review["urls"][1],
                                 headers={"Authorization": f"Token {ls_server.api_key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        body = r.read()
    assert body[:3] == b"\xff\xd8\xff"  # JPEG
    assert body == (ls_server.document_root / "review" / "b.jpg").read_bytes()


def test_annotation_like_a_reviewer(ls_client, review):
    tid = review["task_ids"][0]
    me = ls_client.users.whoami()
    ann = ls_client.annotations.create(id=tid, result=[choice("keep")], lead_time=2.5)
    assert ann.completed_by == me.id
    listed = ls_client.annotations.list(id=tid)
    assert [(a.id, a.result[0]["value"]["choices"]) for a in listed] == [(ann.id, ["keep"])]
    task = ls_client.tasks.get(str(tid))
    assert [a["id"] for a in task.annotations] == [ann.id]
    # the task's counters are updated after the annotation is saved (once, in CI, the task
    # was read with its annotation but a count of 0): wait for them a little
    deadline = time.monotonic() + 10
    while task.total_annotations != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        task = ls_client.tasks.get(str(tid))
    assert task.total_annotations == 1


def test_restart_keeps_data(ls_server, ls_client, review):
    tid = review["task_ids"][2]
    ls_client.annotations.create(id=tid, result=[choice("drop")])
    port, data_dir, old_pid = ls_server.port, ls_server.data_dir, ls_server.pid
    t0 = time.monotonic()
    ls_server.stop()
    stop_seconds = time.monotonic() - t0
    try:
        assert ls_server.last_exit == -15  # SIGTERM was enough
        assert not ls_server.running and ls_server.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)
    finally:
        t0 = time.monotonic()
        ls_server.start()  # same data dir and port
    print(f"stop: {stop_seconds:.1f} s; restart: ready in {ls_server.ready_seconds:.1f} s "
          f"({time.monotonic() - t0:.1f} s)")
    assert (ls_server.port, ls_server.data_dir) == (port, data_dir) and ls_server.pid != old_pid
    listed = list(ls_client.tasks.list(project=review["project"].id, view=review["view"].id))
    assert [t.id for t in listed] == [review["task_ids"][2], review["task_ids"][0]]
    assert [a.result[0]["value"]["choices"] for a in ls_client.annotations.list(id=tid)] == [
        ["drop"]]


def test_second_server_from_template(ls_server, tmp_path):
    """A busy port is refused (not silently replaced); a fresh copy of the template is ready in
    seconds with the preset user and token."""
    with pytest.raises(RuntimeError, match="busy"):
        start_label_studio(tmp_path / "busy", tmp_path / "files", port=ls_server.port,
                           port_wait=1)
    from label_studio_sdk import LabelStudio

    with start_label_studio(tmp_path / "ls", tmp_path / "files") as other:
        print(f"template copy: ready in {other.ready_seconds:.1f} s")
        assert other.port != ls_server.port and other.data_dir == tmp_path / "ls" / "data"
        client = LabelStudio(base_url=other.url, api_key=other.api_key)
        assert client.users.whoami().email == EMAIL
        assert list(client.projects.list()) == []  # the template holds no project
        pid = other.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_task_page_in_browser(ls_server, ls_client, review, artifacts):
    tid = review["task_ids"][1]  # b.jpg, 80x60
    url = f"{ls_server.url}/projects/{review['project'].id}/data?task={tid}"
    page = open_in_browser(url, artifacts / "ls-task-page.png", login=(EMAIL, PASSWORD),
                           image_selector=".lsf-image img")
    print(f"task page: {page['seconds']:.1f} s, {page['images_loaded']}/{page['images']} images")
    assert page["screenshot"].stat().st_size > 10_000
    # the labeling editor shows this task's image, decoded at its real size
    assert [(i["width"], i["height"]) for i in page["selected_loaded"]] == [(80, 60)]
    assert page["images_loaded"] >= 2  # + the Data Manager thumbnail(s)
    assert "keep" in page["text"] and "drop" in page["text"]
    assert MODEL_VERSION in page["text"]  # the prediction's tab
    # the editor pre-fills a draft from the prediction, but looking saves no annotation
    assert ls_client.annotations.list(id=tid) == []

"""Review vislint's findings in Label Studio and feed the verdicts into the next scan:
push -> review -> pull -> rescan.

Run:
    pip install 'vislint[labelstudio]'
    # Label Studio serves the images from a folder above them:
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=$PWD \
        label-studio start
    export LABEL_STUDIO_API_KEY=...        # Account & Settings -> Access Token
    python examples/label_studio_loop.py --url http://localhost:8080 --document-root $PWD

With no folder, the demo data set is built in DOCUMENT_ROOT/vislint-demo. After the push the
script waits while you review the queues in the browser (press Enter when done);
--review-as-script answers two tasks itself, as a reviewer would in the browser (CI runs that).
"""
import argparse
import os
from pathlib import Path

import vislint
import vislint.integrations.label_studio as vls
from vislint.demo import MARKER, build_demo

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", nargs="?", type=Path, help="images (default: the demo)")
parser.add_argument("--url", required=True, help="the Label Studio server")
parser.add_argument("--document-root", type=Path, required=True,
                    help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (above the images)")
parser.add_argument("--project", default="vislint review", help="project title (made if new)")
parser.add_argument("--out", type=Path, default=Path("vislint-ls-out"), help="work dir")
parser.add_argument("--review-as-script", action="store_true",
                    help="answer two tasks here instead of waiting for a reviewer")
args = parser.parse_args()
api_key = os.environ.get("LABEL_STUDIO_API_KEY")  # from the environment: never on a command line
if not api_key:
    parser.error("set LABEL_STUDIO_API_KEY to the server's access token")
server = dict(url=args.url, api_key=api_key, project=args.project)

folder = args.folder or args.document_root / "vislint-demo"
if args.folder is None and not (folder / MARKER).exists():
    build_demo(folder)

# 1. Scan, and push one review queue per check (duplicates, leaks, label conflicts, outliers,
#    quality flags), worst first. Pushing again later updates the same tasks.
res = vislint.scan(folder, out=args.out)
project = vls.push(res, **server, document_root=args.document_root)
print(f"pushed to {args.url}/projects/{project.id}")

# 2. Review: each task shows the images with the evidence and the verdicts that fit the queue.
if args.review_as_script:
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=args.url, api_key=api_key)
    for queue, verdict in (("duplicates", "not duplicates"), ("dark", "keep")):
        task = vls.queue_tasks(**server, queue=queue)[0]
        client.annotations.create(id=task.id, result=[{
            "from_name": "verdict", "to_name": "gallery", "type": "choices",
            "value": {"choices": [verdict]}}])
        print(f"reviewed {queue}: {task.data['paths']} -> {verdict}")
else:
    input("Review some tasks in the browser, then press Enter here... ")

# 3. Pull the latest verdict of every reviewed task, and keep them in the work dir.
decisions = vls.pull(**server)
print(decisions[["check", "verdict", "image", "partner", "reviewer"]].to_string(index=False))
print("saved to", vls.save_decisions(decisions, args.out))

# 4. Scan again: the work dir's decisions.csv is honoured (a pair called "not duplicates"
#    leaves the graph, "keep" clears the flag), and only new or changed files are decoded.
again = vislint.scan(folder, out=args.out)
df = again.to_dataframe()
print(df.loc[df.reviewed.fillna("") != "", ["relpath", "reviewed"]].to_string(index=False))

# 5. Push again: tasks whose finding is gone are closed; nothing is duplicated.
vls.push(again, **server, document_root=args.document_root)

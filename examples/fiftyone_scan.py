"""Scan a FiftyOne dataset: findings as fields, tags and saved views; duplicates resolved.

Run:
    pip install 'vislint[fiftyone]'
    python examples/fiftyone_scan.py                      # the demo, as dataset "vislint-demo"
    python examples/fiftyone_scan.py --dataset my-dataset --label-field ground_truth
    python examples/fiftyone_scan.py --app                # and open the duplicates in the App

FiftyOne's default database is used (set FIFTYONE_DATABASE_URI to use another). With no
--dataset, the demo data set is built in ./vislint-demo and loaded as a persistent dataset with
labels (class folders) in "ground_truth" and splits (top folders) as sample tags.
"""
import argparse
from pathlib import Path

import fiftyone as fo
from fiftyone import ViewField as F

import vislint.integrations.fiftyone as vfo
from vislint.demo import MARKER, build_demo

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", help="an existing dataset (default: the demo as 'vislint-demo')")
parser.add_argument("--label-field", default="ground_truth", help="labels (default ground_truth)")
parser.add_argument("--key", default="vislint", help="run key: names the field, tags and views")
parser.add_argument("--app", action="store_true", help="open the duplicates view in the App")
args = parser.parse_args()

if args.dataset:
    ds = fo.load_dataset(args.dataset)
else:
    root = Path("vislint-demo").resolve()
    if not (root / MARKER).exists():
        build_demo(root)
    ds = fo.Dataset("vislint-demo", overwrite=True, persistent=True)
    for split in ("train", "valid"):  # class sub-folders -> Classification labels
        ds.add_dir(str(root / f"{split}_set"), fo.types.ImageClassificationDirectoryTree,
                   label_field=args.label_field, tags=split)
    ds.add_images_dir(str(root / "test_set"), tags="test")  # unlabelled

# Reads the images once, then writes: a field `key` on every sample (scores, flags, groups,
# evidence), tags `key:<check>` on flagged samples, one saved view per check, and a run.
run = vfo.scan(ds, label_field=args.label_field, split_field="tags", key=args.key)
print(run.summary()[["check", "images", "groups", "threshold"]].to_string(index=False))
print("\nsaved views:", ", ".join(run.views))

# Filter and sort on the field like on any other: the blurriest first.
blurry = ds.match(F(f"{args.key}.is_blurry")).sort_by(f"{args.key}.blurry_score", reverse=True)
print(f"\n{len(blurry)} blurry samples, worst:", blurry.first().filepath if len(blurry) else None)

# The duplicates view shows each group together, the copy the keep policy keeps first.
dups = ds.load_saved_view(f"{args.key}: duplicates")
print(f"{len(dups)} samples in duplicate groups; tags:", ds.count_sample_tags())

# Act on duplicates: tag the copies (keep the representative); "delete" is a dry run until
# dry_run=False.
tagged = vfo.resolve_duplicates(ds, key=args.key, action="tag")
print(f"tagged {len(tagged['keep'])} to keep, {len(tagged['remove'])} to remove")
dry = vfo.resolve_duplicates(ds, key=args.key, action="delete")
print(f"a delete would remove {len(dry['remove'])} samples (dry run: nothing deleted)")

# The run is stored with the dataset: list it, load it in another session, delete it (which
# removes exactly the field, tags and views it wrote).
print("runs:", vfo.list_runs(ds), "| leaks by split:", vfo.load_run(ds, args.key).leak_table)

if args.app:
    session = fo.launch_app(dups)
    session.wait()

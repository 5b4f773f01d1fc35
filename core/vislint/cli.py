"""The ``vislint`` command line.

Exit codes: 0 the command completed (a scan that found invalid files still
completes: they are findings, not errors); 1 an unexpected internal error;
2 bad input or usage (a path that does not exist, a malformed CSV, an unknown
option) or a work dir that cannot be used (read-only, full, in use by another scan), with a
message that says how to fix it; 130 interrupted (Ctrl-C) — re-run the same command to
resume from the cached work.

Everything printed for a person passes through :func:`terminal_safe`: file and folder names
(and labels, which come from folder names) can hold terminal control sequences.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import time
from dataclasses import fields
from pathlib import Path

from ._version import __version__
from .tuning import before_numpy

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

def check_help() -> str:
    """The checks, what each finds and when it flags (from :mod:`vislint.vocabulary`)."""
    import textwrap

    from .vocabulary import checks

    lines = ["checks (score in [0, 1], higher = worse; flag at the default threshold):"]
    for c in checks():
        text = f"{c.what} (flag: {c.rule_text()})"
        wrapped = textwrap.wrap(text, 70 - 19) or [""]
        lines.append(f"  {c.name:<17}{wrapped[0]}")
        lines += [" " * 19 + w for w in wrapped[1:]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = _parser(with_integrations=not _names_builtin_command(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `vislint show DIR | head`: the reader left early
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except KeyboardInterrupt:
        print("\ninterrupted: work done so far is cached; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileNotFoundError, NotADirectoryError, ValueError, FileExistsError) as e:
        print(terminal_safe(f"vislint: error: {e}"), file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        if e.errno not in _DISK_ERRORS:
            raise
        print(terminal_safe(f"vislint: error: cannot write {e.filename or 'the results'}: "
                            f"{e.strerror}. Free some space (or choose another --out) and run "
                            "the same command again: the work already done is cached."),
              file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:
        from .workdir import WorkDirError

        if not isinstance(e, WorkDirError):
            raise
        print(terminal_safe(f"vislint: error: {e}"), file=sys.stderr)
        return EXIT_USAGE


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
"""Write errors the user fixes (full disk, quota, file size limit, read-only file system)."""

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (but tab and newline) and bidirectional overrides."""


def terminal_safe(text: str) -> str:
    """``text`` with control characters and bidirectional overrides shown as ``\\xNN`` /
    ``\\uNNNN`` escapes, so names from the data cannot move the cursor, recolour or hide
    the terminal's text."""
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)


def run() -> None:
    """The ``vislint`` command and ``python -m vislint``: :func:`main`, then end the process.

    Once a scan has loaded pandas and faiss, tearing the interpreter down (freeing every
    module and object) takes ~0.15 s; everything has been written and closed by then, so
    after flushing stdout and stderr the process exits at once with main's exit code
    (``atexit`` handlers do not run). An exception escaping main exits the usual way.
    """
    before_numpy()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left, or the stream is closed
            pass
    os._exit(code)


BUILTIN_COMMANDS = ("scan", "query", "show", "report", "demo", "models")
"""The engine's own subcommands; the integrations add theirs through entry points."""


def _names_builtin_command(argv: list[str]) -> bool:
    """Whether the first word of ``argv`` that is not an option names a built-in command."""
    return next((a for a in argv if not a.startswith("-")), None) in BUILTIN_COMMANDS


def _parser(with_integrations: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``with_integrations`` adds the integrations' subcommands (their
    entry points take ~0.03 s to find, so a built-in command skips them)."""
    p = argparse.ArgumentParser(
        prog="vislint", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find what is wrong in an image data set: broken files, exact and near "
                    "duplicates, train/valid/test leaks, label conflicts, outliers, and "
                    "blurry/dark/bright/low-information images. Offline; no telemetry.",
        epilog=check_help() + "\nexamples:\n  vislint demo\n"
               "  vislint scan ./data --out ./vislint-out\n  vislint show ./vislint-out\n"
               "  vislint report ./vislint-out --open\n")
    p.add_argument("--version", action="version", version=f"vislint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    # integration commands (e.g. `vislint fiftyone ...`) come from the vislint.commands entry
    # points, so this module never imports an integration
    if with_integrations:
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group="vislint.commands"), key=lambda e: e.name):
            ep.load()(sub)

    s = sub.add_parser(
        "scan", help="scan a folder, list or CSV of images",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Scan images and report every problem found. A folder in the layout "
                    "train_set/<class>/x.jpg, valid_set/<class>/x.jpg, test_set/x.jpg gives labels "
                    "(class folders) and splits (top folders) with no options.",
        epilog=check_help())
    s.add_argument("source", help="a folder, or a CSV file with columns path[,label][,split]")
    s.add_argument("--out", "-o", type=Path, default=None,
                   help="work dir: results are saved here and features cached as the scan goes "
                        "(an interrupted scan resumes; a re-scan only decodes new files)")
    s.add_argument("--threads", type=int, default=0,
                   help="decode worker processes and faiss threads (default: all cores)")
    s.add_argument("--k", type=int, default=None, help="neighbours per image in the kNN graph (default 10)")
    s.add_argument("--index", choices=("auto", "exact", "ivf"), default="auto",
                   help="kNN index: exact up to 20,000 images, IVF beyond (default auto)")
    s.add_argument("--embeddings", default=None, metavar="SPEC",
                   help="a model for what images show, used by the label vote and outliers "
                        "(copies are always judged by the built-in descriptor): "
                        "onnx:PATH/model.onnx (any ONNX image model; preprocessing from "
                        "PATH/model.onnx.json when present), or a registry model name "
                        "(downloaded once and verified; see `vislint models`); default none")
    s.add_argument("--predictions", default=None, metavar="FILE",
                   help="a model's class probabilities per image (ideally cross-validated), "
                        "for label conflicts: .csv or .parquet with a column per class and a "
                        "'path' column (relative to the folder, or absolute), or .npy rows in "
                        "the scan's image order with the sorted labels as columns; default none")
    s.add_argument("--features", default=None, metavar="SPEC",
                   help="deprecated: the old name of --embeddings")
    s.add_argument("--offline", action="store_true",
                   help="never download a registry model (also VISLINT_OFFLINE=1)")
    s.add_argument("--no-labels", action="store_true", help="ignore class folders as labels")
    s.add_argument("--no-splits", action="store_true", help="ignore train/valid/test folders")
    s.add_argument("--reference", type=Path, default=None, metavar="DIR",
                   help="the work dir of another saved scan (set B): also flag the images that "
                        "are exact or verified copies of its images (the in_reference check; "
                        "B's own findings are not looked for)")
    s.add_argument("--add", action="store_true",
                   help="add these images to the scan saved in --out instead of scanning them "
                        "alone: only they are decoded and checked, against everything saved "
                        "(duplicates, leaks and label conflicts of groups formed again where "
                        "they reach); the saved scan's thresholds and settings apply")
    s.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                   help="memory the scan may need at its peak, in GiB (default: 90%% of the memory "
                        "available); a scan estimated to need more, or more disk than the work "
                        "dir has, stops before it starts and says why")
    s.add_argument("--batch-size", type=int, default=512,
                   help="images per batch; each batch is cached as it completes (default 512)")
    s.add_argument("--decisions", default="auto", metavar="CSV",
                   help="reviewer decisions to honour (default: OUT/decisions.csv when it exists, "
                        "as written by `vislint pull label-studio`; 'none' ignores them)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    s.add_argument("--no-report", action="store_true",
                   help="do not write OUT/report.html (the HTML report; see `vislint report`)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    th = s.add_argument_group("thresholds (defaults chosen by measurement; see docs/defaults.md)")
    from .thresholds import Thresholds

    for f in fields(Thresholds):
        th.add_argument(f"--{f.name.replace('_', '-')}", dest=f"t_{f.name}", type=float,
                        default=None, metavar="X",
                        help=f"{f.metadata['help']} (default {'off' if f.default is None else f.default})")
    s.set_defaults(run=_cmd_scan)

    qp = sub.add_parser(
        "query", help="which of these images already exist in a saved scan?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check new images against a saved scan (the index: a work dir written by "
                    "`vislint scan DATA --out W`) without changing it: each image is an exact "
                    "copy of indexed images (same bytes or pixels), a copy (the same photograph, "
                    "edited: verified, with its probability), another shot of the same scene, or "
                    "new. The index's thresholds apply.",
        epilog="examples:\n  vislint query ./incoming --index ./vislint-out\n"
               "  vislint query new.csv --index ./vislint-out --csv matches.csv\n")
    qp.add_argument("images", help="a folder, or a CSV file with a path column")
    qp.add_argument("--index", "-i", type=Path, required=True,
                    help="the work dir of a saved scan (its --out folder)")
    qp.add_argument("--csv", type=Path, default=None, metavar="FILE",
                    help="write every match (query image, indexed image, kind, score, evidence) "
                         "as CSV")
    qp.add_argument("--threads", type=int, default=0,
                    help="decode worker processes and faiss threads (default: all cores)")
    qp.add_argument("--json", action="store_true",
                    help="print the counts and every match as JSON on stdout")
    qp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    qp.set_defaults(run=_cmd_query)

    sh = sub.add_parser("show", help="print the summary of a saved scan again")
    sh.add_argument("workdir", type=Path, help="the --out folder of a scan")
    sh.add_argument("--json", action="store_true", help="print the summary as JSON")
    sh.set_defaults(run=_cmd_show)

    r = sub.add_parser("report", help="write the HTML report of a saved scan",
                       description="Write a self-contained HTML report of a saved scan: an "
                                   "overview with plots and a gallery per check, with thumbnails "
                                   "in a folder beside it. Works offline, from file://.")
    r.add_argument("workdir", type=Path, help="the --out folder of a scan")
    r.add_argument("--out", "-o", type=Path, default=None,
                   help="the HTML file to write (default WORKDIR/report.html)")
    r.add_argument("--max-per-section", type=int, default=200, metavar="N",
                   help="most findings listed per gallery, the most severe first; 0 lists all "
                        "(default 200)")
    r.add_argument("--open", action="store_true", help="open the report in the web browser")
    r.set_defaults(run=_cmd_report)

    from .models import add_command as add_models_command

    add_models_command(sub)

    d = sub.add_parser("demo", help="build a small demo data set with planted problems and scan it")
    d.add_argument("--data", type=Path, default=Path("vislint-demo"),
                   help="where to build the demo images (default ./vislint-demo)")
    d.add_argument("--out", "-o", type=Path, default=Path("vislint-demo-out"),
                   help="work dir for the scan (default ./vislint-demo-out)")
    d.add_argument("--json", action="store_true", help="print the summary as JSON")
    d.set_defaults(run=_cmd_demo)
    return p


def _cmd_scan(args) -> int:
    from .pipeline import scan

    changes = {k[2:]: v for k, v in vars(args).items() if k.startswith("t_") and v is not None}
    kwargs = {"k": args.k} if args.k else {}
    from contextlib import nullcontext

    from .workdir import open_work_dir

    start = time.perf_counter()
    # one lock over the scan and its report, which rewrites the manifest
    with open_work_dir(args.out) if args.out is not None else nullcontext():
        res = scan(args.source, out=args.out, labels=None if args.no_labels else "auto",
                   splits=None if args.no_splits else "auto", threads=args.threads,
                   index=args.index, thresholds=changes or None, batch_size=args.batch_size,
                   embeddings=_embeddings_arg(args), offline=True if args.offline else None,
                   predictions=args.predictions,
                   decisions=None if args.decisions == "none" else args.decisions,
                   progress=not args.quiet and not args.json, memory_limit=args.memory_limit,
                   reference=args.reference, add=args.add, **kwargs)
        _print(res, args.json, args.out, time.perf_counter() - start, added=args.add)
        if args.out is not None and not args.no_report:
            _write_report(res, args.out, args.json)
    return EXIT_OK


def _embeddings_arg(args):
    """--embeddings, or the deprecated --features (with a message saying so)."""
    if args.features is None or args.features == "builtin":
        return args.embeddings
    if args.embeddings is not None:
        raise ValueError("pass --embeddings only (--features is its old, deprecated name)")
    print("vislint: --features is now --embeddings: the model feeds the label vote and "
          "outliers, and no longer changes which images are copies; --features will be "
          "removed in the next release", file=sys.stderr)
    return args.features


def _write_report(res, out: Path, as_json: bool) -> None:
    """OUT/report.html after a scan (the manifest rewritten with the report's time)."""
    from .report import write_report

    path = write_report(res, out / "report.html")
    res.save_manifest(out)
    if not as_json:
        print(terminal_safe(f"report written to {path}"))


def _cmd_report(args) -> int:
    from .report import write_report
    from .results import load

    if args.max_per_section < 0:
        raise ValueError(f"--max-per-section must be >= 0 (0 = all), got {args.max_per_section}")
    path = write_report(load(args.workdir), args.out or args.workdir / "report.html",
                        max_per_section=args.max_per_section or None)
    print(terminal_safe(f"report written to {path}"))
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return EXIT_OK


def _cmd_query(args) -> int:
    from .lookup import query

    start = time.perf_counter()
    res = query(args.images, args.index, threads=args.threads,
                progress=not args.quiet and not args.json)
    seconds = time.perf_counter() - start
    if args.csv is not None:
        res.to_csv(args.csv)
    if args.json:
        print(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(
            {"images": res.images_table.num_rows, "index": str(args.index),
             "index_images": res.info["index_images"], "counts": res.counts(),
             "matches": res.matches_table.to_pylist()}, indent=2, ensure_ascii=False)))
        return EXIT_OK
    print(terminal_safe(query_text(res, seconds)))
    if args.csv is not None:
        print(terminal_safe(f"all matches written to {args.csv}"))
    return EXIT_OK


QUERY_SHOWN = 20
"""Matches the query command prints (all of them go to --csv)."""


def query_text(res, seconds=None) -> str:
    """Human summary of a :class:`vislint.lookup.QueryResults`: images per status, then the
    first matches."""
    counts = res.counts()
    n = res.images_table.num_rows
    head = f"vislint checked {n:,} images against the {res.info['index_images']:,} indexed in {res.index}"
    lines = [head + (f" in {seconds:.1f} s" if seconds else "")]
    for status, title in (("exact", "exact copies of indexed images"),
                          ("copy", "copies (the same photograph, edited)"),
                          ("same_scene", "the same scene, another shot"),
                          ("new", "new"), ("invalid", "invalid files")):
        lines.append(f"  {title:<38}{counts[status]:,}")
    rows = res.matches_table.slice(0, QUERY_SHOWN).to_pylist()
    if rows:
        lines.append("matches (query image → indexed image):")
        for m in rows:
            where = ", ".join(v for v in (m["match_split"], m["match_label"]) if v)
            lines.append(f"  {m['query_relpath']} → {m['match_relpath']}"
                         + (f" ({where})" if where else "") + f": {m['evidence']}")
        more = res.matches_table.num_rows - len(rows)
        if more > 0:
            lines.append(f"  … and {more:,} more (write them all with --csv FILE)")
    return "\n".join(lines)


def _cmd_show(args) -> int:
    from .results import load

    _print(load(args.workdir), args.json, args.workdir, None)
    return EXIT_OK


def _cmd_demo(args) -> int:
    from .demo import build_demo
    from .pipeline import scan

    info = build_demo(args.data, overwrite=True)
    if not args.json:
        print(f"built the demo data set: {info.n_images} images in {info.root} "
              f"(planted problems listed in {info.root / 'ground_truth.csv'})")
    from .workdir import open_work_dir

    start = time.perf_counter()
    with open_work_dir(args.out):
        res = scan(info.root, out=args.out, progress=not args.json)
        _print(res, args.json, args.out, time.perf_counter() - start)
        _write_report(res, args.out, args.json)
    return EXIT_OK


def _print(res, as_json: bool, out, seconds, added: bool = False) -> None:
    if as_json:  # (JSON escapes C0 controls itself; the rest become \\uNNNN escapes)
        print(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                          json.dumps(summary_dict(res), indent=2, ensure_ascii=False)))
    else:
        print(terminal_safe(summary_text(res, out, seconds, added)))


def summary_dict(res) -> dict:
    """The closing summary as plain data: images and groups per check, never graph edges."""
    return {
        "images": len(res),
        "checks": {r["check"]: {k: r[k] for k in ("images", "groups", "threshold")}
                   for r in res.summary_rows()},
        "invalid_by_reason": res.invalid_reasons(),
        "leak_table": res.leak_table,
        "confused_labels": res.info.get("confused_labels", []),
        "timings": res.info.get("timings", {}),
        "decisions": res.info.get("decisions"),
        "added": res.info.get("added", []),
    }


def summary_text(res, out=None, seconds=None, added: bool = False) -> str:
    """Human summary: images (and groups) per check, then the details some checks give,
    and where results were written; ``added``: the scan just took images (``scan --add``),
    which the first line says."""
    from .vocabulary import checks

    d = summary_dict(res)
    n = d["images"]
    head = f"vislint scanned {n:,} images"
    if added and d["added"]:
        last = d["added"][-1]
        head = (f"vislint added {last['images']:,} images to the scan ({last['skipped']:,} "
                f"were in it already): {n:,} images")
        if seconds:
            head += f"; {seconds:.1f} s"
    elif seconds:
        head += f" in {seconds:.1f} s ({n / seconds:,.0f} images/s)"
    lines = [head]
    for c in checks():
        row = d["checks"][c.name]
        text = (f"{row['groups']:,} groups, {row['images']:,} images" if c.unit == "group"
                else f"{row['images']:,}")
        lines.append(f"  {c.title:<24}{text}")
    if d["invalid_by_reason"]:
        lines.append("  invalid files by reason: " + ", ".join(
            f"{k}: {v}" for k, v in sorted(d["invalid_by_reason"].items())))
    if d["leak_table"]:
        lines.append("  leaks by split:")
        for split, others in sorted(d["leak_table"].items()):
            for other, k in sorted(others.items()):
                lines.append(f"    {split} images with a copy in {other}: {k:,}")
    if d["confused_labels"]:
        lines.append("  most confused labels:")
        for pair in d["confused_labels"][:5]:
            lines.append(f"    {' ↔ '.join(pair['labels'])}: {pair['images']} images")
    if d["decisions"]:
        from .decisions import decisions_text

        lines.append("  " + decisions_text(d["decisions"]))
    if out is not None:
        lines.append(f"results written to {out} (manifest.json and the images, groups and pairs "
                     f"tables as Parquet); see them again with: vislint show {out}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    run()

"""``vislint`` subcommands of the integrations, registered through the ``vislint.commands``
entry point group (so the engine's CLI never imports an integration or its tool).

Nothing here imports fiftyone or label_studio_sdk until a command runs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


def add_fiftyone_command(sub) -> None:
    """``vislint fiftyone install-plugin [--dir DIR]``."""
    p = sub.add_parser("fiftyone", help="FiftyOne: install the vislint App plugin",
                       description="FiftyOne integration commands.")
    fsub = p.add_subparsers(dest="fiftyone_command", metavar="SUBCOMMAND", required=True)
    ip = fsub.add_parser(
        "install-plugin", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="copy the plugin shipped with this vislint into FiftyOne's plugins dir",
        description="Copy the vislint FiftyOne plugin (shipped inside the vislint package, so "
                    "plugin and library versions match) into FiftyOne's plugins directory "
                    "(fiftyone's config `plugins_dir`, set with FIFTYONE_PLUGINS_DIR), replacing "
                    "an older copy. Then, in the App, the operator browser offers "
                    "'vislint: scan dataset', 'vislint: show issues', 'vislint: resolve "
                    "duplicates' and 'vislint: delete run'.")
    ip.add_argument("--dir", type=Path, default=None,
                    help="plugins directory to install into (default: FiftyOne's plugins_dir)")
    ip.set_defaults(run=_install_plugin)


def plugin_source() -> Path:
    """The plugin folder shipped inside the vislint package (``vislint/plugin``)."""
    from importlib.util import find_spec

    return Path(find_spec("vislint.plugin").submodule_search_locations[0])


def install_plugin(plugins_dir: str | os.PathLike | None = None) -> Path:
    """Copy the shipped plugin to ``<plugins_dir>/vislint`` (atomically replacing an older
    copy); plugins_dir defaults to FiftyOne's configured ``plugins_dir``. Returns the path."""
    if plugins_dir is None:
        import fiftyone as fo

        plugins_dir = fo.config.plugins_dir
        if not plugins_dir:
            raise ValueError("FiftyOne has no plugins directory configured; set "
                             "FIFTYONE_PLUGINS_DIR or pass --dir")
    root = Path(plugins_dir)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / "vislint"
    tmp = Path(tempfile.mkdtemp(prefix=".vislint-plugin-", dir=root))
    try:
        shutil.copytree(plugin_source(), tmp / "vislint",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        old = None
        if dest.exists():
            old = root / f".vislint-old-{os.getpid()}"
            dest.rename(old)
        (tmp / "vislint").rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _install_plugin(args) -> int:
    dest = install_plugin(args.dir)
    print(f"installed the vislint FiftyOne plugin into {dest}", file=sys.stderr)
    return 0


def add_push_command(sub) -> None:
    """``vislint push label-studio WORKDIR ...``."""
    p = sub.add_parser("push", help="push a saved scan's findings to a review tool",
                       description="Push a saved scan's findings to a review tool.")
    psub = p.add_subparsers(dest="push_target", metavar="TARGET", required=True)
    ls = psub.add_parser(
        "label-studio", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="Label Studio review queues (one task per finding, one view per check)",
        description="Create (or reuse by title) a Label Studio project with one review queue per "
                    "check and one task per finding (duplicate, leak and label-conflict groups "
                    "show their images side by side). Pushing again updates tasks in place, adds "
                    "new findings and closes tasks whose finding is gone; an interrupted push "
                    "resumes. " + _KEY_HELP,
        epilog="example:\n  export LABEL_STUDIO_API_KEY=...   # or --api-key-file ~/.ls-key\n"
               "  vislint push label-studio ./vislint-out --url http://localhost:8080 \\\n"
               "      --project 'scenes review' --checks near_duplicate,leak")
    _ls_args(ls)
    ls.add_argument("--checks", default=None,
                    help="comma-separated checks to push (default: all reviewable: near_duplicate, "
                         "leak, label_conflict, outlier, blurry, dark, bright, low_information, odd_size)")
    ls.add_argument("--images-via", choices=("local-files", "url"), default="local-files",
                    help="how Label Studio shows the images (default local-files)")
    ls.add_argument("--document-root", type=Path, default=None,
                    help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default: that "
                         "environment variable)")
    ls.add_argument("--url-prefix", default=None,
                    help="with --images-via url: prefix of the images' URLs (+ relative path)")
    ls.set_defaults(run=_push_label_studio)


def add_pull_command(sub) -> None:
    """``vislint pull label-studio WORKDIR ...``."""
    p = sub.add_parser("pull", help="pull reviewers' decisions back into a work dir",
                       description="Pull reviewers' decisions back into a work dir.")
    psub = p.add_subparsers(dest="pull_target", metavar="SOURCE", required=True)
    ls = psub.add_parser(
        "label-studio", help="Label Studio annotations → WORKDIR/decisions.csv",
        description="Read the reviewers' verdicts from a project made by `vislint push "
                    "label-studio` and merge them into WORKDIR/decisions.csv, which the next "
                    "`vislint scan ... --out WORKDIR` honours (pairs judged not duplicates stay "
                    "quiet, kept images lose their flag, corrected labels are used). " + _KEY_HELP)
    _ls_args(ls)
    ls.set_defaults(run=_pull_label_studio)


_KEY_HELP = ("The API key (access token) comes from $LABEL_STUDIO_API_KEY or --api-key-file; "
             "without either, it is asked for when the command runs in a terminal. It is never "
             "printed, nor a password inside --url.")


def _ls_args(p) -> None:
    p.add_argument("workdir", type=Path, help="the --out folder of a scan")
    p.add_argument("--url", required=True, help="Label Studio URL, e.g. http://localhost:8080")
    p.add_argument("--api-key-file", type=Path, default=None, metavar="PATH",
                   help="read the access token from this file (default: $LABEL_STUDIO_API_KEY, "
                        "else a prompt in a terminal)")
    p.add_argument("--api-key", default=None,
                   help="the access token itself: discouraged, other users of the machine see "
                        "it in `ps`; prefer $LABEL_STUDIO_API_KEY or --api-key-file")
    p.add_argument("--project", required=True, help="project title (or id)")


def _api_key(args) -> str:
    """The access token: --api-key (with a warning), --api-key-file, $LABEL_STUDIO_API_KEY,
    or a prompt when stdin is a terminal, in that order. Raises ValueError when there is none."""
    if args.api_key and args.api_key_file:
        raise ValueError("pass either --api-key or --api-key-file, not both")
    if args.api_key:
        # process arguments are readable by every user of the machine (ps, /proc/PID/cmdline)
        print("vislint: warning: --api-key is visible to other users of this machine in `ps`; "
              "set LABEL_STUDIO_API_KEY or pass --api-key-file PATH instead (or leave the key "
              "out to be asked for it)", file=sys.stderr)
        return args.api_key
    if args.api_key_file:
        key = args.api_key_file.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(f"--api-key-file {args.api_key_file} is empty")
        return key
    key = os.environ.get("LABEL_STUDIO_API_KEY")
    if key:
        return key
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        key = getpass.getpass("Label Studio API key (Account & Settings > Access Token): ").strip()
        if key:
            return key
    raise ValueError("no API key: set LABEL_STUDIO_API_KEY, pass --api-key-file PATH, or run in "
                     "a terminal to be asked for it")


def _push_label_studio(args) -> int:
    import vislint.integrations.label_studio as vls

    checks = [c.strip() for c in args.checks.split(",") if c.strip()] if args.checks else None
    try:
        proj = vls.push(args.workdir, url=args.url, api_key=_api_key(args), project=args.project,
                        checks=checks, images_via=args.images_via,
                        document_root=args.document_root, url_prefix=args.url_prefix, progress=True)
    except vls.LabelStudioError as e:
        print(f"vislint: error: {e}", file=sys.stderr)
        return 2
    print(f"pushed to project {proj.title!r} (id {proj.id}) at {vls.redact_url(args.url)}: "
          f"{proj.text()}", file=sys.stderr)
    return 0


def _pull_label_studio(args) -> int:
    import vislint.integrations.label_studio as vls

    try:
        decisions = vls.pull(url=args.url, api_key=_api_key(args), project=args.project)
    except vls.LabelStudioError as e:
        print(f"vislint: error: {e}", file=sys.stderr)
        return 2
    path = vls.save_decisions(decisions, args.workdir)
    counts = decisions.groupby(["check", "verdict"]).size().to_dict() if len(decisions) else {}
    print(f"{len(decisions)} decisions from {decisions['task'].nunique() if len(decisions) else 0} "
          f"reviewed tasks written to {path}", file=sys.stderr)
    for (check, verdict), k in sorted(counts.items()):
        print(f"  {check}: {verdict} ×{k}", file=sys.stderr)
    return 0

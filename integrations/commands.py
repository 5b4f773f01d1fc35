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

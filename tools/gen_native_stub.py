"""Regenerate the type stub of the native core, core/vislint/_native.pyi.

Runs pybind11-stubgen on the installed (built) vislint._native and writes the
stub to OUTPUT (default: the committed core/vislint/_native.pyi).

    python tools/gen_native_stub.py [OUTPUT]

Needs `pip install pybind11-stubgen` and an installed vislint (e.g.
`pip install --no-build-isolation -e .`).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "core" / "vislint" / "_native.pyi"
MODULE = "vislint._native"


def generate(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the stub of vislint._native to output; return output."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pybind11_stubgen", MODULE, "--output-dir", tmp, "--exit-code"],
            check=True,
            cwd=tmp,  # import the installed package, not a source folder
        )
        stub = Path(tmp, *MODULE.split(".")).with_suffix(".pyi")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stub, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT,
                        help=f"where to write the stub (default: {DEFAULT_OUTPUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    print(generate(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())

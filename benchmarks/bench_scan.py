"""Side-by-side benchmark: vislint vs fastdup on one folder, in one run.

    .venv/bin/python benchmarks/bench_scan.py [--data DIR] [--runs 3] [--fastdup-python PY]
        [--vislint CMD]

Each run scans the folder from nothing (a fresh work dir, so no cache helps) as
a separate process: vislint's CLI, then fastdup (when ``--fastdup-python``
points at a Python with fastdup installed, e.g. a venv made with
``python -m venv fd-venv && fd-venv/bin/pip install fastdup==2.54``),
alternating. ``--vislint`` names the vislint executable to time (default: this
Python's ``-m vislint``); point it at a non-editable install, e.g.
``.venv-rel/bin/vislint``, because an editable install spends about 1 s per
process start checking whether the C++ core needs a rebuild.

With ``--python-call`` it also times ``vislint.scan()`` called from Python (a third tool in
the same alternation). It reports the median wall time, images/s, the ratio, CPU use (user + system
time of the process and its children / wall) and peak memory of each,
vislint's per-stage times, and the rate of ``decode_batch`` alone (JPEG
decoding to tiles in the worker processes, for reference).

The timed runs are not disturbed by memory sampling (walking /proc every 20 ms costs a
good part of one of the two cores): after them, one more run of each tool measures memory.
Peak memory is for the whole process tree: every 20 ms the benchmark sums the
PSS (proportional set size, from ``/proc/PID/smaps_rollup``) of the process and
all its descendants, and keeps the largest sum. PSS splits each shared page
between the processes that map it, so forked workers that share their parent's
pages are not counted twice, and the sum is the tree's real share of physical
memory. (``ru_maxrss`` would only give the largest single process, and a sum of
RSS would count shared pages once per process.) Spikes shorter than the
sampling interval can be missed. Linux only.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "intel-scenes-sample"

PYTHON_CALL_CODE = """
import json, os, sys
import vislint
res = vislint.scan(sys.argv[1], out=sys.argv[2], progress=False)
print(json.dumps({"timings": res.info["timings"]}), flush=True)
os._exit(0)
"""
"""``vislint.scan()`` called from Python, as most users call it (timed with --python-call):
Python's start, the import and the call, not the interpreter's teardown afterwards (~0.1 s
once pandas and faiss are loaded; the command skips it too, see ``vislint.cli.run``)."""

FASTDUP_CODE = """
import fastdup, sys
fd = fastdup.create(work_dir=sys.argv[1], input_dir=sys.argv[2])
fd.run(overwrite=True, run_sentry=False)
"""


SAMPLE_S = 0.02
"""Interval between two memory samples of the process tree, in seconds."""


def tree_pss_kib(root: int) -> int:
    """PSS (KiB) summed over ``root`` and all its descendants; processes that end while
    being read count as 0."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run_measured(cmd: list[str], env: dict | None = None, memory: bool = True) -> dict:
    """Run a command; wall seconds, CPU % (of it and its children) and, with ``memory``, the
    peak PSS (MiB) summed over its process tree, sampled every :data:`SAMPLE_S` seconds.

    Sampling walks /proc on one of the cores the command runs on, so timed runs should not
    sample (``memory=False``; the peak is then 0)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = 0
        while True:
            # waitid(WNOWAIT) leaves the process a zombie, so its pid stays valid for
            # one last sample; wait4 below then reaps it and gives its CPU times
            if not memory or os.waitid(os.P_PID, proc.pid,
                                       os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            peak = max(peak, tree_pss_kib(proc.pid))
            time.sleep(SAMPLE_S)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): "
                           f"{stderr.decode(errors='replace')[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu_pct": 100 * cpu / wall, "mem_mib": peak / 1024,
            "stdout": stdout.decode(errors="replace")}


def side_by_side(vislint: list[str], scan_args: list[str], data: Path, runs: int,
                 fastdup_python: str | None, python_call: str | None = None
                 ) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """``runs`` timed runs of ``vislint scan DATA ... scan_args``, of ``vislint.scan()`` called
    from the Python ``python_call`` (when given, without scan_args) and of fastdup (when
    ``fastdup_python`` is given), alternating, each from nothing; then one more run of each
    that samples its memory. Returns the timed runs per tool and the peak PSS (MiB) per tool."""
    fd_env = {**os.environ, "FASTDUP_PRODUCTION": "1", "SENTRY_OPT_OUT": "1"}
    results: dict[str, list[dict]] = {"vislint": [], "python": [], "fastdup": []}
    peaks = {"vislint": 0.0, "python": 0.0, "fastdup": 0.0}
    for r in range(runs + 1):
        memory = r == runs
        with tempfile.TemporaryDirectory() as w:
            # the HTML report is timed on its own (benchmarks/bench_report.py)
            res = run_measured([*vislint, "scan", str(data), "--out", w, "--json", "--no-report",
                                *scan_args], memory=memory)
            res["timings"] = json.loads(res.pop("stdout"))["timings"]
            if memory:
                peaks["vislint"] = res["mem_mib"]
            else:
                results["vislint"].append(res)
        if python_call:
            with tempfile.TemporaryDirectory() as w:
                res = run_measured([python_call, "-c", PYTHON_CALL_CODE, str(data), w], memory=memory)
                res["timings"] = json.loads(res.pop("stdout"))["timings"]
                if memory:
                    peaks["python"] = res["mem_mib"]
                else:
                    results["python"].append(res)
        if fastdup_python:
            with tempfile.TemporaryDirectory() as w:
                res = run_measured([fastdup_python, "-c", FASTDUP_CODE, w, str(data)], fd_env,
                                   memory=memory)
                res.pop("stdout")
                if memory:
                    peaks["fastdup"] = res["mem_mib"]
                else:
                    results["fastdup"].append(res)
        print(f"run {r + 1}/{runs + 1} done" + (" (memory)" if memory else ""), file=sys.stderr)
    return results, peaks


def count_images(data: Path) -> int:
    from vislint.catalog import build_catalog
    return len(build_catalog(data))


def decode_only_rate(data: Path) -> float:
    """Images/s of decode_batch alone (worker processes on all cores), best of 3."""
    from vislint.catalog import build_catalog
    from vislint.decode import decode_batch
    paths = build_catalog(data).paths
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for i in range(0, len(paths), 512):
            decode_batch(paths[i:i + 512])
        best = max(best, len(paths) / (time.perf_counter() - t))
    return best


def tool_lines(results: dict[str, list[dict]], peaks: dict[str, float], n: int, report: dict) -> list[str]:
    """One line per tool (median wall, images/s, CPU, peak memory; into report[tool]) for the
    runs of :func:`side_by_side` over ``n`` images; report["ratio"] = vislint's images/s over
    fastdup's when both were measured."""
    lines = []
    for tool in ("vislint", "python", "fastdup"):
        if not results.get(tool):
            if tool != "python":
                lines.append(f"  {tool:<8} not measured" + ("" if tool == "vislint" else
                             " (fastdup not installed: pass --fastdup-python)"))
            continue
        wall = statistics.median(x["wall"] for x in results[tool])
        cpu = statistics.median(x["cpu_pct"] for x in results[tool])
        report[tool] = {"wall_s": wall, "images_per_s": n / wall, "cpu_pct": cpu,
                        "peak_tree_pss_mib": peaks[tool]}
        lines.append(f"  {tool:<8} {wall:7.2f} s  {n / wall:8.0f} images/s  CPU {cpu:4.0f}%"
                     f"  peak memory {peaks[tool]:6.0f} MiB (PSS, process tree)")
    if results["vislint"] and results["fastdup"]:
        report["ratio"] = report["vislint"]["images_per_s"] / report["fastdup"]["images_per_s"]
    if results.get("python") and results["fastdup"]:
        report["python_ratio"] = report["python"]["images_per_s"] / report["fastdup"]["images_per_s"]
    return lines


def stage_line(runs: list[dict], report: dict) -> str:
    """The median time of each vislint stage over ``runs`` (into report["vislint_stages_s"]),
    as one line."""
    stages = {k: statistics.median(x["timings"].get(k, 0.0) for x in runs) for k in runs[0]["timings"]}
    report["vislint_stages_s"] = stages
    return "  vislint stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())


def finish(lines: list[str], report: dict, json_path: Path | None) -> int:
    """Print the lines; write the report to ``json_path`` when given. Returns exit code 0."""
    print("\n".join(lines))
    if json_path:
        json_path.write_text(json.dumps(report, indent=2))
    return 0


def side_by_side_parser(doc: str) -> argparse.ArgumentParser:
    """The options every side-by-side benchmark takes: --data, --runs, --fastdup-python,
    --vislint, --json."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fastdup-python", default=os.environ.get("FASTDUP_PYTHON"),
                    help="a Python with fastdup 2.54 installed (default: $FASTDUP_PYTHON)")
    ap.add_argument("--vislint", default=None,
                    help="the vislint executable to time, e.g. .venv-rel/bin/vislint for a "
                         "non-editable install (default: this Python's -m vislint)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap


def main() -> int:
    ap = side_by_side_parser(__doc__)
    ap.add_argument("--python-call", action="store_true",
                    help="also time vislint.scan() called from Python (the Python beside "
                         "--vislint), alternating with the command")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}; pass --data DIR", file=sys.stderr)
        return 2
    n = count_images(args.data)
    have_fd = bool(args.fastdup_python) and Path(args.fastdup_python).exists()
    vislint = [args.vislint] if args.vislint else [sys.executable, "-m", "vislint"]
    python_call = None
    if args.python_call:  # the Python of the vislint executable timed, or this one
        python_call = str(Path(args.vislint).with_name("python")) if args.vislint else sys.executable
    results, peaks = side_by_side(vislint, [], args.data, args.runs,
                                  args.fastdup_python if have_fd else None, python_call)

    report = {"images": n, "cores": os.cpu_count(), "runs": args.runs, "data": str(args.data)}
    report["load_average"] = os.getloadavg()
    lines = [f"benchmark: {n:,} images in {args.data}, {os.cpu_count()} cores, median of {args.runs} runs"
             f" (load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())})"]
    lines += tool_lines(results, peaks, n, report)
    if "ratio" in report:
        lines.append(f"  ratio    vislint is {report['ratio']:.1f}× fastdup's images/s")
    if "python_ratio" in report:
        lines.append(f"  ratio    vislint.scan() from Python is {report['python_ratio']:.1f}× "
                     "fastdup's images/s")
    lines.append(stage_line(results["vislint"], report))
    rate = decode_only_rate(args.data)
    report["decode_only_images_per_s"] = rate
    lines.append(f"  decode_batch alone (worker processes): {rate:,.0f} images/s; the whole scan runs at "
                 f"{report['vislint']['images_per_s'] / rate:.0%} of that rate")
    return finish(lines, report, args.json)


if __name__ == "__main__":
    sys.exit(main())

"""Measure what one CTC job needs: peak memory and time per frame of each shipped model.

    .venv/bin/python workflow/measure_resources.py [--threads 1] [--write]

For each dataset with a shipped model, simulates frames of its data's size, runs its run
script under `/usr/bin/time -v` on 2 frames and on N frames (the difference gives the time
per frame, the rest of the 2-frame run the start-up: imports, model loading, any numba
compiling) and prints the table; --write stores it in workflow/resources.yaml, where the
Snakefile takes each job's memory and time limit from. Times are CPU seconds (user +
system): on a machine shared with other work they stay what the job itself needs, and on a
node of its own they bound its wall time from above, with one thread or more.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1]
GNNTRACK = BUNDLE / ".venv/bin/gnntrack"
TABLE = BUNDLE / "workflow/resources.yaml"
# a generous guess for a model measured nowhere (large 3D frames need more: --set-resources)
UNMEASURED = "peak_mb: 8000, startup_s: 60, s_per_frame: 60"


@dataclass(frozen=True)
class Case:
    """One shipped model at its data's frame size (the CTC's sequence 01)."""

    dataset: str
    size: str  # HxW or DxHxW, as `gnntrack simulate --size` takes it
    frames: int  # the longer of the two runs (> 2)
    params: str | None = None  # GNNTRACK_PARAMS, relative to the bundle


CASES = (
    Case("Fluo-N2DH-SIM+", "690x628", 6),
    Case("Fluo-N2DH-GOWT1", "1024x1024", 6),
    Case("Fluo-C2DL-MSC", "832x992", 6),
    Case("Fluo-N3DH-CE", "35x512x708", 4, "parameters/Fluo-N3DH-CE-sim"),
)


@dataclass(frozen=True)
class Usage:
    """What /usr/bin/time -v reported for one run."""

    cpu_seconds: float
    peak_mb: float


def _usage(report: str) -> Usage:
    """CPU time and peak resident memory from `/usr/bin/time -v`'s report."""
    user = re.search(r"User time \(seconds\): ([\d.]+)", report)
    system = re.search(r"System time \(seconds\): ([\d.]+)", report)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    if user is None or system is None or peak is None:
        raise RuntimeError(f"no timing in:\n{report}")
    return Usage(float(user.group(1)) + float(system.group(1)), int(peak.group(1)) / 1024)


def _run(case: Case, data: Path, threads: int) -> Usage:
    """The dataset's run script on data/<Dataset>/01, timed."""
    env = {**os.environ, "GNNTRACK_DATA": str(data), "GNNTRACK_THREADS": str(threads)}
    if case.params:
        env["GNNTRACK_PARAMS"] = str(BUNDLE / case.params)
    script = BUNDLE / f"scripts/{case.dataset}-01.sh"
    done = subprocess.run(
        ["/usr/bin/time", "-v", script], env=env, capture_output=True, text=True, cwd=BUNDLE
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} failed:\n{done.stderr}")
    return _usage(done.stderr)


def measure(case: Case, scratch: Path, threads: int) -> dict[str, float | str]:
    """Peak memory (MB), start-up (s) and seconds per frame of one case."""
    many, few = scratch / "many", scratch / "few"
    simulate = [GNNTRACK, "simulate", "--out", many / case.dataset, "--preset", case.dataset]
    options = ["--size", case.size, "--frames", str(case.frames), "--seed", "1"]
    subprocess.run([*simulate, *options], check=True, capture_output=True)
    (few / case.dataset / "01").mkdir(parents=True)
    for name in ("t000.tif", "t001.tif"):
        shutil.copy(many / case.dataset / "01" / name, few / case.dataset / "01")
    first, full = _run(case, few, threads), _run(case, many, threads)
    per_frame = max(full.cpu_seconds - first.cpu_seconds, 0.0) / (case.frames - 2)
    return {
        "model": case.params.split("/")[-1] if case.params else case.dataset,
        "frame": case.size,
        "peak_mb": round(max(first.peak_mb, full.peak_mb)),
        "startup_s": round(max(first.cpu_seconds - 2 * per_frame, 0.0), 1),
        "s_per_frame": round(per_frame, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="GNNTRACK_THREADS of each run")
    parser.add_argument("--write", action="store_true", help=f"store the table in {TABLE}")
    args = parser.parse_args()
    rows = {}
    for case in CASES:
        with tempfile.TemporaryDirectory() as scratch:
            rows[case.dataset] = measure(case, Path(scratch), args.threads)
        print(case.dataset, rows[case.dataset], flush=True)
    if args.write:
        lines = [
            "# Measured by workflow/measure_resources.py (/usr/bin/time -v on the run scripts,",
            f"# simulated frames of each model's data size, {args.threads} thread(s); times in CPU",
            "# seconds). The Snakefile asks for peak_mb and startup_s + frames * s_per_frame,",
            "# both times `margin` (workflow/config.yaml; and times the attempt on a retry).",
            "# `unmeasured` stands for a dataset without a row (a model you trained).",
            f"unmeasured: {{{UNMEASURED}}}",
            "measured:",
        ]
        for name, row in rows.items():
            fields = ", ".join(f"{key}: {value}" for key, value in row.items())
            lines.append(f'  "{name}": {{{fields}}}')
        TABLE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""The generalist trackers on data they never trained on, against each dataset's own model
and LapTrack, on the same GT masks (issue 17).

    python benchmarks/generalisation.py [--real [--reports DIR]] [--seg] [--large] [--json FILE]

The generalists (`parameters/general-2d`, `general-3d`) trained on simulated sequences only,
so every real sequence is left out of their training: the held-out frames of SIM+ 01
(52-64, full GT masks), GOWT1 01 (74-91) and MSC 01 (39-47; their TRA markers as masks, as
in benchmarks/tracking.py), a simulated 3D sequence and a dense HeLa-like simulation (seeds
no training used; with `--large` also the issue's own 400-frame 1024x1024 one). LapTrack's
cutoffs follow the generalist's rule: its learned radii in cell
sizes times the sequence's cell size. Scored by the CTC measures (`inference.measures`).
`--seg` adds, on the real sequences, the whole pipeline of the generalist and of the own
model (each its own segmenter), scored against the same GT.

`--real` also runs the generalists on the real 20-frame stretches without GT in
../shared/ctc (Fluo-N2DL-HeLa 02, Fluo-N3DH-CHO 02): whole pipeline, and linking the
challenge's erroneous segmentation (02_ERR_SEG); each result validated, counts reported;
with `--reports DIR` an HTML report of each (with a small movie over the images) for judging
by eye.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from laptrack_ctc import laptrack_sequence  # noqa: E402
from tracking import timed_scores  # noqa: E402

from inference.cells.features import frame_features  # noqa: E402
from inference.ctc_rules import count_divisions, validate_result  # noqa: E402
from inference.io import open_images, open_masks, read_tracks  # noqa: E402
from inference.models.tracker import Tracker  # noqa: E402
from inference.pipeline import run_sequence, track_masks  # noqa: E402
from inference.report.build import write_report  # noqa: E402
from inference.report.overlay_movie import MovieOptions  # noqa: E402
from inference.tracking.graph import cell_size  # noqa: E402
from training.cut_sequence import cut_sequence  # noqa: E402
from training.simulator import get_preset, simulate  # noqa: E402

CTC = ROOT.parent / "shared" / "ctc"
PARAMS = ROOT / "parameters"
MEASURES = ["TRA", "DET", "LNK", "BC(0)", "CT"]
#: Simulated test sequences: name -> (preset, its options, seed, the model named as "own").
SIMULATED = {
    "simulated 3D (Fluo-N3DH-CE preset, 24x192x192, 30 frames, seed 9101)": (
        "Fluo-N3DH-CE",
        {"size": (24, 192, 192), "frames": 30},
        9101,
        "Fluo-N3DH-CE-sim",
    ),
    "dense HeLa-like simulation (Fluo-N2DL-HeLa preset, 512x512, 150 cells, 50 frames, seed 5)": (
        "Fluo-N2DL-HeLa",
        {"size": (512, 512), "cells": 150, "frames": 50},
        5,
        "Fluo-N2DH-SIM+",
    ),
}
#: With --large: the issue's own dense sequence (`gnntrack simulate --preset Fluo-N2DL-HeLa
#: --frames 400 --size 1024 --seed 5`: 68 cells at the start, up to 750, 739 divisions).
LARGE = {
    "dense HeLa-like simulation at the issue's size (Fluo-N2DL-HeLa preset, 1024x1024, "
    "400 frames, seed 5)": (
        "Fluo-N2DL-HeLa",
        {"size": (1024, 1024), "frames": 400},
        5,
        "Fluo-N2DH-SIM+",
    ),
}
#: Real held-out frames: name -> (dataset, first held-out frame, own model).
REAL = {
    "Fluo-N2DH-SIM+ 01 frames 52-64 (real, full GT masks)": ("Fluo-N2DH-SIM+", 52),
    "Fluo-N2DH-GOWT1 01 frames 74-91 (real, TRA markers as masks)": ("Fluo-N2DH-GOWT1", 74),
    "Fluo-C2DL-MSC 01 frames 39-47 (real, TRA markers as masks)": ("Fluo-C2DL-MSC", 39),
}
#: Real stretches without GT: dataset -> generalist.
UNLABELLED = {"Fluo-N2DL-HeLa": "general-2d", "Fluo-N3DH-CHO": "general-3d"}


def sequence_cell_size(data: Path, tracker: Tracker, frames: int = 8) -> float:
    """The cells' median size (px, the tracker's spacing) over the first `frames` GT frames."""
    images, masks = open_images(data / "01"), open_masks(data / "01_GT" / "TRA")
    tables = [frame_features(masks.read(t), images.read(t), t) for t in range(frames)]
    return cell_size(tables, tracker.spec)


def score_ours(data: Path, model: Path, out: Path) -> dict:
    """Our tracker `model` on data/01's GT masks: the CTC measures and frames per second."""
    images = open_images(data / "01")

    def link() -> None:
        track_masks(images, data / "01_GT" / "TRA", model, out, overwrite=True)

    return timed_scores(link, out, data / "01_GT", len(images), MEASURES)


def score_laptrack(data: Path, general: Tracker, out: Path) -> dict:
    """LapTrack on the same masks, its cutoffs the generalist's radii in this sequence's px."""
    factor = sequence_cell_size(data, general) / general.spec.cell_diameter
    images, spec = open_images(data / "01"), general.spec

    def laptrack() -> None:
        masks = open_masks(data / "01_GT" / "TRA")
        radius, gap = spec.radius * factor, spec.radius_gap * factor
        laptrack_sequence(images, masks, radius, gap, out, spec.spacing)

    return timed_scores(laptrack, out, data / "01_GT", len(images), MEASURES)


def score_pipeline(data: Path, model: Path, out: Path) -> dict:
    """The whole pipeline of `model` (its segmenter, then its tracker) on data/01."""
    images = open_images(data / "01")

    def run() -> None:
        run_sequence(images, model, out, overwrite=True)

    return timed_scores(run, out, data / "01_GT", len(images), MEASURES)


def benchmark_seg(data: Path, own: str | None, work: Path) -> list[dict]:
    """Rows on our segmentation: the generalist's pipeline and the own model's."""
    general = PARAMS / f"general-{open_images(data / '01').ndim}d"
    rows = [{"method": f"{general.name} (seg + tracker)", **score_pipeline(data, general, work)}]
    if own and (PARAMS / own / "seg").is_dir():
        scores = score_pipeline(data, PARAMS / own, work / "own")
        rows.append({"method": f"{own} (seg + tracker)", **scores})
    return rows


def benchmark(data: Path, own: str | None, work: Path) -> list[dict]:
    """Rows for one test sequence: the generalist, the named own model, LapTrack."""
    general = PARAMS / f"general-{open_images(data / '01').ndim}d"
    rows = [{"method": f"gnntrack {general.name}", **score_ours(data, general, work / "gen")}]
    if own and (PARAMS / own / "tracker").is_dir():
        rows.append({"method": f"gnntrack {own}", **score_ours(data, PARAMS / own, work / "own")})
    lap = score_laptrack(data, Tracker.from_folder(general), work / "lap")
    rows.append({"method": "LapTrack", **lap})
    return rows


def real_runs(work: Path, reports: Path | None) -> list[dict]:
    """The generalists on the real stretches without GT: whole pipeline and ERR_SEG linked."""
    rows = []
    for dataset, model in UNLABELLED.items():
        seq = CTC / dataset / "02"
        if not seq.is_dir():
            print(f"skipping {dataset}: {seq} not found", file=sys.stderr)
            continue
        runs = {
            "gnntrack run (our segmentation)": lambda out, m=model, s=seq: run_sequence(
                s, PARAMS / m, out, overwrite=True
            ),
            "gnntrack track 02_ERR_SEG": lambda out, m=model, s=seq: track_masks(
                s, s.parent / "02_ERR_SEG", PARAMS / m, out, overwrite=True
            ),
        }
        for k, (how, run) in enumerate(runs.items()):
            out = work / f"{dataset}_{k}" / "02_RES"
            start = time.perf_counter()
            run(out)
            seconds = time.perf_counter() - start
            tracks = read_tracks(out / "res_track.txt")
            masks = open_masks(out)
            cells = [len(set(masks.read(t).ravel().tolist()) - {0}) for t in range(len(masks))]
            rows.append(
                {
                    "data": f"{dataset} 02 ({len(masks)} frames, no GT)",
                    "how": f"{how}, {model}",
                    "valid": validate_result(out, images_dir=seq) == [],
                    "cells": f"{min(cells)}-{max(cells)}",
                    "tracks": len(tracks),
                    "divisions": count_divisions(tracks),
                    "seconds": seconds,
                }
            )
            if reports is not None:
                folder = reports / f"{dataset}-02-{'run' if k == 0 else 'err_seg'}"
                small = MovieOptions(max_size=512)  # the movie shows the images: kept small
                write_report(out, folder, images_dir=seq, movie=True, movie_options=small)
    return rows


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a" if value is None else str(value)


def table_text(rows: list[dict]) -> str:
    """The measured table in Markdown."""
    head = f"| data | method | {' | '.join(MEASURES)} | frames/s |"
    lines = [head, "|" + "---|" * (len(MEASURES) + 3)]
    for row in rows:
        values = " | ".join(_cell(row.get(m)) for m in MEASURES)
        lines.append(f"| {row['data']} | {row['method']} | {values} | {row['fps']:.1f} |")
    return "\n".join(lines)


def real_text(rows: list[dict]) -> str:
    """The real-data runs in Markdown."""
    lines = [
        "| data | run | valid | cells a frame | tracks | divisions | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['how']} | {'yes' if r['valid'] else 'NO'} | {r['cells']} | "
            f"{r['tracks']} | {r['divisions']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the rows as JSON here.")
    parser.add_argument("--real", action="store_true", help="Also the real stretches (no GT).")
    parser.add_argument("--reports", type=Path, help="With --real: write their reports here.")
    parser.add_argument("--only", help="Only the test sequences whose name contains this.")
    parser.add_argument("--seg", action="store_true", help="Also on our segmentation (real).")
    parser.add_argument(
        "--large",
        action="store_true",
        help="Also the issue's 400-frame 1024x1024 dense simulation (about 10 min on 2 cores).",
    )
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tests: dict[str, tuple[Path, str | None]] = {}
        simulated = {**SIMULATED, **(LARGE if args.large else {})}
        for k, (name, (preset, options, seed, own)) in enumerate(simulated.items()):
            if args.only and args.only not in name:
                continue
            data = work / f"sim{k}"
            simulate(data, get_preset(preset).with_options(**options), seed)
            tests[name] = (data, own)
        for k, (name, (dataset, first)) in enumerate(REAL.items()):
            if (args.only and args.only not in name) or not (CTC / dataset / "01").is_dir():
                continue
            tests[name] = (cut_sequence(CTC / dataset, "01", first, 10**9, work / f"r{k}"), dataset)
        for k, (name, (data, own)) in enumerate(tests.items()):
            for row in benchmark(data, own, work / f"t{k}"):
                rows.append({"data": name, **row})
                print(table_text(rows[-1:]).splitlines()[-1], flush=True)
            if args.seg and "real" in name:
                for row in benchmark_seg(data, own, work / f"s{k}"):
                    rows.append({"data": f"{name}, our segmentation", **row})
                    print(table_text(rows[-1:]).splitlines()[-1], flush=True)
        print(table_text(rows))
        real = real_runs(work, args.reports) if args.real else []
        if real:
            print(real_text(real))
    if args.json:
        args.json.write_text(json.dumps({"tests": rows, "real": real}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Our tracker versus LapTrack on the same masks, on frames the models never trained on.

    python benchmarks/tracking.py [--params parameters/Fluo-N2DH-SIM+ ...] [--seg]

For every model folder given (default: every `parameters/<Dataset>` with a tracker whose data
is in ../shared/ctc), the held-out frames (those after the tracker's training frames) are
cut out as a sequence of their own, both trackers link its GT masks (and, with `--seg`, our
segmentation's masks), and the results are scored by the CTC measures. Prints one table:
TRA, DET, LNK, BC(0), CT and frames per second (reading masks and writing the result
included, for both), and for ours the GNN's edge accuracy on the GT masks. `--data DIR`
benchmarks one model folder on a whole other dataset instead (e.g. a simulated sequence with
another seed than the training one).

`--errors 0,0.02,0.05,0.10` measures both trackers on imperfect masks instead: for each rate r
the GT masks get segmentation errors (`training/mask_errors.py`, seeded: r of the cells cut in
two, 0.6 r missed, 0.2 r merged with a neighbour, 0.2 r spurious blobs per cell), both
trackers link the SAME damaged masks, and the results are scored against the undamaged GT
(adding BIO(0) and the false / true divisions of BC(0)).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from laptrack_ctc import laptrack_sequence  # noqa: E402

from inference.errors import CTCError  # noqa: E402
from inference.io import (  # noqa: E402
    open_images,
    open_masks,
    write_tiff,
)
from inference.measures import evaluate  # noqa: E402
from inference.models.tracker import Tracker  # noqa: E402
from inference.pipeline import segment_images, track_masks  # noqa: E402
from inference.segmentation.segmenter import Segmenter  # noqa: E402
from seg_code.look import cell_level, estimate_look  # noqa: E402
from training.cut_sequence import cut_sequence  # noqa: E402
from training.mask_errors import Injected, error_rates, inject_sequence  # noqa: E402
from training.segmentation.looks import standard_shifts  # noqa: E402
from training.tracked import tracked_frames  # noqa: E402
from training.tracker.fit_tracker import evaluate_edges  # noqa: E402
from training.tracker.window_graphs import embed_frames, labelled_window, window_starts  # noqa: E402

CTC = ROOT.parent / "shared" / "ctc"
MEASURES = ["TRA", "DET", "LNK", "BC(0)", "CT"]
COLUMNS = ["edge acc.", *MEASURES]
#: Measured on damaged masks: BIO(0) too, and BC(0)'s false and true divisions.
ERROR_MEASURES = [*MEASURES, "BIO(0)"]


def timed_scores(
    job: Callable[[], object], out: Path, gt: Path, frames: int, measures: list[str]
) -> dict:
    """Run `job` (which writes the result `out`), then the CTC `measures` of `out` against
    `gt` and the frames per second the job ran at."""
    start = time.perf_counter()
    job()
    seconds = time.perf_counter() - start
    return {**evaluate(out, gt, measures), "fps": frames / seconds}


def edge_accuracy(data: Path, tracker: Tracker) -> float | None:
    """The GNN's edge accuracy on data/01 with its GT masks (None where TRA holds markers)."""
    try:
        stream, lineage, _ = tracked_frames(data, "01")
    except CTCError:
        return None
    frames = embed_frames(stream, tracker.embedder)
    graphs = [
        labelled_window(frames[a:b], lineage, tracker.spec)
        for a, b in window_starts(len(frames), tracker.window, tracker.stride)
    ]
    return evaluate_edges(tracker.gnn, graphs)["edge_accuracy"]


def compare(
    data: Path,
    masks_dir: Path,
    tracker: Tracker,
    work: Path,
    label: str,
    measures: list[str] = MEASURES,
) -> list[dict]:
    """Both trackers on `masks_dir` (frames of data/01); scores against data/01_GT."""
    images = open_images(data / "01")
    masks = open_masks(masks_dir)
    ours, lap = work / f"ours_{label}", work / f"lap_{label}"
    spec = tracker.spec

    def link() -> None:
        track_masks(images, masks, tracker, ours, overwrite=True)

    def laptrack() -> None:
        laptrack_sequence(images, masks, spec.radius, spec.radius_gap, lap, spec.spacing)

    gt, n = data / "01_GT", len(images)
    return [
        {"method": f"gnntrack ({label})", **timed_scores(link, ours, gt, n, measures)},
        {"method": f"LapTrack ({label})", **timed_scores(laptrack, lap, gt, n, measures)},
    ]


def _injected_text(report: list[Injected]) -> str:
    """Errors actually made over the sequence, as cut / merged / missed / added."""
    counts = [
        sum(len(getattr(frame, kind)) for frame in report)
        for kind in ("cut", "merged", "dropped", "added")
    ]
    return " / ".join(str(c) for c in counts)


def compare_errors(
    data: Path, tracker: Tracker, work: Path, rates: list[float], seed: int
) -> list[dict]:
    """Both trackers on data/01's GT masks damaged at each rate (the same masks for both)."""
    rows = []
    gt_masks = data / "01_GT" / "TRA"
    for rate in rates:
        label = f"errors {rate:g}"
        masks, injected = gt_masks, "0 / 0 / 0 / 0"
        if rate > 0:
            masks = work / f"masks_{rate:g}"
            injected = _injected_text(inject_sequence(gt_masks, masks, error_rates(rate), seed))
        for row in compare(data, masks, tracker, work, label, ERROR_MEASURES):
            row["method"] = row["method"].split(" (")[0]
            rows.append({"rate": rate, "injected": injected, **row})
    return rows


def shift_look(data: Path, label: str, seed: int) -> None:
    """Rewrite data/01's frames in another look (`training.segmentation.looks`, the
    robustness benchmark's shift named `label`), their GT kept: a sequence imitating another
    of the dataset, for the whole pipeline (segmentation errors included)."""
    shifts = {s.label: s for s in standard_shifts() if s.scale == 1.0}
    if label not in shifts:
        raise SystemExit(f"--look: unknown shift {label!r}; one of {sorted(shifts)}")
    images = open_images(data / "01")
    frames = [images.read(t) for t in range(len(images))]
    markers = [m for m in open_masks(data / "01_GT" / "TRA")]
    look = estimate_look(frames)
    level = cell_level(frames, markers, look)
    for t, frame in enumerate(frames):
        shifted = shifts[label].apply(frame, look, level, np.random.default_rng((seed, t)))
        write_tiff(images.frames[t].path, shifted)


def _held_out(params: Path) -> tuple[Path, str, int]:
    config = json.loads((params / "tracker" / "config.json").read_text())
    training = config["training"]
    frames = training.get("frames") or [0, 0]
    dataset = Path(training["dataset"])
    if not dataset.is_dir():  # trained in another clone: look in ../shared/ctc
        dataset = CTC / dataset.name
    return dataset, training.get("seq", "01"), int(frames[1])


def _format(table: list[dict]) -> str:
    head = f"| dataset | method | {' | '.join(COLUMNS)} | fps |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in table:
        values = [f"{row.get(m):.4f}" if isinstance(row.get(m), float) else "n/a" for m in COLUMNS]
        lines.append(
            f"| {row['dataset']} | {row['method']} | {' | '.join(values)} | {row['fps']:.1f} |"
        )
    return "\n".join(lines)


def _format_errors(table: list[dict]) -> str:
    """The error-rate table: data, rate, errors made, tracker, measures, divisions."""
    head = "| data | error rate | cut / merged / missed / added | tracker | "
    head += " | ".join(ERROR_MEASURES) + " | false / true divisions |"
    lines = [head, "|" + "---|" * (len(ERROR_MEASURES) + 5)]
    for row in table:
        values = [
            f"{row.get(m):.4f}" if isinstance(row.get(m), float) else "n/a" for m in ERROR_MEASURES
        ]
        divisions = f"{row.get('fp_div(0)', 'n/a')} / {row.get('tp_div(0)', 'n/a')}"
        lines.append(
            f"| {row['dataset']} | {row['rate'] * 100:g}% | {row['injected']} | {row['method']} | "
            f"{' | '.join(values)} | {divisions} |"
        )
    return "\n".join(lines)


def _rates(text: str) -> list[float]:
    """'0,0.02,0.05' -> [0.0, 0.02, 0.05]."""
    return [float(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, nargs="*", help="Model folders to benchmark.")
    parser.add_argument("--seg", action="store_true", help="Also on our segmentation's masks.")
    parser.add_argument("--json", type=Path, help="Also write the table as JSON here.")
    parser.add_argument("--data", type=Path, help="Benchmark the one --params on this dataset.")
    parser.add_argument(
        "--errors", type=_rates, help="Error rates, e.g. 0,0.02,0.05,0.10: damaged GT masks."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the injected errors.")
    parser.add_argument(
        "--look",
        help="With --seg: the held-out frames shifted to this look first (a shift label of "
        "benchmarks/robustness.py, e.g. 'signal/noise 1.5'), to imitate another sequence.",
    )
    args = parser.parse_args()
    folders = args.params or sorted(
        p for p in (ROOT / "parameters").iterdir() if (p / "tracker" / "config.json").is_file()
    )
    table: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for params in folders:
            work = Path(tmp) / params.name
            if args.data:
                data, name = args.data, f"{params.name} on {args.data.name}"
            else:
                dataset, seq, first = _held_out(params)
                if not (dataset / seq).is_dir():
                    print(f"skipping {params.name}: {dataset / seq} not found", file=sys.stderr)
                    continue
                data = cut_sequence(dataset, seq, first, 10**9, work / "data")
                name = f"{params.name} {seq} frames {first}-"
            if args.look:
                shift_look(data, args.look, args.seed)
                name += f", {args.look}"
            tracker = Tracker.from_folder(params)
            if args.errors is not None:
                rows = compare_errors(data, tracker, work, args.errors, args.seed)
                table += [{"dataset": name, **r} for r in rows]
                continue
            rows = compare(data, data / "01_GT" / "TRA", tracker, work, "GT masks")
            rows[0]["edge acc."] = edge_accuracy(data, tracker)
            if args.seg and (params / "seg").is_dir():
                segment_images(
                    open_images(data / "01"),
                    Segmenter.from_folder(params / "seg"),
                    work / "seg_masks",
                )
                rows += compare(data, work / "seg_masks", tracker, work, "our segmentation")
            table += [{"dataset": name, **r} for r in rows]
    print(_format_errors(table) if args.errors is not None else _format(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()

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

from inference.errors import CTCError  # noqa: E402
from inference.evaluate import evaluate  # noqa: E402
from inference.io import (  # noqa: E402
    Track,
    frame_name,
    open_images,
    open_masks,
    read_tracks,
    write_mask,
    write_tiff,
    write_tracks,
)
from inference.segment import Segmenter, segment_sequence  # noqa: E402
from inference.track import track_sequence  # noqa: E402
from inference.tracker import Tracker  # noqa: E402
from training.tracked import tracked_frames  # noqa: E402
from training.tracker.data import embed_frames, labelled_window, window_starts  # noqa: E402
from training.tracker.train import evaluate_edges  # noqa: E402

CTC = ROOT.parent / "shared" / "ctc"
MEASURES = ["TRA", "DET", "LNK", "BC(0)", "CT"]
COLUMNS = ["edge acc.", *MEASURES]


def cut_sequence(dataset: Path, seq: str, start: int, stop: int, out: Path) -> Path:
    """Frames start..stop-1 of dataset/seq with their TRA ground truth, as a new dataset."""
    images = open_images(dataset / seq)
    tra = open_masks(dataset / f"{seq}_GT" / "TRA", "man_track")
    stop = min(stop, len(images))
    n = stop - start
    (out / "01").mkdir(parents=True)
    (out / "01_GT" / "TRA").mkdir(parents=True)
    for k, t in enumerate(range(start, stop)):
        write_tiff(out / "01" / frame_name("t", k, n), images.read(t))
        write_mask(out / "01_GT" / "TRA" / frame_name("man_track", k, n), tra.read(t))
    kept = {}
    for track in read_tracks(dataset / f"{seq}_GT" / "TRA" / "man_track.txt"):
        if track.end < start or track.begin >= stop:
            continue
        kept[track.label] = track
    tracks = [
        Track(
            t.label,
            max(t.begin, start) - start,
            min(t.end, stop - 1) - start,
            t.parent if t.parent in kept and t.begin >= start else 0,
        )
        for t in kept.values()
    ]
    write_tracks(out / "01_GT" / "TRA" / "man_track.txt", tracks)
    return out


def _row(name: str, scores: dict, frames: int, seconds: float) -> dict:
    return {"method": name, **{m: scores.get(m) for m in MEASURES}, "fps": frames / seconds}


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


def compare(data: Path, masks_dir: Path, tracker: Tracker, work: Path, label: str) -> list[dict]:
    """Both trackers on `masks_dir` (frames of data/01); scores against data/01_GT."""
    images = open_images(data / "01")
    masks = open_masks(masks_dir)
    rows = []
    start = time.perf_counter()
    track_sequence(images, masks, tracker, work / f"ours_{label}", overwrite=True)
    seconds = time.perf_counter() - start
    rows.append(
        _row(
            f"gnntrack ({label})",
            evaluate(work / f"ours_{label}", data / "01_GT", MEASURES),
            len(images),
            seconds,
        )
    )
    start = time.perf_counter()
    laptrack_sequence(
        images,
        masks,
        tracker.spec.radius,
        tracker.spec.radius_gap,
        work / f"lap_{label}",
        tracker.spec.spacing,
    )
    seconds = time.perf_counter() - start
    rows.append(
        _row(
            f"LapTrack ({label})",
            evaluate(work / f"lap_{label}", data / "01_GT", MEASURES),
            len(images),
            seconds,
        )
    )
    return rows


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, nargs="*", help="Model folders to benchmark.")
    parser.add_argument("--seg", action="store_true", help="Also on our segmentation's masks.")
    parser.add_argument("--json", type=Path, help="Also write the table as JSON here.")
    parser.add_argument("--data", type=Path, help="Benchmark the one --params on this dataset.")
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
            tracker = Tracker.from_folder(params)
            rows = compare(data, data / "01_GT" / "TRA", tracker, work, "GT masks")
            rows[0]["edge acc."] = edge_accuracy(data, tracker)
            if args.seg and (params / "seg").is_dir():
                segment_sequence(
                    open_images(data / "01"),
                    Segmenter.from_folder(params / "seg"),
                    work / "seg_masks",
                )
                rows += compare(data, work / "seg_masks", tracker, work, "our segmentation")
            table += [{"dataset": name, **r} for r in rows]
    print(_format(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()

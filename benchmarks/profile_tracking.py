"""Where linking spends its time: stage breakdown of `track_sequence`, next to LapTrack.

    python benchmarks/profile_tracking.py DATA [--params parameters/Fluo-N2DH-SIM+]
        [--repeat 3] [--prefetch N]

DATA is a CTC dataset folder with `01/` and `01_GT/TRA/` (e.g. from `gnntrack simulate`).
Prints frames per second of our linking (first call in the process, which pays for loading
compiled code, and the best of `--repeat` warm calls), of LapTrack on the same masks (run
after ours, so on warm compiled code), of the I/O floor (reading images and masks, writing
result masks), and each stage's time per frame (from cProfile, whose overhead inflates
Python-heavy stages a little; it sees the main thread only, so it always runs with one).
`--prefetch N` sets how many frames are read and embedded ahead in a second thread (0: none;
default: what `gnntrack track` chooses, a window's stride where two cores are free).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from laptrack_ctc import laptrack_sequence  # noqa: E402

from inference.io import frame_name, open_images, open_masks, write_mask  # noqa: E402
from inference.models.tracker import Tracker  # noqa: E402
from inference.pipeline import track_masks  # noqa: E402

#: Stage -> (file suffix, function name) of the functions whose cumulative time it is.
STAGES: dict[str, list[tuple[str, str]]] = {
    "read (TIFF)": [("inference/io/tiff.py", "read_tiff")],
    "labels + features": [
        ("inference/cells/features.py", "compact_labels"),
        ("inference/cells/features.py", "frame_features"),
    ],
    "crops": [("inference/cells/crops.py", "cell_crops")],
    "embedding (CNN)": [("inference/models/embedding.py", "embed_crops")],
    "graph": [("inference/tracking/graph.py", "build_window")],
    "GNN": [("inference/models/gnn.py", "forward")],
    "solver": [("inference/tracking/solve.py", "solve_pair")],
    "lineage + relabel": [
        ("inference/tracking/lineage.py", "advance"),
        ("inference/tracking/lineage.py", "relabel"),
    ],
    "write (TIFF)": [("inference/io/tiff.py", "write_mask")],
}


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def stage_times(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per stage (see `STAGES`) from a cProfile run.

    Of functions that share a file and name (e.g. two `forward`s, one calling the other)
    the outermost, largest one counts.
    """
    table = stats.stats  # type: ignore[attr-defined]
    out = {}
    for stage, functions in STAGES.items():
        out[stage] = sum(
            max(
                (
                    cumulative
                    for (path, _, name), (_, _, _, cumulative, _) in table.items()
                    if path.endswith(suffix) and name == function
                ),
                default=0.0,
            )
            for suffix, function in functions
        )
    return out


def io_floor(data: Path, out: Path) -> float:
    """Seconds to read every image and mask of data/01 and write each mask once."""
    images, masks = open_images(data / "01"), open_masks(data / "01_GT" / "TRA")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for t in range(len(images)):
        images.read(t)
        write_mask(out / frame_name("mask", t, len(images)), masks.read(t))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="CTC dataset with 01/ and 01_GT/TRA/.")
    parser.add_argument("--params", type=Path, default=ROOT / "parameters" / "Fluo-N2DH-SIM+")
    parser.add_argument("--repeat", type=int, default=3, help="Warm runs (best is reported).")
    parser.add_argument(
        "--prefetch", type=int, help="Frames read ahead (0: none; default: as `gnntrack track`)."
    )
    args = parser.parse_args()
    tracker = Tracker.from_folder(args.params)
    images, masks = open_images(args.data / "01"), open_masks(args.data / "01_GT" / "TRA")
    n = len(images)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def ours(prefetch: int | None = args.prefetch) -> object:
            out = work / "ours"
            return track_masks(images, masks, tracker, out, overwrite=True, prefetch=prefetch)

        def lap() -> object:
            spec = tracker.spec
            return laptrack_sequence(
                images, masks, spec.radius, spec.radius_gap, work / "lap", spec.spacing
            )

        cold = _timed(ours)
        warm = min(_timed(ours) for _ in range(args.repeat))
        lap_time = min(_timed(lap) for _ in range(args.repeat))
        floor = min(io_floor(args.data, work / f"floor{k}") for k in range(args.repeat))
        profiler = cProfile.Profile()
        profiler.enable()
        ours(prefetch=0)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    ahead = "auto" if args.prefetch is None else args.prefetch
    print(f"{n} frames of {images.shape}, prefetch {ahead}")
    print(f"ours, first call: {n / cold:6.1f} fps  ({cold:.2f} s)")
    print(f"ours, warm:       {n / warm:6.1f} fps  ({warm:.2f} s)")
    print(f"LapTrack:         {n / lap_time:6.1f} fps  ({lap_time:.2f} s)")
    print(f"I/O floor:        {n / floor:6.1f} fps  ({floor:.2f} s)")
    print(f"stages (cProfile, {total:.2f} s in all, ms per frame):")
    times = stage_times(stats)
    for stage, seconds in times.items():
        print(f"  {stage:20s} {1000 * seconds / n:6.2f}  {100 * seconds / total:5.1f}%")
    rest = total - sum(times.values())
    print(f"  {'other':20s} {1000 * rest / n:6.2f}  {100 * rest / total:5.1f}%")


if __name__ == "__main__":
    main()

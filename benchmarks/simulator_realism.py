"""How real do the simulator's presets look and move? Measure them against real CTC data.

    python benchmarks/simulator_realism.py [--quick] [--seed 0] [--docs docs]

Simulates every preset at its full size, measures it and the real training sequence it imitates
(from ../shared/ctc, skipped where absent) with `training.simulator.statistics`, prints the
comparison table, writes `docs/simulator_realism.md` and one montage per preset,
`docs/simulator_<preset>.png` (simulated frames on top, real frames below where available).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage.transform import resize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.io import open_images  # noqa: E402
from training.simulator import PRESETS, Preset, simulate  # noqa: E402
from training.simulator.statistics import SequenceStats, measure_sequence  # noqa: E402

REAL = ROOT.parent / "shared" / "ctc"
#: Real CTC folder imitated by each preset (HeLa: a tracker's result, masks without images).
REAL_FOLDER = {
    "Fluo-N2DH-SIM+": "Fluo-N2DH-SIM+",
    "Fluo-N2DL-HeLa": "Fluo-N2DL-HeLa-01_RES-example",
    "Fluo-N2DH-GOWT1": "Fluo-N2DH-GOWT1",
    "Fluo-C2DL-MSC": "Fluo-C2DL-MSC",
}
COLUMNS = [
    ("diameter", "diam px", "{:.1f}"),
    ("cells_per_frame", "cells/frame", "{:.1f}"),
    ("density", "cells/100²px", "{:.2f}"),
    ("speed_median", "step med", "{:.2f}"),
    ("speed_p90", "step p90", "{:.2f}"),
    ("speed_rel_median", "step/r med", "{:.2f}"),
    ("speed_rel_p90", "step/r p90", "{:.2f}"),
    ("fg_bg_ratio", "fg/bg", "{:.2f}"),
    ("snr", "SNR", "{:.1f}"),
    ("cv", "CV fg", "{:.2f}"),
    ("heterogeneity", "het", "{:.2f}"),
    ("division_rate", "div/cell/frame", "{:.4f}"),
    ("touching", "touching", "{:.2f}"),
    ("leaving", "leave", "{:.2f}"),
]


NOTES = """
## What matches and what does not

- **Size, density, motion, divisions** match where a real sequence is here: median
  diameters within 6 % (SIM+, HeLa, GOWT1, MSC), cells per frame within 16 %, median steps
  within 10 %, divisions per cell and frame within 10 % (SIM+ 0.0119 vs 0.0119, HeLa 0.0126
  vs 0.0130, GOWT1 0.0009 vs 0.0010, MSC none). Fast cells are there: the 90th percentile
  step is 0.43 radii per frame for HeLa (real 0.45) and 0.66 for MSC (real 0.74).
- **Intensity**: SIM+ and MSC match in contrast (fg/bg 1.49 vs 1.41, 1.34 vs 1.33), SNR
  (9.0 vs 8.7, 2.0 vs 2.1) and texture CV (0.19 vs 0.21, 0.24 vs 0.31). GOWT1's real SNR
  and fg/bg are low because its ground truth leaves many dim out-of-focus nuclei
  unannotated, so they count as background; the simulator annotates every cell it draws,
  so its GOWT1 background is clean and its contrast higher (13.9 vs 4.7). HeLa (no raw
  frames here) and CE (no real 3D sequence here) intensities are set by eye.
- **Too much**: cell-to-cell brightness spread (`het`: SIM+ 0.33 vs 0.23, GOWT1 0.69 vs
  0.40), SIM+'s step spread (90th percentile 6.4 px vs 5.5: the persistent random walk
  gives a wider speed distribution than the CTC's own simulator), and touching: SIM+'s
  ground truth never has two nuclei touch, while simulated daughters are born touching
  (9 % of cells per frame);
  HeLa touches about twice and MSC five times as often as the real data.
- **Too little**: SIM+ cells leave the field less often (9 % of tracks vs 16 %); GOWT1's
  90th percentile step is 4.1 px vs 6 (its real markers move in whole pixels).
- **Not modelled**: unannotated out-of-focus cells (GOWT1), MSC's thin protrusions (shapes
  are lobed star-convex bodies), the metaphase plate and chromosome speckles of real
  mitoses (the mother elongates and brightens, then splits along its long axis), the
  surface-layer arrangement of nuclei in older embryos, camera artefacts (MSC's 8-bit
  quantisation, hot pixels). The simulator's TRA holds full masks, as SIM+ does; real
  GOWT1, MSC, HeLa and CE ship markers.
"""


def stretch(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """Percentile contrast stretch to 0..1, as one would view a microscopy frame."""
    lo, hi = np.percentile(image, [low, high])
    return np.clip((image.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)


def views(image: np.ndarray) -> list[np.ndarray]:
    """2D: the frame. 3D: the max projection and the middle z slice, side by side."""
    if image.ndim == 2:
        return [stretch(image)]
    return [stretch(image.max(axis=0)), stretch(image[image.shape[0] // 2])]


def row(folder: Path, count: int, height: int) -> np.ndarray:
    """Frames spread over a sequence, each scaled to `height` px, separated by white bars."""
    frames = open_images(folder)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    tiles = []
    for p in picks:
        for view in views(frames.read(int(p))):
            width = round(view.shape[1] * height / view.shape[0])
            tiles += [resize(view, (height, width), anti_aliasing=True), np.ones((height, 6))]
    return np.hstack(tiles[:-1])


def montage(sim: Path, real: Path | None, out: Path, height: int = 300) -> None:
    """Simulated frames on top, real ones below; written as an 8-bit PNG."""
    count = 3 if open_images(sim / "01").ndim == 2 else 2
    rows = [row(sim / "01", count, height)]
    if real is not None and (real / "01").is_dir():
        rows.append(row(real / "01", count, height))
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 10), (0, width - r.shape[1])), constant_values=1.0) for r in rows]
    iio.imwrite(out, (np.vstack(padded)[:-10] * 255).round().astype(np.uint8))


def fmt(value: float, pattern: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else pattern.format(value)
    )


def table(rows: list[tuple[str, SequenceStats]]) -> str:
    """A Markdown table, one row per measured sequence."""
    head = "| sequence | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    body = [
        f"| {label} | " + " | ".join(fmt(getattr(s, k), f) for k, _, f in COLUMNS) + " |"
        for label, s in rows
    ]
    return "\n".join([head, rule, *body])


def run(preset: Preset, work: Path, seed: int, quick: bool) -> tuple[Path, SequenceStats, float]:
    if quick:
        preset = preset.with_options(frames=min(preset.frames, 20))
    out = work / preset.name
    summary = simulate(out, preset, seed, overwrite=True)
    spacing = (preset.z_scale, 1.0, 1.0) if preset.ndim == 3 else None
    stats = measure_sequence(out, name=f"sim {preset.name}", spacing=spacing)
    return out, stats, summary.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 frames per preset")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    args = parser.parse_args(argv)
    args.docs.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, SequenceStats]] = []
    timings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="simrealism-") as tmp:
        for name in args.presets:
            preset = PRESETS[name]
            real_dir = REAL / REAL_FOLDER[name] if name in REAL_FOLDER else None
            if real_dir is not None and real_dir.is_dir():
                rows.append((f"real {name}", measure_sequence(real_dir, name=name)))
            else:
                real_dir = None
            started = time.perf_counter()
            out, stats, seconds = run(preset, Path(tmp), args.seed, args.quick)
            rows.append((f"sim {name}", stats))
            montage(out, real_dir, args.docs / f"simulator_{name}.png")
            timings.append(
                f"| {preset.summary()} | {seconds:.1f} s | {time.perf_counter() - started:.1f} s |"
            )
            print(f"{name}: simulated in {seconds:.1f} s", flush=True)
    text = table(rows)
    print(text)
    report = [
        "# Simulator realism",
        "",
        "Generated by `python benchmarks/simulator_realism.py` (seed "
        f"{args.seed}{', --quick' if args.quick else ''}): each preset simulated at its "
        "default size and measured exactly like the real CTC training sequence 01 it imitates "
        "(`training/simulator/statistics.py`). Lengths in xy pixels, rates per frame; "
        "`step` = centroid displacement per frame, `r` = median radius, SNR = (fg - bg) / std(bg), "
        "`het` = spread of per-cell mean intensity / (fg - bg), `leave` = fraction of tracks "
        "ending at the border. HeLa is measured on a tracker's result (no images here, so no "
        "intensity columns); no real 3D sequence is available for CE.",
        "",
        text,
        "",
        "Montages (`docs/simulator_<preset>.png`): simulated frames on top (first, middle, last;"
        " 3D: max projection and middle z slice of the first and last frame), the real "
        "sequence below where its raw frames are here; each frame percentile-stretched.",
        "",
        "| preset | simulate + write | with measuring and montage |",
        "|---|---|---|",
        *timings,
        "",
    ]
    report += [NOTES.strip(), ""]
    (args.docs / "simulator_realism.md").write_text("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

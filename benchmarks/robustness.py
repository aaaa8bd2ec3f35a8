"""Look-shift benchmark: SEG and DET of each shipped segmenter on frames made to look like
another sequence of its dataset.

Late frames of the training sequence overstate what a model does on another sequence (SIM+
SEG 0.85 there, 0.58 on a sequence whose cells stand 1-2 noise sds above the background).
So each dataset's held-out frames (after every frame its model trained or was validated on,
those with SEG ground truth) are shifted to other looks (`training.segmentation.looks`:
signal compressed toward the background down to signal/noise 1, gain and offset, gamma,
blur, brighter saturated cells, rescale x0.75 and x1.33) and scored with the CTC measures,
and simulated sequences whose look is drawn from wide ranges are scored the same way.

    python benchmarks/robustness.py [--ctc ../shared/ctc] [--params parameters]
        [--frames 6] [--docs docs]      # --docs writes docs/robustness_table.md, .png, .json
        (with --adapt: docs/robustness_adapted_table.md, .png, .json)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation import first_unseen_frame, score, write_detections  # noqa: E402

from inference.io import open_images, open_masks, write_mask  # noqa: E402
from inference.io.sequence import frame_name  # noqa: E402
from inference.segmentation.adapt import adapt_to_sequence
from inference.segmentation.segmenter import Segmenter
from seg_code.look import Look, cell_level, estimate_look  # noqa: E402
from training.segmentation.denoise_calibration import segment_windows  # noqa: E402
from training.segmentation.looks import (  # noqa: E402
    Shift,
    rescale_labels,
    shift_windows,
    standard_shifts,
)
from training.simulator import get_preset, simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ("Fluo-N2DH-SIM+", "Fluo-N2DH-GOWT1", "Fluo-C2DL-MSC")
#: Simulated looks: each preset with its optics drawn from these ranges (factors of the
#: preset's own value), `DRAWS` sequences each, scored on their last frames.
LOOK_RANGES = {
    "brightness": (0.1, 2.0),
    "background": (0.5, 3.0),
    "read_noise": (0.5, 4.0),
    "photons": (0.3, 3.0),
    "psf_sigma": (0.7, 1.8),
    "radius": (0.8, 1.25),
}
DRAWS = 3
SIM_SIZE = {
    "Fluo-N2DH-SIM+": (384, 384),
    "Fluo-N2DH-GOWT1": (512, 512),
    "Fluo-C2DL-MSC": (512, 512),
}


def gt_of_frames(tra: list[np.ndarray], seg: list[np.ndarray], out: Path) -> Path:
    """A CTC GT folder of unrelated frames: every TRA marker a one-frame track."""
    write_detections(tra, out / "TRA", prefix="man_track", track_file="man_track.txt")
    (out / "SEG").mkdir()
    for t, masks in enumerate(seg):
        write_mask(out / "SEG" / frame_name("man_seg", t, len(seg)), masks)
    return out


def segment_shifted(
    segmenter: Segmenter,
    windows: list[list[np.ndarray]],
    shift: Shift,
    look: Look,
    cell_level: float,
    seed: int,
    adapt: bool = False,
) -> list[np.ndarray]:
    """Labels of the last frame of each window (its context before it), all shifted alike;
    with `adapt`, the smoothing is first set from the shifted frames' signal/noise, the
    network's scale from their cell size and the contrast cap from their typical cell, as
    a run does (on a copy of `segmenter`)."""
    shifted_windows = shift_windows(windows, shift, look, cell_level, (seed,))
    if adapt:
        segmenter = replace(segmenter)
        current = [w[-1] for w in shifted_windows]
        # the shifted frames' look, as a run estimates it
        adapt_to_sequence(current[:3], estimate_look(current), segmenter, shift.label)
    return segment_windows(segmenter, shifted_windows)


def run_dataset(
    name: str,
    seq: Path,
    gt: Path,
    frames: list[int],
    model: Path,
    shifts: list[Shift],
    work: Path,
    seed: int,
    adapt: bool = False,
) -> list[dict]:
    """One row per shift: SEG and DET of `model` on `frames` of `seq` shifted."""
    images = open_images(seq)
    segmenter = Segmenter.from_folder(model)
    k = segmenter.context_frames
    windows = [[images.read(max(t - c, 0)) for c in range(k, -1, -1)] for t in frames]
    tra_all, seg_all = open_masks(gt / "TRA", "man_track"), open_masks(gt / "SEG", "man_seg")
    tra = [tra_all.read(t) for t in frames]
    seg = [seg_all.read(seg_all.indices.index(t)) for t in frames]
    current = [w[-1] for w in windows]
    look = estimate_look(current)
    level = cell_level(current, tra, look)
    annotated = sum(len(np.unique(m)) - 1 for m in seg)
    click.echo(
        f"{name}: {look}; cells {level / look.noise:.1f} sd above; SEG scores the "
        f"{annotated} annotated cells of these frames, "
        f"{cell_level(current, seg, look) / look.noise:.1f} sd above",
        err=True,
    )
    rows = []
    for i, shift in enumerate(shifts):
        start = time.perf_counter()
        masks = segment_shifted(segmenter, windows, shift, look, level, seed, adapt)
        case = work / f"{i:02d}"
        if shift.scale != 1.0:
            shape = masks[0].shape
            truth = gt_of_frames(
                [rescale_labels(m, shift.scale, shape) for m in tra],
                [rescale_labels(m, shift.scale, shape) for m in seg],
                case / "GT",
            )
        else:
            truth = gt_of_frames(tra, seg, case / "GT")
        scores = score(masks, truth, case / "res")
        found = sum(len(np.unique(m)) - 1 for m in masks)
        true = sum(len(np.unique(m)) - 1 for m in tra)
        rows.append(
            {
                "data": name,
                "adapted": adapt,
                "family": shift.family,
                "level": shift.level,
                "shift": shift.label,
                "SEG": scores["SEG"],
                "DET": scores["DET"],
                "objects/cell": found / max(true, 1),
                "seconds": time.perf_counter() - start,
            }
        )
        click.echo(
            f"  {shift.label}: SEG {scores['SEG']:.3f} DET {scores['DET']:.3f}, "
            f"{found / max(true, 1):.2f} objects per true cell",
            err=True,
        )
    return rows


def held_out_seg_frames(model: Path, data: Path, most: int) -> list[int]:
    """Up to `most` held-out frames with SEG ground truth, spread over the held-out span."""
    first = first_unseen_frame(model)
    annotated = [t for t in open_masks(data / "01_GT" / "SEG", "man_seg").indices if t >= first]
    if len(annotated) <= most:
        return annotated
    pick = np.linspace(0, len(annotated) - 1, most).round().astype(int)
    return [annotated[i] for i in pick]


def simulated_looks(params: Path, work: Path, seed: int, adapt: bool = False) -> list[dict]:
    """Each preset with shipped models, `DRAWS` sequences of a look drawn from `LOOK_RANGES`."""
    rows = []
    rng = np.random.default_rng(seed)
    none = standard_shifts()[0]
    for name in REAL:
        model = params / name / "seg"
        if not model.is_dir():
            continue
        base = get_preset(name)
        for draw in range(DRAWS):
            factors = {k: float(rng.uniform(*r)) for k, r in LOOK_RANGES.items()}
            preset = replace(
                base,
                frames=3,
                seg_fraction=1.0,
                shape=SIM_SIZE[name],
                cells=max(3, round(base.cells * np.prod(SIM_SIZE[name]) / np.prod(base.shape))),
                **{k: getattr(base, k) * f for k, f in factors.items()},
            )
            out = work / f"sim-{name}-{draw}"
            simulate(out, preset, seed=int(rng.integers(1 << 30)))
            look = estimate_look(open_images(out / "01"))
            label = f"simulated, look {draw + 1} (signal/noise {look.snr:.1f})"
            rows += [
                {**row, "family": "simulated", "level": look.snr, "shift": label}
                for row in run_dataset(
                    name, out / "01", out / "01_GT", [1, 2], model, [none], out / "w", seed, adapt
                )
            ]
    return rows


def markdown(rows: list[dict]) -> str:
    """The table: one line per dataset and shift."""
    lines = ["| data | shift | SEG | DET | objects per true cell |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['shift']} | {r['SEG']:.3f} | {r['DET']:.3f} "
            f"| {r['objects/cell']:.2f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> None:
    """SEG (solid) and DET (dashed) against each shift's level, one panel per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in dict.fromkeys(r["family"] for r in rows) if f != "none"]
    columns = 4
    lines = -(-len(families) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(3.4 * columns, 3.0 * lines), sharey=True)
    for ax in np.atleast_1d(axes).ravel()[len(families) :]:
        ax.set_visible(False)
    colours = dict(zip(REAL, ("tab:blue", "tab:orange", "tab:green"), strict=True))
    for ax, family in zip(np.atleast_1d(axes).ravel(), families, strict=False):
        for data, colour in colours.items():
            base = [r for r in rows if r["data"] == data and r["family"] == "none"]
            mine = sorted(
                (r for r in rows if r["data"] == data and r["family"] == family),
                key=lambda r: r["level"],
            )
            if not mine:
                continue
            x = [r["level"] for r in mine]
            ax.plot(x, [r["SEG"] for r in mine], "o-", color=colour, label=f"{data} SEG")
            ax.plot(x, [r["DET"] for r in mine], "s--", color=colour, alpha=0.6)
            if base:
                ax.axhline(base[0]["SEG"], color=colour, lw=0.6, ls=":")
        ax.set_title(family)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if family in ("signal/noise", "simulated"):  # dimmer to the right
            ax.invert_xaxis()
            ax.set_xlabel("signal / noise")
        else:
            ax.set_xticks(sorted({r["level"] for r in rows if r["family"] == family}))
    first = np.atleast_1d(axes).ravel()[0]
    first.set_ylabel("SEG (solid), DET (dashed)")
    first.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


@click.command()
@click.option("--ctc", type=click.Path(path_type=Path), default=ROOT.parent / "shared" / "ctc")
@click.option("--params", type=click.Path(path_type=Path), default=ROOT / "parameters")
@click.option("--frames", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--simulated/--no-simulated", default=True, show_default=True)
@click.option(
    "--adapt/--no-adapt",
    default=False,
    show_default=True,
    help="Adapt smoothing, scale and contrast cap to each shifted look first, as a run does.",
)
@click.option(
    "--family",
    "families",
    multiple=True,
    help="Only these shift families (e.g. rescale; the unshifted row always runs). Repeatable.",
)
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets. Repeatable.")
@click.option("--docs", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--replot",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Only redraw the plot (next to it) from a robustness.json of an earlier run.",
)
def main(
    ctc: Path,
    params: Path,
    frames: int,
    seed: int,
    simulated: bool,
    adapt: bool,
    families: tuple[str, ...],
    datasets: tuple[str, ...],
    docs: Path | None,
    replot: Path | None,
) -> None:
    if replot is not None:
        plot(json.loads(replot.read_text()), replot.with_suffix(".png"))
        return
    rows: list[dict] = []
    shifts = [s for s in standard_shifts() if not families or s.family in {"none", *families}]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in datasets or REAL:
            model, data = params / name / "seg", ctc / name
            if not model.is_dir() or not data.is_dir():
                click.echo(f"skip {name}: no model or no data", err=True)
                continue
            chosen = held_out_seg_frames(model, data, frames)
            label = f"{name} 01, frames {','.join(map(str, chosen))}"
            click.echo(label, err=True)
            rows += run_dataset(
                name, data / "01", data / "01_GT", chosen, model, shifts, tmp / name, seed, adapt
            )
        if simulated:
            rows += simulated_looks(params, tmp, seed, adapt)
    table = markdown(rows)
    click.echo(table)
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        stem = "robustness_adapted" if adapt else "robustness"  # the shipped models as run
        plot(rows, docs / f"{stem}.png")
        (docs / f"{stem}_table.md").write_text(table + "\n")
        (docs / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
        click.echo(f"wrote {stem}.png, _table.md and .json in {docs}", err=True)


if __name__ == "__main__":
    main()

"""Segmentation benchmark: SEG, DET and frames/s on frames no model trained on.

For each dataset with a shipped model (`parameters/<Dataset>/seg`), segments the held-out
frames (those of the real sequence 01 in ../shared/ctc after every frame the model trained
or was validated on, read from its config.json; or a simulated sequence made with a seed no
training run used) with our model and with a classical baseline (Otsu
threshold + distance-transform watershed, scikit-image) in the same run, and scores both
with the CTC measures (py-ctcmetrics, through `inference.measures`). Generalisation is
checked by scoring each real-data model also on a simulated sequence of its preset, whose
intensity, noise, density and cell size differ from the sequence it trained on.

    python benchmarks/segmentation.py [--ctc ../shared/ctc] [--params parameters]
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import relabel_sequential, watershed

from inference.io import Track, open_images, open_masks, read_tracks, write_mask, write_tracks
from inference.io.sequence import frame_name
from inference.measures import evaluate
from inference.segmentation.segmenter import Segmenter, iter_segmentation

ROOT = Path(__file__).resolve().parents[1]
REAL = ("Fluo-N2DH-SIM+", "Fluo-N2DH-GOWT1", "Fluo-C2DL-MSC")
#: Simulated held-out sequences: (model folder name, simulator preset, options, seed).
SIMULATED = (
    ("Fluo-N3DH-CE-sim", "Fluo-N3DH-CE", ["--size", "35x256x320", "--frames", "6"], 9001),
    ("Fluo-N2DH-SIM+", "Fluo-N2DH-SIM+", ["--frames", "8"], 9002),
)


def otsu_watershed(frame: np.ndarray, radius: float) -> np.ndarray:
    """Classical baseline: smoothed Otsu foreground, split by distance-transform watershed."""
    smooth = gaussian(frame.astype(np.float32), sigma=max(radius / 8, 1.0))
    foreground = smooth > threshold_otsu(smooth)
    distance = ndi.distance_transform_edt(foreground)
    peaks = peak_local_max(
        distance, min_distance=max(int(radius * 0.6), 2), labels=ndi.label(foreground)[0]
    )
    markers = np.zeros(frame.shape, np.int32)
    if len(peaks):
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=foreground)
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < 0.15 * math.pi * radius**2] = 0
    return relabel_sequential(labels)[0].astype(np.uint16)


def held_out_gt(gt: Path, frames: range, out: Path) -> Path:
    """A GT folder (TRA + SEG) holding only `frames`, renumbered from 0, as the CTC lays it."""
    (out / "TRA").mkdir(parents=True)
    (out / "SEG").mkdir()
    tra = open_masks(gt / "TRA", "man_track")
    n = len(frames)
    for i, t in enumerate(frames):
        write_mask(out / "TRA" / frame_name("man_track", i, n), tra.read(t))
    seg = open_masks(gt / "SEG", "man_seg")
    for frame in seg.frames:
        if frame.index in frames:
            write_mask(
                out / "SEG" / frame_name("man_seg", frame.index - frames.start, n),
                seg.read(seg.indices.index(frame.index)),
            )
    tracks = []
    for tr in read_tracks(gt / "TRA" / "man_track.txt"):
        begin, end = max(tr.begin, frames.start), min(tr.end, frames.stop - 1)
        if begin <= end:
            parent = tr.parent if tr.parent and tr.begin >= frames.start else 0
            tracks.append(Track(tr.label, begin - frames.start, end - frames.start, parent))
    labels = {t.label for t in tracks}
    tracks = [t if t.parent in labels else Track(t.label, t.begin, t.end, 0) for t in tracks]
    write_tracks(out / "TRA" / "man_track.txt", tracks)
    return out


def write_detections(
    masks: list[np.ndarray], out: Path, prefix: str = "mask", track_file: str = "res_track.txt"
) -> Path:
    """A valid CTC result in which every object of every frame is a one-frame track (with
    `prefix="man_track", track_file="man_track.txt"`, a GT TRA folder of the same)."""
    out.mkdir(parents=True)
    tracks, offset = [], 0
    for t, labels in enumerate(masks):
        relabelled = np.where(labels > 0, labels.astype(np.int64) + offset, 0)
        ids = np.unique(relabelled[relabelled > 0])
        tracks += [Track(int(i), t, t, 0) for i in ids]
        offset = int(relabelled.max(initial=offset))
        write_mask(out / frame_name(prefix, t, len(masks)), relabelled)
    write_tracks(out / track_file, tracks)
    return out


def score(masks, gt: Path, work: Path) -> dict:
    """SEG and DET of `masks`; a method that found nothing scores 0 by the CTC definitions."""
    if not any(m.any() for m in masks):
        return {"SEG": 0.0, "DET": 0.0}
    res = write_detections(masks, work)
    return evaluate(res, gt, metrics=["SEG", "DET"])


def first_unseen_frame(model: Path) -> int:
    """The first frame after every frame the model trained or was validated on."""
    data = json.loads((model / "config.json").read_text())["training"]["data"]
    stops = [int(str(data[key]).split(":")[1]) for key in ("train_frames", "val_frames")]
    return max(stops)


def cell_radius(gt: Path) -> float:
    seg = open_masks(gt / "SEG", "man_seg")
    areas = np.concatenate([np.bincount(m.ravel())[1:] for m in seg])
    return math.sqrt(float(np.median(areas[areas > 0])) / math.pi)


def run_case(name: str, seq: Path, gt: Path, frames: range, model: Path, work: Path) -> list:
    images = open_images(seq)
    gt_held = held_out_gt(gt, frames, work / "GT")
    segmenter = Segmenter.from_folder(model)
    rows = []
    first = max(frames.start - segmenter.context_frames, 0)  # context before the first
    start = time.perf_counter()
    masks = list(iter_segmentation(_Subset(images, range(first, frames.stop)), segmenter))
    fps = (frames.stop - first) / (time.perf_counter() - start)
    masks = masks[frames.start - first :]
    ours = score(masks, gt_held, work / "ours")
    rows.append((name, "gnntrack U-Net", len(frames), ours["SEG"], ours["DET"], fps))
    radius = cell_radius(gt)
    start = time.perf_counter()
    base = [otsu_watershed(images.read(t), radius) for t in frames]
    fps = len(frames) / (time.perf_counter() - start)
    b = score(base, gt_held, work / "base")
    rows.append((name, "Otsu + watershed", len(frames), b["SEG"], b["DET"], fps))
    return rows


class _Subset:
    """The frames `frames` of a sequence, for timing (context frames taken from the subset)."""

    def __init__(self, images, frames: range) -> None:
        self.images, self.frames = images, frames
        self.ndim, self.shape, self.folder = images.ndim, images.shape, images.folder

    def __iter__(self):
        return (self.images.read(t) for t in self.frames)


def speed_512(model: Path, work: Path) -> dict[str, float]:
    """Frames/s of the whole segmentation (normalise, network, post-process) on 512x512
    frames of a simulated SIM+-like sequence, for each network precision."""
    out = work / "speed-512"
    subprocess.run(
        [sys.executable, "-m", "inference.cli", "simulate", "--out", str(out), "--preset",
         "Fluo-N2DH-SIM+", "--size", "512", "--frames", "12", "--seed", "9003"],
        check=True, capture_output=True,
    )  # fmt: skip
    images = open_images(out / "01")
    result = {}
    for precision in ("float32", "bfloat16"):
        segmenter = Segmenter.from_folder(model)
        segmenter.precision = precision
        next(iter_segmentation(images, segmenter))  # warm-up (oneDNN kernel selection)
        start = time.perf_counter()
        n = sum(1 for _ in iter_segmentation(images, segmenter))
        result[precision] = n / (time.perf_counter() - start)
    return result


def peak_memory_2048(model: Path) -> float:
    """Peak resident memory (MB) of segmenting one 2048x2048 frame, in a fresh process."""
    code = (
        "import resource, numpy as np\n"
        "from inference.segmentation.segmenter import Segmenter\n"
        f"s = Segmenter.from_folder({str(model)!r})\n"
        "f = np.random.default_rng(0).gamma(2, 50, (2048, 2048)).astype(np.uint16)\n"
        "x = s.normalize(f)\n"
        "s.labels([x] * (s.context_frames + 1), f.shape)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@click.command()
@click.option("--ctc", type=click.Path(path_type=Path), default=ROOT.parent / "shared" / "ctc")
@click.option("--params", type=click.Path(path_type=Path), default=ROOT / "parameters")
def main(ctc: Path, params: Path) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in REAL:
            model, data = params / name / "seg", ctc / name
            if not model.is_dir() or not data.is_dir():
                click.echo(f"skip {name}: no model or no data", err=True)
                continue
            n = len(open_images(data / "01"))
            held = range(first_unseen_frame(model), n)
            rows += run_case(
                f"{name} 01, frames {held.start}-{n - 1}",
                data / "01",
                data / "01_GT",
                held,
                model,
                tmp / name,
            )
        for model_name, preset, options, seed in SIMULATED:
            model = params / model_name / "seg"
            if not model.is_dir():
                click.echo(f"skip simulated {preset}: no model {model}", err=True)
                continue
            out = tmp / f"sim-{preset}"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "inference.cli",
                    "simulate",
                    "--out",
                    str(out),
                    "--preset",
                    preset,
                    "--seed",
                    str(seed),
                    *options,
                ],
                check=True,
            )
            n = len(open_images(out / "01"))
            rows += run_case(
                f"simulated {preset} (seed {seed})",
                out / "01",
                out / "01_GT",
                range(n),
                model,
                tmp / f"case-{preset}",
            )
    header = ("data", "method", "frames", "SEG", "DET", "frames/s")
    click.echo("| " + " | ".join(header) + " |")
    click.echo("|" + "---|" * len(header))
    for r in rows:
        click.echo(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.1f} |")
    sim = params / "Fluo-N2DH-SIM+" / "seg"
    if sim.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            fps = speed_512(sim, Path(tmp))
        click.echo(
            f"\nFluo-N2DH-SIM+ model, 512x512 frames: {fps['float32']:.1f} frames/s (float32), "
            f"{fps['bfloat16']:.1f} frames/s (bfloat16)"
        )
        click.echo(f"peak memory, one 2048x2048 frame: {peak_memory_2048(sim):.0f} MB")
    click.echo(
        f"max RSS of this run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Measure how much smoothing helps a segmenter on noisier copies of its validation frames.

Another sequence of a dataset may hold its cells at a fraction of the training sequence's
signal behind the same camera noise (`training.segmentation.looks.compress_signal`). Some
models shrug it off, others cut cells into pieces or lose the faint ones. For each loss of
signal the frames are pressed to, the model segments them after Gaussian smoothing of
several widths and the width that scores best (SEG on the annotated cells, averaged with the
detection F1 against every cell's tracking marker, so pieces and misses both count) is kept:
the model's `seg_code.denoise.DenoiseRule`, which a run applies from the signal/noise it
measures on its sequence. Frames the model did not train on, and not the benchmark's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import CTCError
from inference.io import open_images, open_masks
from inference.models.folder import update_model_config
from inference.segmentation.segmenter import Segmenter
from seg_code.denoise import DenoiseRule
from seg_code.look import cell_level, cell_snr, estimate_look
from training.segmentation.looks import compress_signal
from training.segmentation.metrics import marker_counts, match_counts

#: How many times below the frames' own the cells' signal is pressed.
PRESS = (1.5, 2.0, 3.0, 4.0, 6.0)
#: Smoothing sigmas tried (px on the network's grid), besides none.
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
#: A wider smoothing must beat the best narrower one by this much (of the score) to be kept:
#: smoothing also blurs borders, and a tie is noise of the measure.
GAIN = 0.01


@dataclass
class CalibrationFrames:
    """Annotated frames with their temporal context, raw (as a run reads them)."""

    frames: list[int]  # their indices
    windows: list[list[np.ndarray]]  # per frame: its context frames, then the frame
    labels: list[np.ndarray]  # SEG masks (may annotate a subset of the cells)
    markers: list[np.ndarray | None]  # TRA markers (every cell), None where absent

    @property
    def cells(self) -> list[np.ndarray]:
        """Every cell of each frame: its markers, or its SEG masks where it has none."""
        return [m if m is not None else s for m, s in zip(self.markers, self.labels, strict=True)]


def load_calibration_frames(
    dataset: Path, seq: str, frames: range, context_frames: int
) -> CalibrationFrames:
    """The frames of `frames` with gold SEG masks in `dataset/{seq}_GT`."""
    images = open_images(dataset / seq)
    seg_dir, tra_dir = dataset / f"{seq}_GT" / "SEG", dataset / f"{seq}_GT" / "TRA"
    if not seg_dir.is_dir():
        raise CTCError(f"no {seq}_GT/SEG masks to calibrate on", dataset)
    seg = open_masks(seg_dir, "man_seg")
    tra = open_masks(tra_dir, "man_track") if tra_dir.is_dir() else None
    chosen = [t for t in seg.indices if t in frames and t < len(images)]
    if not chosen:
        raise CTCError(f"no SEG-annotated frames of {seq} in frames {frames}", dataset)
    return CalibrationFrames(
        frames=chosen,
        windows=[
            [images.read(max(t - c, 0)) for c in range(context_frames, -1, -1)] for t in chosen
        ],
        labels=[seg.read(seg.indices.index(t)) for t in chosen],
        markers=[tra.read(t) if tra is not None and t < len(tra) else None for t in chosen],
    )


def score_masks(masks: list[np.ndarray], data: CalibrationFrames) -> float:
    """(SEG + detection F1) / 2: SEG on the annotated cells, F1 against the markers (the SEG
    masks where a frame has none)."""
    iou = annotated = found = matched = cells = 0
    for pred, labels, truth in zip(masks, data.labels, data.cells, strict=True):
        s_iou, s_annotated, _, _, _ = match_counts(labels, pred)
        iou, annotated = iou + s_iou, annotated + s_annotated
        n_found, n_matched = marker_counts(truth, pred)
        found, matched = found + n_found, matched + n_matched
        cells += len(np.unique(truth)) - 1
    f1 = 2 * matched / max(found + cells, 1)
    return 0.5 * (iou / max(annotated, 1) + f1)


def segment_windows(segmenter: Segmenter, windows: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Labels of the last frame of each window, its context before it, as a run makes them."""
    return [
        segmenter.labels([segmenter.normalize(f) for f in window], window[-1].shape)
        for window in windows
    ]


def calibrate_denoise(
    segmenter: Segmenter,
    data: CalibrationFrames,
    *,
    press: Sequence[float] = PRESS,
    sigmas: Sequence[float] = SIGMAS,
    seed: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> tuple[DenoiseRule, list[dict]]:
    """The smoothing rule of `segmenter` on `data`, and one record per pressed level (how
    many times lower the cells stand above the noise, as a run measures it: `cell_snr`
    under the model's unsmoothed masks; each sigma's score; the sigma chosen)."""
    current = [w[-1] for w in data.windows]
    look = estimate_look(current)
    level = cell_level(current, data.cells, look)
    if level <= 0 or look.noise <= 0:
        raise CTCError("the calibration frames' cells do not stand above the background")
    true_snr = level / look.noise
    segmenter.smoothing = 0.0
    own = cell_snr(current, segment_windows(segmenter, data.windows), look)
    log(f"calibration frames: {look}; cells {true_snr:.1f} noise sds above ({own:.1f} as found)")
    records = []
    for k, factor in enumerate(press):
        windows = [
            [
                compress_signal(
                    f, look, level, true_snr / factor, np.random.default_rng((seed, k, i, j))
                )
                for j, f in enumerate(window)
            ]
            for i, window in enumerate(data.windows)
        ]
        scores, ratio = {}, 1.0
        for sigma in (0.0, *sigmas):
            segmenter.smoothing = sigma
            masks = segment_windows(segmenter, windows)
            scores[sigma] = score_masks(masks, data)
            if sigma == 0.0:  # as a run measures it, on the pressed frames' own look
                pressed = [w[-1] for w in windows]
                ratio = own / max(cell_snr(pressed, masks, estimate_look(pressed)), 1e-9)
        segmenter.smoothing = 0.0
        chosen = 0.0
        for sigma in sorted(scores):
            if scores[sigma] > scores[chosen] + GAIN:
                chosen = sigma
        records.append({"press": factor, "ratio": ratio, "scores": scores, "sigma": chosen})
        log(
            f"signal {factor:g}x lower (cells found {ratio:.2f}x nearer the noise): "
            + ", ".join(f"sigma {s:g} {v:.3f}" for s, v in scores.items())
            + f" -> {chosen:g}"
        )
    return rule_from_records(own, records), records


def rule_from_records(snr: float, records: list[dict]) -> DenoiseRule:
    """A rule from the records: measured ratios increasing (a level that lost no measurable
    signal/noise is dropped), sigmas never narrower at a noisier level."""
    ratios, sigmas = [], []
    for r in sorted(records, key=lambda r: r["ratio"]):
        if r["ratio"] <= 1.05 or (ratios and r["ratio"] <= ratios[-1] * 1.02):
            continue
        ratios.append(round(float(r["ratio"]), 3))
        sigmas.append(max([float(r["sigma"]), *sigmas]))
    return DenoiseRule(snr=round(float(snr), 3), ratios=ratios, sigmas=sigmas)


def write_denoise_rule(
    model_dir: Path, rule: DenoiseRule, records: list[dict], frames: list[int]
) -> None:
    """Rewrite `model_dir`'s config.json with `rule` (atomically; the weights stay)."""
    calibration = {
        "frames": frames,
        "levels": [
            {
                "press": r["press"],
                "ratio": round(r["ratio"], 3),
                "sigma": r["sigma"],
                "scores": {f"{s:g}": round(v, 4) for s, v in r["scores"].items()},
            }
            for r in records
        ],
    }
    update_model_config(
        model_dir, {"denoise": rule.to_dict()}, {"denoise_calibration": calibration}
    )

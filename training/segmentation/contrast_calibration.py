"""Choose a segmenter's contrast cap (`seg_code.contrast.ContrastRule`) on its own frames.

The cap is measured, then tried. Measured: on frames of the model's own sequence, how wide
the percentile range is in units of the typical cell's level above the background (under
the model's own masks, as a run measures it), the widest of them times `MARGIN`, so that
frames of the model's own kind keep their range. Tried: the annotated frames are shifted to
other looks (`LOOKS`), each segmented as a run does (noise and scale adapted) with and
without the cap and scored (`score_masks`); the cap is kept only where it costs no look more
than `GAIN` and gains one more than that. A model whose masks on a blurred or textured look
are not cells measures a typical "cell" in the background and would cap its way into
pieces (GOWT1 under a 3 px blur: DET 0.87 -> 0.59, until the run's guard dropped such a
cap); where that costs score without multiplying the objects (MSC under the same blur:
-0.045) the trial keeps the model without a cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from inference.errors import CTCError
from inference.models.folder import update_model_config
from inference.segmentation.adapt import (
    MaskCache,
    adapt_contrast,
    adapt_noise,
    adapt_scale_to,
    masks_without_context,
)
from inference.segmentation.segmenter import Segmenter
from seg_code.contrast import ContrastRule
from seg_code.look import cell_level, estimate_look
from seg_code.normalize import percentile_range
from training.segmentation.denoise_calibration import (
    GAIN,
    CalibrationFrames,
    score_masks,
    segment_windows,
)
from training.segmentation.looks import shift_windows, standard_shifts

#: The widest range seen on the model's frames is widened by this before it caps anything.
MARGIN = 1.25
#: The looks the cap is tried on: the model's own, a dimmer and noisier one, both contrast
#: curves (gamma 2: dim cells among bright ones, what the cap is for) and a blur.
LOOKS = ("unshifted", "signal/noise 2", "gamma 0.5", "gamma 2", "blur sigma 3 px")


def range_ratios(segmenter: Segmenter, frames: Sequence[np.ndarray]) -> list[float]:
    """Per frame: its percentile range over its typical cell's level above the background
    (cells as `segmenter` finds them, unadapted); frames without a cell are left out."""
    look = estimate_look(frames)
    low, high = segmenter.normalization["low"], segmenter.normalization["high"]
    ratios = []
    for frame in frames:
        level = cell_level([frame], masks_without_context([frame], segmenter), look)
        if level > 0:
            lo, hi = percentile_range(frame, low, high)
            ratios.append((hi - lo) / level)
    return ratios


def calibrate_contrast(
    segmenter: Segmenter,
    data: CalibrationFrames,
    own_frames: Sequence[np.ndarray],
    *,
    looks: Sequence[str] = LOOKS,
    seed: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> tuple[ContrastRule, dict]:
    """The contrast rule of `segmenter` (measured on `own_frames`, tried on `data` under
    `looks`) and the record of both: the ratios, the candidate cap, each look's score
    without and with it, and whether it was kept."""
    segmenter = replace(segmenter, smoothing=0.0, max_range=None, contrast=ContrastRule())
    ratios = range_ratios(segmenter, own_frames)
    if not ratios:
        raise CTCError("the model finds no cell above the background in its own frames")
    candidate = ContrastRule(range_per_cell=round(MARGIN * max(ratios), 3))
    log(
        f"range over the typical cell on {len(ratios)} own frames: {min(ratios):.2f}-"
        f"{max(ratios):.2f}; candidate cap {candidate.range_per_cell:g} x the typical cell"
    )
    current = [w[-1] for w in data.windows]
    look = estimate_look(current)
    level = cell_level(current, data.cells, look)
    shifts = {s.label: s for s in standard_shifts()}
    unknown = [name for name in looks if name not in shifts]
    if unknown:
        raise CTCError(f"unknown look(s) {unknown}; known: {sorted(shifts)}")
    scores: dict[str, dict[str, float]] = {}
    for k, name in enumerate(looks):
        windows = shift_windows(data.windows, shifts[name], look, level, (seed, k))
        seen = [w[-1] for w in windows]
        seen_look = estimate_look(seen)
        run, cache = replace(segmenter), MaskCache()  # masks of seen[:3] per setting
        adapt_noise(seen[:3], seen_look, run, cache=cache)
        adapt_scale_to(seen[:3], run, cache=cache)
        without = score_masks(segment_windows(run, windows), data)
        run.contrast = candidate
        cap = adapt_contrast(seen[:3], seen_look, run, cache=cache)
        with_cap = score_masks(segment_windows(run, windows), data) if cap else without
        scores[name] = {"without": round(without, 4), "with": round(with_cap, 4)}
        log(f"{name}: {without:.3f} without the cap, {with_cap:.3f} with it")
    changes = [s["with"] - s["without"] for s in scores.values()]
    worst, best = min(changes), max(changes)
    kept = worst >= -GAIN and best > GAIN
    if kept:
        log(f"cap kept: no look loses over {GAIN:g} (worst {worst:+.3f}), one gains {best:+.3f}")
    else:
        log(
            f"cap not kept: worst look {worst:+.3f}, best {best:+.3f} (it must cost none more "
            f"than {GAIN:g} and gain more than that on one)"
        )
    record = {
        "frames": list(data.frames),
        "own_frames": len(own_frames),
        "ratios": [round(r, 3) for r in ratios],
        "margin": MARGIN,
        "candidate": candidate.range_per_cell,
        "looks": scores,
        "kept": kept,
    }
    return (candidate if kept else ContrastRule()), record


def write_contrast_rule(model_dir: Path, rule: ContrastRule, record: dict) -> None:
    """Record `rule` (its `contrast` section) and the calibration in `model_dir`'s config."""
    update_model_config(model_dir, {"contrast": rule.to_dict()}, {"contrast_calibration": record})

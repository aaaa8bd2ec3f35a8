"""Run-time adaptation of a segmenter to a sequence it never saw (issue 12, item 3).

A run first measures the sequence's look (background, noise, bright-cell signal:
`seg_code.look`) on a few frames spread over it and says it in the log, then segments those
frames and adapts the segmenter, in this order: smoothing for a noisier sequence (the
model's `DenoiseRule`), the network's scale for cells of another size (the model's
`cell_diameter`), and a cap on the contrast range from the typical cell (the model's
`ContrastRule`). Each says in one log line what it measured and what it set; each has a
guard that undoes it when it would cut the cells into pieces. The benchmarks call
`adapt_to_sequence` too, so they score what a run does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click
import numpy as np

from inference.io import FrameSequence
from seg_code.look import Look, cell_level, cell_snr, estimate_look
from seg_code.normalize import percentile_range
from seg_code.postprocess import PostprocessParams

if TYPE_CHECKING:  # the segmenter module runs these: imported there, not here
    from inference.segmentation.segmenter import Segmenter

#: Below this signal/noise (bright cells over the pixel noise) a run warns that dim cells
#: may be missed: the look-shift benchmark loses detections past it.
LOW_SIGNAL = 3.0
#: A contrast cap that finds more than this many times the objects the sampled frames held
#: without it is cutting them, not finding dim cells: where the model's masks are not cells
#: (GOWT1 under a 3 px blur: 2.2 times) their "typical cell" is background. Dim cells
#: recovered among bright ones added at most 1.32 times (SIM+ at gamma 2).
CAP_MAX_GROWTH = 1.5
#: A rescale leaves the number of cells as it was (held-out SIM+ and GOWT1 at x0.75 and x1.33:
#: 0.98-1.08 times the objects); one that finds more than this many times the objects cuts
#: them instead (MSC under a 1.5 px blur, its pieces measured as small cells: 1.38 times).
SCALE_MAX_GROWTH = 1.25


def spread_frames(
    images: FrameSequence, samples: int, read: dict[int, np.ndarray] | None = None
) -> list[np.ndarray]:
    """Up to `samples` frames spread evenly over the sequence, first and last included;
    frames already in `read` (index -> frame) are not read again, new ones are added."""
    n = len(images)
    picks = sorted({round(i * (n - 1) / max(samples - 1, 1)) for i in range(min(samples, n))})
    read = {} if read is None else read
    return [read[t] if t in read else read.setdefault(t, images.read(t)) for t in picks]


def sequence_look(
    images: FrameSequence, samples: int = 5, read: dict[int, np.ndarray] | None = None
) -> Look:
    """The look of a sequence (background, noise, signal) from `samples` frames spread over
    it, measured before segmenting so the run's log says what the segmenter was given."""
    return estimate_look(spread_frames(images, samples, read))


def log_look(images: FrameSequence, read: dict[int, np.ndarray] | None = None) -> Look:
    """Estimate the sequence's look and say it on stderr (one line; a second one warns when
    the cells stand so little above the noise that dim ones may be missed)."""
    look = sequence_look(images, read=read)
    click.echo(f"look of {images.folder.name}: {look}", err=True)
    if look.snr < LOW_SIGNAL:
        click.echo(
            f"warning: bright cells stand only {look.snr:.1f} noise sds above the background "
            f"of {images.folder.name}: dim cells may be missed",
            err=True,
        )
    return look


def adapt_noise(
    frames: list[np.ndarray],
    look: Look,
    segmenter: Segmenter,
    name: str = "",
    cache: MaskCache | None = None,
) -> float:
    """Set `segmenter.smoothing` by the model's `DenoiseRule` from how far the cells of
    `frames` (a sequence of `look`, segmented unsmoothed) stand above its noise, say so on
    stderr when it smooths, and return it (0: no noisier than the model's own frames, or
    the model has no rule)."""
    segmenter.smoothing = 0.0
    if not segmenter.denoise.active or not frames:
        return 0.0
    snr = cell_snr(frames, masks_without_context(frames, segmenter, cache), look)
    segmenter.smoothing = segmenter.denoise.sigma(snr)
    if segmenter.smoothing > 0:
        click.echo(
            f"cells of {name or 'the sequence'} stand {snr:.1f} noise sds above the "
            f"background, the model's {segmenter.denoise.snr:.1f}: smoothing by sigma "
            f"{segmenter.smoothing:.2g} px (network grid) before segmenting",
            err=True,
        )
    return segmenter.smoothing


def adapt_contrast(
    frames: list[np.ndarray],
    look: Look,
    segmenter: Segmenter,
    name: str = "",
    cache: MaskCache | None = None,
) -> float | None:
    """Set `segmenter.max_range` by the model's `ContrastRule` from the typical cell of
    `frames` (a sequence of `look`, segmented as the segmenter is set), say so on stderr
    when it narrows their range, and return it (None: the model has no rule, or no cell
    was found)."""
    segmenter.max_range = None
    if not segmenter.contrast.active or not frames:
        return None
    masks = masks_without_context(frames, segmenter, cache)
    level = cell_level(frames, masks, look)
    cap = segmenter.contrast.max_range(level)
    if cap is None:
        return None
    low, high = segmenter.normalization["low"], segmenter.normalization["high"]
    widest = max(hi - lo for lo, hi in (percentile_range(f, low, high) for f in frames))
    segmenter.max_range = cap
    said = (
        f"{segmenter.contrast.range_per_cell:.1f} times the typical cell's {level:.4g} grey "
        f"levels above the background of {name or 'the sequence'}"
    )
    if cap < widest:
        found = object_count(masks)
        capped = object_count(masks_without_context(frames, segmenter, cache))
        if capped > CAP_MAX_GROWTH * max(found, 1):
            segmenter.max_range = None
            click.echo(
                f"warning: capping the contrast range of {name or 'the sequence'} at {cap:.4g} "
                f"grey levels ({said}) finds {capped} objects in the sampled frames where "
                f"{found} were found: it would cut them into pieces (was their typical cell "
                "background?), not capped",
                err=True,
            )
            return None
        click.echo(
            f"contrast range capped at {cap:.4g} grey levels ({said}; its brightest cells span "
            f"{widest / level:.1f} times it, {widest:.4g}) so that dim cells are not pressed "
            "into the noise",
            err=True,
        )
    else:
        click.echo(
            f"contrast cap {cap:.4g} grey levels ({said}): wider than the sampled frames' "
            f"range ({widest:.4g}), which they keep",
            err=True,
        )
    return cap


def median_diameter(masks: list[np.ndarray]) -> float | None:
    """Median equivalent diameter (px, in YX) of the objects of `masks`; None if none."""
    areas = []
    for labels in masks:
        if labels.ndim == 3:  # a 3D object's YX extent: its largest slice
            top = int(labels.max()) + 1
            counts = np.max([np.bincount(z.ravel(), minlength=top)[1:] for z in labels], axis=0)
        else:
            counts = np.bincount(labels.ravel())[1:]
        areas.extend(counts[counts > 0].tolist())
    return float(np.median(np.sqrt(4.0 * np.asarray(areas) / np.pi))) if areas else None


def sized_postprocess(post: PostprocessParams, factor: float) -> PostprocessParams:
    """`post` for cells `factor` times as wide: pixel counts by its square, distances by it."""
    return replace(
        post,
        min_centre_size=max(round(post.min_centre_size * factor**2), 1),
        min_cell_size=max(round(post.min_cell_size * factor**2), 1),
        edge_distance=max(round(post.edge_distance * factor), 1),
    )


def adapt_scale_to(
    frames: list[np.ndarray],
    segmenter: Segmenter,
    name: str = "",
    tolerance: float = 1.25,
    cache: MaskCache | None = None,
) -> float:
    """Set `segmenter.scale` so that the cells of `frames` reach the network at the size it
    was trained on, and return it.

    Cells of another sequence may be smaller or larger (other magnification or binning):
    the frames are segmented, the cells' median diameter compared with the training
    frames' (`cell_diameter`), and the network's resolution changed by their ratio when it
    is off by more than `tolerance` (twice at most, as the first masks were made at the
    wrong size). Real cells keep their size in frame pixels at any scale, so a rescale
    must bring them a quarter of the way nearer the trained size at least; where it does
    not (objects of one size on the network's grid whatever the scale: texture cut into
    pieces, not cells) the trained scale is kept and the log says so. A rescale also needs
    the brighter half of the cells to be off: dim cells found only in part (dim cells among
    bright ones) make the median small, while a real change of magnification changes every
    cell. Models without a recorded diameter keep their scale. Nor does a rescale that
    finds more than `SCALE_MAX_GROWTH` times the objects of the trained scale stand: a
    change of magnification leaves the number of cells as it was.
    """
    if segmenter.cell_diameter is None or not segmenter.adapt_scale or not frames:
        return segmenter.scale
    trained, post = segmenter.scale, segmenter.postprocess
    name = name or "the sequence"
    wanted = segmenter.cell_diameter * trained  # training cells' width on the network's grid
    previous: float | None = None  # |log| of the last mismatch, on the network's grid
    found: int | None = None  # objects at the trained scale
    for _ in range(2):
        masks = masks_without_context(frames, segmenter, cache)
        if found is None:
            found = object_count(masks)
        measured, bright = median_diameter(masks), median_diameter(bright_half(masks, frames))
        if measured is None or bright is None:
            break
        if 1 / tolerance <= wanted / bright / segmenter.scale <= tolerance:
            break  # the bright cells have the trained size: the small ones are dim, in part
        mismatch = abs(np.log(measured * segmenter.scale / wanted))
        if previous is not None and mismatch > 0.75 * previous:
            click.echo(
                f"warning: objects of {name} measure {measured:.0f} px across at scale "
                f"{segmenter.scale:.3g}: their size follows the scale, not the cells (is this "
                f"the model's kind of data?); segmenting at the trained scale {trained:g}",
                err=True,
            )
            segmenter.scale, segmenter.postprocess = trained, post
            break
        previous = mismatch
        # the network saw training cells cell_diameter * trained px wide; these (measured
        # in frame px, whatever the scale) reach that width at scale `target`
        target = float(np.clip(wanted / measured, trained / 4, trained * 4))
        if 1 / tolerance <= target / segmenter.scale <= tolerance:
            break
        segmenter.scale = target
        segmenter.postprocess = sized_postprocess(post, trained / segmenter.scale)
        click.echo(
            f"cells of {name} measure {measured:.0f} px across, the "
            f"model's {segmenter.cell_diameter:.0f} px: segmenting at scale "
            f"{segmenter.scale:.3g} (trained at {trained:g})",
            err=True,
        )
    if segmenter.scale != trained and found:
        rescaled = object_count(masks_without_context(frames, segmenter, cache))
        if rescaled > SCALE_MAX_GROWTH * found:
            click.echo(
                f"warning: at scale {segmenter.scale:.3g} the model finds {rescaled} objects in "
                f"the sampled frames of {name} where it found {found} at the trained scale: "
                f"the rescale cuts them (are they cells?); segmenting at the trained scale "
                f"{trained:g}",
                err=True,
            )
            segmenter.scale, segmenter.postprocess = trained, post
    return segmenter.scale


def adapt_to_sequence(
    frames: list[np.ndarray], look: Look, segmenter: Segmenter, name: str = ""
) -> None:
    """Every run-time adaptation of `segmenter` to a sequence of `look`, measured on a few
    of its `frames`, in the order a run applies them: smoothing (`adapt_noise`), then scale
    (`adapt_scale_to`), then the contrast cap (`adapt_contrast`, measured on cells found at
    that smoothing and scale). The benchmarks call this too, so they score what a run does.
    The frames are segmented once per setting the adaptations try (`MaskCache`)."""
    cache = MaskCache()
    adapt_noise(frames, look, segmenter, name, cache)
    adapt_scale_to(frames, segmenter, name, cache=cache)
    adapt_contrast(frames, look, segmenter, name, cache)


class MaskCache(dict):
    """The masks of one list of sampled frames per segmenter setting (smoothing, scale,
    contrast cap, post-processing): each adaptation segments the frames as the segmenter
    is set, and several of them look at the same setting (the noise adaptation's masks are
    the scale adaptation's first; the scale guard's are the contrast cap's)."""

    @staticmethod
    def key(segmenter: Segmenter) -> tuple:
        return (
            id(segmenter.model),
            segmenter.smoothing,
            segmenter.scale,
            segmenter.max_range,
            segmenter.postprocess,
            tuple(sorted(segmenter.normalization.items())),
            segmenter.tile,
            segmenter.margin,
            segmenter.precision,
            segmenter.flip_average,
        )


def masks_without_context(
    frames: list[np.ndarray], segmenter: Segmenter, cache: MaskCache | None = None
) -> list[np.ndarray]:
    """The cells `segmenter` finds in each of `frames` as it is set (each its own context);
    with a `cache` (of these frames), each setting's masks are made once."""
    key = MaskCache.key(segmenter) if cache is not None else None
    if cache is not None and key in cache:
        return cache[key]
    masks = [
        segmenter.labels([segmenter.normalize(f)] * (segmenter.context_frames + 1), f.shape)
        for f in frames
    ]
    if cache is not None:
        cache[key] = masks
    return masks


def object_count(masks: list[np.ndarray]) -> int:
    """How many objects `masks` hold together (the segmenter's labels are consecutive)."""
    return sum(int(m.max()) for m in masks)


def bright_half(masks: list[np.ndarray], frames: list[np.ndarray]) -> list[np.ndarray]:
    """`masks` with only the brighter half of the objects of each frame (by mean grey level
    in `frames`, the middle one kept): the cells found whole even when dim ones are not."""
    kept = []
    for labels, frame in zip(masks, frames, strict=True):
        flat = labels.ravel().astype(np.int64)
        areas = np.bincount(flat)
        ids = np.flatnonzero(areas[1:]) + 1
        if ids.size == 0:
            kept.append(labels)
            continue
        sums = np.bincount(flat, weights=np.asarray(frame, dtype=np.float64).ravel())
        means = sums[ids] / areas[ids]
        dim = ids[np.argsort(means, kind="stable")[: ids.size // 2]]
        kept.append(np.where(np.isin(labels, dim), 0, labels))
    return kept

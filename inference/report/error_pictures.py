"""Small pictures of where each error happens: the frame before and the frame of the error,
cropped around its position, with the result's outlines and ids as in the movie."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from inference.cells.positions import frame_positions
from inference.io import FrameSequence, MaskSequence
from inference.progress import progress
from inference.report.overlay_movie import (
    MovieOptions,
    draw_overlay,
    intensity_range,
    load_font,
    project,
    to_uint8,
)
from inference.report.tracking_errors import TrackingError


def error_crops(
    images: FrameSequence,
    masks: MaskSequence,
    errors: Sequence[TrackingError],
    folder: Path,
    half: int = 40,
    zoom: int = 2,
) -> dict[int, str]:
    """Write `crop_###.png` per error (index in `errors`); returns index -> file name."""
    low, high = intensity_range(images)
    wanted: dict[int, list[int]] = defaultdict(list)  # frame -> error indices needing it
    for i, error in enumerate(errors):
        if len(error.position) >= 2:
            for t in (error.frame - 1, error.frame):
                if 0 <= t < len(images):
                    wanted[t].append(i)
    pieces: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    font = load_font(11)
    options = MovieOptions(tail=0)
    for t in progress(sorted(wanted), len(wanted), "error pictures"):
        gray = to_uint8(project(images.read(t)), low, high)
        mask = project(masks.read(t))
        for i in wanted[t]:
            y, x = errors[i].position[-2:]
            box = _box(y, x, half, mask.shape)
            crop_mask = mask[box]
            table = frame_positions(crop_mask, t)
            points = {
                int(k): (cy * zoom, cx * zoom)
                for k, cy, cx in zip(table["label"], table["y"], table["x"], strict=True)
            }
            size = (crop_mask.shape[0] * zoom, crop_mask.shape[1] * zoom)
            pieces[i][t] = draw_overlay(gray[box], crop_mask, size, points, {}, t, font, options)
    names = {}
    for i, frames in pieces.items():
        parts = [frames[t] for t in sorted(frames)]
        height = max(p.shape[0] for p in parts)
        row = [
            np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0)), constant_values=255)
            for p in parts
        ]
        name = f"crop_{i:03d}.png"
        Image.fromarray(np.concatenate(row, axis=1)[:, :-4]).save(folder / name)
        names[i] = name
    return names


def _box(y: float, x: float, half: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """A window of about 2*half pixels around (y, x), shifted to stay inside the frame."""
    out = []
    for centre, size in ((y, shape[0]), (x, shape[1])):
        width = min(2 * half, size)
        start = int(round(centre)) - width // 2
        start = min(max(start, 0), size - width)
        out.append(slice(start, start + width))
    return out[0], out[1]

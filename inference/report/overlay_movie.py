"""Overlay movies of a result: raw frames, each cell outlined in its track's colour, its id
drawn, and a tail through its last positions (a daughter's tail starts in its mother's).

3D frames are shown as maximum projections along z. Written as an animated GIF (Pillow,
with one fixed palette so frames compress well and colours never flicker) or, where the
`imageio-ffmpeg` package is installed, as an MP4 (imageio).
"""

from __future__ import annotations

import colorsys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inference.cells.positions import frame_positions
from inference.errors import CTCError
from inference.io import FrameSequence, MaskSequence, Track
from inference.io.atomic import atomic_file
from inference.progress import progress

#: Distinct track colours (RGB): 40 hues at three brightness levels, hues interleaved so
#: that consecutive ids differ strongly.
TRACK_COLOURS = np.asarray(
    [
        [round(255 * c) for c in colorsys.hsv_to_rgb((k * 0.618034) % 1.0, sat, val)]
        for sat, val in ((0.85, 1.0), (0.6, 1.0), (1.0, 0.8))
        for k in range(40)
    ],
    np.uint8,
)


def track_colour(label: int) -> tuple[int, int, int]:
    """The colour of track `label` in movies and snapshots."""
    r, g, b = TRACK_COLOURS[label % len(TRACK_COLOURS)]
    return int(r), int(g), int(b)


@dataclass(frozen=True)
class MovieOptions:
    """How a movie looks: frames per second, tail length (frames), size, frame step."""

    fps: float = 5.0
    tail: int = 8
    scale: float | None = None  # None: 1, or smaller so the longest side is <= max_size
    max_size: int = 768
    every: int = 1
    ids: bool = True


def write_movie(
    images: FrameSequence,
    masks: MaskSequence,
    tracks: list[Track],
    path: str | Path,
    options: MovieOptions | None = None,
) -> Path:
    """Render every `options.every`-th frame and write a .gif (or .mp4) movie to `path`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise CTCError("a movie is written as .gif or .mp4", path)
    if len(images) != len(masks):
        raise CTCError(f"{len(masks)} mask frames but {len(images)} image frames", masks.folder)
    options = options or MovieOptions()
    frames = render_frames(images, masks, tracks, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    write = _write_gif if suffix == ".gif" else _write_mp4
    return atomic_file(path, lambda tmp: write(tmp, frames, options.fps))


def render_frames(
    images: FrameSequence,
    masks: MaskSequence,
    tracks: list[Track],
    options: MovieOptions | None = None,
) -> Iterator[np.ndarray]:
    """The overlay frames (H, W, 3 uint8), one by one."""
    options = options or MovieOptions()
    parents = {t.label: t.parent for t in tracks}
    low, high = intensity_range(images)
    shape = images.shape[-2:]
    scale = options.scale or min(1.0, options.max_size / max(shape))
    size = (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))
    font = load_font(max(9, round(min(size) / 45)))
    history: dict[int, deque] = {}
    chosen = range(0, len(images), max(1, options.every))
    for t in progress(chosen, len(chosen), "movie"):
        image, mask = project(images.read(t)), masks.read(t)
        table = frame_positions(mask, t)
        mask = project(mask)
        points = {
            int(label): (y * scale, x * scale)
            for label, y, x in zip(table["label"], table["y"], table["x"], strict=True)
        }
        for label, point in points.items():
            if label not in history:
                start = history.get(parents.get(label, 0), ())
                history[label] = deque(start, maxlen=options.tail + 1)
            history[label].append(point)
        for label in [k for k in history if k not in points]:
            del history[label]  # gone (or divided): daughters already copied the tail
        gray = to_uint8(image, low, high)
        yield draw_overlay(gray, mask, size, points, history, t, font, options)


def draw_overlay(
    gray: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int],
    points: dict[int, tuple[float, float]],
    tails: dict[int, deque],
    frame: int,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    options: MovieOptions | None = None,
) -> np.ndarray:
    """One overlay frame: `gray` and `mask` resized to `size`, outlines, tails, ids, frame."""
    canvas = Image.fromarray(gray).resize(size[::-1], Image.Resampling.BILINEAR).convert("RGB")
    rows = np.minimum((np.arange(size[0]) + 0.5) * mask.shape[0] / size[0], mask.shape[0] - 1)
    cols = np.minimum((np.arange(size[1]) + 0.5) * mask.shape[1] / size[1], mask.shape[1] - 1)
    small = mask[rows.astype(int)][:, cols.astype(int)]
    rgb = np.asarray(canvas).copy()
    edge = outline(small)
    rgb[edge] = TRACK_COLOURS[small[edge] % len(TRACK_COLOURS)]
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    for label, tail in tails.items():
        if len(tail) > 1:
            draw.line([(x, y) for y, x in tail], fill=track_colour(label), width=2)
    if options is None or options.ids:
        for label, (y, x) in points.items():
            draw.text(
                (x, y), str(label), fill=(255, 255, 255), font=font, anchor="mm",
                stroke_width=1, stroke_fill=(0, 0, 0),
            )  # fmt: skip
    stamp = f"t = {frame}"
    draw.rectangle(draw.textbbox((3, 2), stamp, font=font), fill=(0, 0, 0))
    draw.text((3, 2), stamp, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a label image that touch another label or the background (inner outline)."""
    edge = np.zeros(mask.shape, bool)
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    return edge & (mask > 0)


def intensity_range(images: FrameSequence, samples: int = 5) -> tuple[float, float]:
    """Display range of a sequence: 0.5 and 99.8 percentiles of a few of its frames."""
    picks = np.unique(np.linspace(0, len(images) - 1, min(samples, len(images))).astype(int))
    values = np.concatenate([project(images.read(int(t))).ravel()[::7] for t in picks])
    low, high = np.percentile(values.astype(np.float64), [0.5, 99.8])
    return float(low), float(max(high, low + 1e-6))


def project(array: np.ndarray) -> np.ndarray:
    """A 3D frame's maximum projection along z; a 2D frame as it is."""
    return array.max(axis=0) if array.ndim == 3 else array


def to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Intensities low..high mapped to 0..255."""
    scaled = (image.astype(np.float32) - low) / (high - low)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at `size` pixels (no font file needed)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _palette() -> Image.Image:
    """64 grey levels plus the track colours plus white: every colour a frame is drawn in
    (64 levels, not 256: a noisy background then compresses about twice as well)."""
    grays = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[:, None], 3, axis=1)
    colours = np.concatenate([grays, TRACK_COLOURS, [[255, 255, 255]]]).astype(np.uint8)
    flat = np.zeros(256 * 3, np.uint8)
    flat[: colours.size] = colours.ravel()
    image = Image.new("P", (1, 1))
    image.putpalette(flat.tolist())
    return image


def _write_gif(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    palette = _palette()
    pictures = [
        Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE)
        for frame in frames
    ]
    if not pictures:
        raise CTCError("no frames to write", path)
    pictures[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=round(1000 / fps),
        loop=0,
    )


def _write_mp4(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401
    except ImportError as exc:
        raise CTCError(
            "an MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); or write a .gif",
            path,
        ) from exc
    with imageio.get_writer(path, format="FFMPEG", fps=fps, macro_block_size=2) as writer:
        for frame in frames:
            writer.append_data(_even(frame))


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264's 4:2:0 chroma needs them)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")

"""Single TIFF files: read (any CTC compression), peek at the header, write atomically.

tifffile logs what it finds wrong in a damaged file (a truncated stack's "invalid page
offset") as warnings and goes on; those are collected while we read, never printed, and a
damaged file becomes one CTCError naming it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from inference.errors import CTCError
from inference.io.atomic import atomic_file

#: Pixel types a CTC frame may have. Anything else (complex, bool, RGB) is refused.
IMAGE_DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")


#: What tifffile says about a file that is damaged (cut short, overwritten).
_DAMAGE = re.compile(r"invalid|corrupt|truncat|failed|unexpected end|out of range", re.I)
_COLLECTING = threading.local()


def _collect(record: logging.LogRecord) -> bool:
    """Filter of tifffile's logger: while this thread reads a file, keep its messages for
    us instead of printing them."""
    collected = getattr(_COLLECTING, "messages", None)
    if collected is None:
        return True
    collected.append(record.getMessage())
    return False


logging.getLogger("tifffile").addFilter(_collect)


@contextmanager
def _tifffile_messages() -> Iterator[list[str]]:
    """What tifffile logs in this thread during the block (then not printed)."""
    outer = getattr(_COLLECTING, "messages", None)
    _COLLECTING.messages = messages = []
    try:
        yield messages
    finally:
        _COLLECTING.messages = outer


def _refuse_damage(messages: list[str], path: Path) -> None:
    damage = [m for m in messages if _DAMAGE.search(m)]
    if damage:
        reason = re.sub(r"^<[^>]*>\s*", "", damage[0])  # drop tifffile's "<TiffPages @8>"
        raise CTCError(f"not a readable TIFF, truncated or corrupt? ({reason})", path)


def _squeeze_leading(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop leading singleton axes (ImageJ stacks often carry them), keep YX / ZYX."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def _check_geometry(shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
    if len(shape) not in (2, 3):
        raise CTCError(
            f"expected a 2D (YX) or 3D (ZYX) single-channel image, got shape {shape}", path
        )
    if np.dtype(dtype).name not in IMAGE_DTYPES:
        raise CTCError(f"unsupported pixel type {np.dtype(dtype).name}", path)


def tiff_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a TIFF without decoding its pixels (cheap on long sequences)."""
    path = Path(path)
    try:
        with _tifffile_messages() as messages, tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype = _squeeze_leading(series.shape), np.dtype(series.dtype)
            len(tif.pages)  # walks the page chain: a cut-short stack shows here
    except CTCError:
        raise
    except Exception as exc:  # tifffile raises many types on damaged files
        raise CTCError(f"not a readable TIFF ({exc})", path) from exc
    _refuse_damage(messages, path)
    _check_geometry(shape, dtype, path)
    return shape, dtype


def read_tiff(path: str | Path) -> np.ndarray:
    """Read one 2D or 3D frame; a truncated or corrupt file raises CTCError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CTCError("file not found", path)
    try:
        with _tifffile_messages() as messages:
            array = tifffile.imread(path)
    except Exception as exc:
        raise CTCError(f"not a readable TIFF, truncated or corrupt? ({exc})", path) from exc
    _refuse_damage(messages, path)
    array = array.reshape(_squeeze_leading(array.shape))
    _check_geometry(array.shape, array.dtype, path)
    return array


def write_tiff(path: str | Path, array: np.ndarray, compression: str | None = "lzw") -> None:
    """Write a frame atomically (temporary file, then rename): never a half-written file.

    LZW is lossless and is what the CTC ships its own data in, so every CTC tool reads it.
    """
    array = np.asarray(array)
    _check_geometry(array.shape, array.dtype, Path(path))
    atomic_file(
        path,
        lambda tmp: tifffile.imwrite(tmp, array, compression=compression, photometric="minisblack"),
    )


def write_mask(path: str | Path, labels: np.ndarray) -> None:
    """Write a label mask as the CTC demands: uint16, 0 = background, atomically.

    LZW-compressed like the CTC's own masks: Deflate writes 4-15x faster, but LZW is the
    compression every CTC evaluation tool is known to read, and a result the challenge cannot
    score is worth nothing.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise CTCError(f"label mask must be integer, got {labels.dtype}", path)
    fits = labels.dtype.itemsize <= 2 and labels.dtype.kind == "u"  # uint8, uint16 always fit
    if not fits and labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        raise CTCError("labels must lie in 0..65535 to fit the CTC's uint16 masks", path)
    write_tiff(path, labels.astype(np.uint16, copy=False))

"""CTC frame folders (`t000.tif`, `mask000.tif`, `man_track000.tif`, `man_seg000.tif`), streamed.

A sequence is opened by listing its files and reading only their headers, so a 1000-frame
sequence is checked up front (names, numbering, 2D/3D, shape) but never held in memory whole.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import CTCError
from inference.io.tiff import read_tiff, tiff_header

#: File-name prefixes of the CTC layout: raw frames, results, GT tracking and GT segmentation.
PREFIXES = ("t", "mask", "man_track", "man_seg")


@dataclass(frozen=True)
class FrameFile:
    """One frame of a sequence: its CTC time index and its file."""

    index: int
    path: Path


def list_frames(folder: str | Path, prefix: str, *, contiguous: bool = True) -> list[FrameFile]:
    """The frames of `folder` named `<prefix>NNN.tif` (3 or 4 digits), sorted by time.

    Other `.tif` files are an error (a misnamed frame must not vanish silently); non-TIFF
    files such as `man_track.txt` are ignored. With `contiguous`, numbering must run 0, 1, ...
    without gaps, as in every CTC image and result folder.
    """
    folder = Path(folder)
    if not folder.exists():
        raise CTCError("folder not found", folder)
    if not folder.is_dir():
        raise CTCError("not a folder", folder)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d{{3,4}})\.tiff?$")
    frames: dict[int, FrameFile] = {}
    widths: set[int] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in (".tif", ".tiff"):
            continue
        match = pattern.match(path.name)
        if match is None:
            raise CTCError(
                f"not a CTC frame name (expected {prefix}000.tif or {prefix}0000.tif)", path
            )
        index = int(match.group(1))
        if index in frames:
            raise CTCError(f"frame {index} appears twice ({frames[index].path.name})", path)
        widths.add(len(match.group(1)))
        frames[index] = FrameFile(index, path)
    if not frames:
        raise CTCError(f"no frames named {prefix}000.tif ... in this folder", folder)
    if len(widths) > 1:
        raise CTCError("frame names mix 3- and 4-digit numbering", folder)
    ordered = [frames[i] for i in sorted(frames)]
    if contiguous:
        for expected, frame in enumerate(ordered):
            if frame.index != expected:
                raise CTCError(
                    f"frame {expected} is missing (frames must be numbered 0, 1, 2, ...)", folder
                )
    return ordered


class InputWarning(UserWarning):
    """Something odd but workable in the input (the CLI prints it as one line)."""


def _nan_as_background(array: np.ndarray, warn: bool, frame: FrameFile) -> np.ndarray:
    """A float frame with its NaN pixels (no measurement: masked or saturated detector
    areas) set to the frame's lowest value, i.e. background; a warning names the frame."""
    if array.dtype.kind != "f":
        return array
    nan = np.isnan(array)
    if not nan.any():
        return array
    finite = array[~nan]
    fill = finite.min() if finite.size else 0
    if warn:
        warnings.warn(
            f"{frame.path}: frame {frame.index} has {int(nan.sum())} NaN pixels; they are "
            "treated as background (set to the frame's lowest value)",
            InputWarning,
            stacklevel=3,
        )
    return np.where(nan, fill, array).astype(array.dtype, copy=False)


class FrameSequence:
    """A folder of CTC frames with a common shape, read one frame at a time."""

    def __init__(self, folder: str | Path, prefix: str = "t", *, contiguous: bool = True) -> None:
        self.folder = Path(folder)
        self.prefix = prefix
        self.frames = list_frames(self.folder, prefix, contiguous=contiguous)
        self.shape, self.dtype = tiff_header(self.frames[0].path)
        self._warned: set[int] = set()  # frames whose NaN pixels were reported
        for frame in self.frames[1:]:
            shape, _ = tiff_header(frame.path)
            if len(shape) != len(self.shape):
                raise CTCError(
                    f"frame {frame.index} is {len(shape)}D but frame {self.frames[0].index} "
                    f"is {len(self.shape)}D (2D and 3D frames mixed)",
                    frame.path,
                )
            if shape != self.shape:
                raise CTCError(
                    f"frame {frame.index} has shape {shape}, the sequence has {self.shape}",
                    frame.path,
                )

    @property
    def ndim(self) -> int:
        """2 for YX frames, 3 for ZYX stacks."""
        return len(self.shape)

    @property
    def indices(self) -> list[int]:
        return [frame.index for frame in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, position: int) -> np.ndarray:
        """The frame at list position `position` (equal to its time index when contiguous)."""
        frame = self.frames[position]
        array = read_tiff(frame.path)
        if array.shape != self.shape:
            raise CTCError(f"frame {frame.index} changed shape to {array.shape}", frame.path)
        array = _nan_as_background(array, frame.index not in self._warned, frame)
        if array.dtype.kind == "f":
            self._warned.add(frame.index)
        return array

    def __iter__(self) -> Iterator[np.ndarray]:
        for position in range(len(self.frames)):
            yield self.read(position)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.folder)!r}, prefix={self.prefix!r}, "
            f"frames={len(self)}, shape={self.shape}, dtype={self.dtype})"
        )


class MaskSequence(FrameSequence):
    """Label masks (`mask`, `man_track` or `man_seg` frames): integer pixels, 0 = background."""

    def __init__(
        self, folder: str | Path, prefix: str = "mask", *, contiguous: bool = True
    ) -> None:
        super().__init__(folder, prefix, contiguous=contiguous)
        if not np.issubdtype(self.dtype, np.integer):
            raise CTCError(
                f"label masks must have an integer type, found {self.dtype}", self.frames[0].path
            )


def open_images(folder: str | Path) -> FrameSequence:
    """The raw frames `tNNN.tif` of a CTC sequence folder such as `Dataset/01`."""
    return FrameSequence(folder, "t")


def open_masks(folder: str | Path, prefix: str | None = None) -> MaskSequence:
    """Label masks of a result (`mask`), GT/TRA (`man_track`) or GT/SEG (`man_seg`) folder.

    Without `prefix`, it is taken from the files found; SEG folders may hold a subset of frames.
    """
    folder = Path(folder)
    if prefix is None:
        prefix = _detect_mask_prefix(folder)
    return MaskSequence(folder, prefix, contiguous=prefix != "man_seg")


def _detect_mask_prefix(folder: Path) -> str:
    if not folder.is_dir():
        raise CTCError("folder not found" if not folder.exists() else "not a folder", folder)
    for prefix in ("mask", "man_track", "man_seg"):
        if any(folder.glob(f"{prefix}[0-9][0-9][0-9]*.tif")):
            return prefix
    raise CTCError("no mask files (mask000.tif, man_track000.tif or man_seg000.tif)", folder)


def frame_name(prefix: str, index: int, n_frames: int) -> str:
    """CTC file name of frame `index`: 3 digits, or 4 once a sequence reaches 1000 frames."""
    digits = 4 if n_frames > 1000 else 3
    return f"{prefix}{index:0{digits}d}.tif"

"""CTC file layout: frame folders, label masks, track files and atomic result folders.

Knows no torch; every error a user can cause is a `CTCError` naming the file.
"""

from inference.io.atomic import atomic_output_dir
from inference.io.result import LabelSpans, tracks_from_masks, write_result
from inference.io.sequence import (
    FrameFile,
    FrameSequence,
    MaskSequence,
    frame_name,
    list_frames,
    open_images,
    open_masks,
)
from inference.io.tiff import read_tiff, tiff_header, write_mask, write_tiff
from inference.io.tracks import Track, format_tracks, parse_tracks, read_tracks, write_tracks

__all__ = [
    "FrameFile",
    "FrameSequence",
    "LabelSpans",
    "MaskSequence",
    "Track",
    "atomic_output_dir",
    "format_tracks",
    "frame_name",
    "list_frames",
    "open_images",
    "open_masks",
    "parse_tracks",
    "read_tiff",
    "read_tracks",
    "tiff_header",
    "tracks_from_masks",
    "write_mask",
    "write_result",
    "write_tiff",
    "write_tracks",
]

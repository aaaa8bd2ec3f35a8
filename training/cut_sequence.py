"""A stretch of frames of a CTC sequence, with its TRA ground truth, as a dataset of its own:
held-out frames to benchmark on, or training frames to fit on."""

from __future__ import annotations

from pathlib import Path

from inference.io import (
    Track,
    frame_name,
    open_images,
    open_masks,
    read_tracks,
    write_mask,
    write_tiff,
    write_tracks,
)


def cut_sequence(dataset: Path, seq: str, start: int, stop: int, out: Path) -> Path:
    """Frames start..stop-1 of dataset/seq with their TRA ground truth, as a new dataset."""
    images = open_images(dataset / seq)
    tra = open_masks(dataset / f"{seq}_GT" / "TRA", "man_track")
    stop = min(stop, len(images))
    n = stop - start
    (out / "01").mkdir(parents=True)
    (out / "01_GT" / "TRA").mkdir(parents=True)
    for k, t in enumerate(range(start, stop)):
        write_tiff(out / "01" / frame_name("t", k, n), images.read(t))
        write_mask(out / "01_GT" / "TRA" / frame_name("man_track", k, n), tra.read(t))
    kept = {}
    for track in read_tracks(dataset / f"{seq}_GT" / "TRA" / "man_track.txt"):
        if track.end < start or track.begin >= stop:
            continue
        kept[track.label] = track
    tracks = [
        Track(
            t.label,
            max(t.begin, start) - start,
            min(t.end, stop - 1) - start,
            t.parent if t.parent in kept and t.begin >= start else 0,
        )
        for t in kept.values()
    ]
    write_tracks(out / "01_GT" / "TRA" / "man_track.txt", tracks)
    return out

"""A small simulated sequence that holds every lineage event a tracker must get right.

Divisions, cells entering and leaving the field come from the simulator (Fluo-N2DH-SIM+
look, so the shipped SIM+ models apply); one cell is then removed from one frame of the GT
masks, a missed detection, and its track is split the CTC way (a new track from the next
frame whose parent is the old one). Tracking the GT masks must bridge that gap.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from inference.io import Track, read_tiff, read_tracks, write_mask, write_tracks
from training.simulator import get_preset, simulate

FRAMES = 12
SIZE = (224, 224)
SEED = 36  # chosen so that the sequence holds all events listed in `Scenario`
GAP_FRAME = 5


@dataclass(frozen=True)
class Scenario:
    """A CTC dataset (`root`/01, `root`/01_GT) and the events it was built to hold."""

    root: Path
    gap_track: int  # GT track whose cell is missing in GAP_FRAME (ends at GAP_FRAME - 1)
    gap_successor: int  # GT track that continues it from GAP_FRAME + 1
    gap_centre: tuple[int, int]  # a pixel of the gap cell in GAP_FRAME + 1
    before_centre: tuple[int, int]  # a pixel of the gap cell in GAP_FRAME - 1

    @property
    def images(self) -> Path:
        return self.root / "01"

    @property
    def gt(self) -> Path:
        return self.root / "01_GT"

    @property
    def uncut_gt(self) -> Path:
        """The simulator's GT before the gap was cut: the truth for a segmenter's result."""
        return self.root / "uncut_GT"

    @property
    def masks(self) -> Path:
        return self.gt / "TRA"

    def tracks(self) -> list[Track]:
        return read_tracks(self.masks / "man_track.txt")


def _centre(mask: np.ndarray, label: int) -> tuple[int, int]:
    """The pixel of `label` nearest its centroid (a pixel surely inside the cell)."""
    ys, xs = np.nonzero(mask == label)
    k = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
    return int(ys[k]), int(xs[k])


def _gap_candidate(tracks: list[Track], masks: Path) -> int:
    """A track alive well before and after GAP_FRAME, far from the border, not a mother."""
    mothers = {t.parent for t in tracks}
    mask = read_tiff(masks / f"man_track{GAP_FRAME:03d}.tif")
    for track in tracks:
        if track.begin > GAP_FRAME - 2 or track.end < GAP_FRAME + 2 or track.label in mothers:
            continue
        y, x = _centre(mask, track.label)
        if min(y, x, SIZE[0] - y, SIZE[1] - x) > 40:
            return track.label
    raise AssertionError("the simulated sequence holds no track to cut a gap into")


def _cut_gap(masks: Path, tracks: list[Track], label: int) -> int:
    """Remove `label` from GAP_FRAME and split its track; returns the successor's label."""
    path = masks / f"man_track{GAP_FRAME:03d}.tif"
    mask = read_tiff(path)
    write_mask(path, np.where(mask == label, 0, mask))
    successor = max(t.label for t in tracks) + 1
    old = next(t for t in tracks if t.label == label)
    for t in range(GAP_FRAME + 1, old.end + 1):
        frame = masks / f"man_track{t:03d}.tif"
        mask = read_tiff(frame)
        write_mask(frame, np.where(mask == label, successor, mask))
    split = [replace(t, end=GAP_FRAME - 1) if t.label == label else t for t in tracks]
    split.append(Track(successor, GAP_FRAME + 1, old.end, label))
    write_tracks(masks / "man_track.txt", split)
    return successor


def make_scenario(root: Path) -> Scenario:
    """Simulate the sequence into `root` and cut the gap (about a second)."""
    preset = get_preset("Fluo-N2DH-SIM+").with_options(
        frames=FRAMES, size=SIZE, cells=6, seg_fraction=0.25
    )
    simulate(root, replace(preset, division_rate=0.04, entry_rate=0.6), SEED)
    shutil.copytree(root / "01_GT", root / "uncut_GT")
    masks = root / "01_GT" / "TRA"
    tracks = read_tracks(masks / "man_track.txt")
    label = _gap_candidate(tracks, masks)
    before = _centre(read_tiff(masks / f"man_track{GAP_FRAME - 1:03d}.tif"), label)
    successor = _cut_gap(masks, tracks, label)
    after = _centre(read_tiff(masks / f"man_track{GAP_FRAME + 1:03d}.tif"), successor)
    return Scenario(root, label, successor, after, before)


def plain_track(scenario: Scenario, frame: int) -> int:
    """A GT track alive two frames around `frame`, not a mother, 30 px from the border: a
    cell to damage in that frame."""
    tracks = read_tracks(scenario.uncut_gt / "TRA" / "man_track.txt")
    mothers = {t.parent for t in tracks}
    mask = read_tiff(scenario.uncut_gt / "TRA" / f"man_track{frame:03d}.tif")
    for track in tracks:
        alive = track.begin < frame - 1 and frame + 2 < track.end
        if track.label in mothers or not alive:
            continue
        ys, xs = np.nonzero(mask == track.label)
        if min(ys.min(), xs.min(), mask.shape[0] - ys.max(), mask.shape[1] - xs.max()) > 30:
            return track.label
    raise AssertionError("no plain track to damage")


def plain_pair(
    scenario: Scenario, frame: int, beside_division: bool = False
) -> tuple[int, int, int]:
    """Two plain tracks (`plain_track`'s kind, border aside) less than 8 px apart in
    `frame`, and the gap between them in pixels: the nearest two, or with
    `beside_division` the two nearest a daughter born the frame before (a real division
    next to the merge)."""
    tracks = read_tracks(scenario.uncut_gt / "TRA" / "man_track.txt")
    mothers = {t.parent for t in tracks}
    plain = [
        t.label
        for t in tracks
        if t.label not in mothers and t.begin < frame - 2 and frame + 2 < t.end
    ]
    daughters = [t.label for t in tracks if t.parent and t.begin == frame - 1]
    mask = read_tiff(scenario.uncut_gt / "TRA" / f"man_track{frame:03d}.tif")
    to_daughter = ndi.distance_transform_edt(~np.isin(mask, daughters))
    pairs = []
    for a in plain:
        distance = ndi.distance_transform_edt(mask != a)
        for b in plain:
            gap = float(distance[mask == b].min()) if b > a else np.inf
            beside = float(to_daughter[np.isin(mask, [a, b])].min())
            if gap < 8:
                pairs.append((beside if beside_division else gap, gap, a, b))
    _, gap, a, b = min(pairs)
    return a, b, int(np.ceil(gap))

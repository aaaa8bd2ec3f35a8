"""The frames the repairs hold back and the bookkeeping every repair shares.

`HeldFrames` sits between the streaming tracker and the writer: it holds the last
`short_frames + 3` result masks (`2 * short_frames + 3` with `split_merges`, which looks
back from a division to the frame before the merge), files each new track when it appears
(gap links, divisions, orphans) and has it judged once it is `short_frames + 1` frames old
(`Repairs._decide`). A track merged into another is aliased to it (`find`) and rewritten
in every held frame; a dropped one becomes background. Labels stay those of the lineage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from inference.cells.features import apply_lut
from inference.io import Track
from inference.tracking.repair.masks import on_border, touching
from inference.tracking.repair.params import RepairParams

if TYPE_CHECKING:  # lineage imports the solver, whose config holds RepairParams
    from inference.models.division import DivisionModel
    from inference.tracking.lineage import LineageBuilder

#: A hook of `track_stream`: a frame's cell table and its cells' track labels.
Observer = Callable[[pd.DataFrame, np.ndarray], None]


@dataclass
class HeldMask:
    """A result mask not yet written (labels already those of the repaired lineage)."""

    frame: int
    mask: np.ndarray


class HeldFrames:
    """The held result masks and the repaired lineage's bookkeeping. The repairs are its
    mixins, and `inference.tracking.repair.repairs.Repairs` streams the masks through them
    (`apply`, `push`, `finish`)."""

    def __init__(
        self,
        lineage: LineageBuilder,
        params: RepairParams,
        n_frames: int,
        division: DivisionModel | None = None,
    ) -> None:
        self.lineage = lineage
        self.params = params
        self.division = division if params.vet_divisions else None
        self.n_frames = n_frames
        # a division is judged `short_frames` + 1 frames after its birth; a merge it ends
        # began up to `short_frames` frames before it, the frame before that is needed too
        self.delay = params.short_frames + 3 + params.short_frames * params.split_merges
        self.held: deque[HeldMask] = deque()
        self.alias: dict[int, int] = {}  # raw label -> the label it was merged into
        self.removed: set[int] = set()
        self.lut = np.zeros(1, np.uint16)  # raw label -> label written (0: dropped)
        self.grown: set[int] = set()  # labels other tracks were merged into
        self.members: dict[int, list[int]] = {}  # label -> raw labels merged into it
        self.children: dict[int, list[int]] = {}  # raw parent -> raw children
        self.seen = 0  # raw tracks already looked at
        self.gaps: list[tuple[int, int, int]] = []  # (frame after the gap, parent, child)
        self.divisions: list[tuple[int, int, int, int]] = []  # (frame, mother, d1, d2)
        self.orphans: list[tuple[int, int]] = []  # (frame, label)
        self.unparented: set[int] = set()  # daughters of a division undone by the model
        self.adopted: dict[int, int] = {}  # raw orphan -> raw mother (a gap's second daughter)
        self.begins: dict[int, int] = {}  # raw label -> its track's begin, moved later
        self.ends: dict[int, int] = {}  # raw label -> its track's end, moved later
        self.relabelled: dict[int, dict[int, int]] = {}  # frame -> {raw label: raw label}
        self.enabled = (
            params.fill_gaps
            or params.merge_cuts
            or params.drop_spurious
            or params.split_merges
            or params.border_entries
            or self.division is not None
        )
        self.observer: Observer | None = None
        self.observed: deque[tuple[pd.DataFrame, np.ndarray]] = deque()

    def watch(self, observe: Observer) -> Observer:
        """`observe` (a frame's cell table and its cells' track labels, as `track_stream`
        hands them) called instead when the frame is released, with the labels written:
        a joined cell gets the label it joined, a dropped one 0 (a filled-in cell has no
        row: it was never measured)."""
        if not self.enabled:
            return observe

        def held(table: pd.DataFrame, labels: np.ndarray) -> None:
            self.observed.append((table, labels))

        self.observer = observe
        return held

    def _release(self, count: int) -> list[np.ndarray]:
        """The `count` oldest held masks, their observations handed on first."""
        out = []
        for _ in range(max(count, 0)):
            held = self.held.popleft()
            out.append(held.mask)
            if self.observer is not None and self.observed:
                table, labels = self.observed.popleft()
                labels = np.asarray(labels, np.int64)
                for raw, now in self.relabelled.pop(held.frame, {}).items():
                    labels = np.where(labels == raw, now, labels)
                self.observer(table, self.lut[labels].astype(np.int64))
        return out

    def tracks(self) -> list[Track]:
        """The repaired lineage: merged tracks as one, dropped ones left out."""
        raw = self.lineage.tracks()
        if not self.enabled:
            return raw
        span: dict[int, list[int]] = {}
        for track in raw:
            root = self.find(track.label)
            if root in self.removed:
                continue
            begin = self.begins.get(track.label, track.begin)
            end = self.ends.get(track.label, track.end)
            begin_end = span.setdefault(root, [begin, end])
            begin_end[0] = min(begin_end[0], begin)
            begin_end[1] = max(begin_end[1], end)
        out = []
        for track in raw:
            if track.label not in span:
                continue
            begin, end = span[track.label]
            parent = self.adopted.get(track.label, track.parent)
            parent = self.find(parent) if parent else 0
            if parent in self.removed or track.label in self.unparented:
                parent = 0
            out.append(Track(track.label, begin, end, parent))
        return out

    def find(self, label: int) -> int:
        """The label `label` (a raw lineage label) is written as now."""
        while label in self.alias:
            label = self.alias[label]
        return label

    def _resolved(self, mask: np.ndarray) -> np.ndarray:
        """`mask` with the merges and drops so far applied: one pass through a lookup
        table over the raw labels, whatever the number of repairs made."""
        n = len(self.lineage) + 1
        if len(self.lut) < n:
            self.lut = np.concatenate([self.lut, np.arange(len(self.lut), n, dtype=np.uint16)])
        if not self.alias and not self.removed:
            return mask
        return apply_lut(mask, self.lut)

    def _look_at_new_tracks(self, t: int) -> None:
        """File the tracks born in frame `t`: gap links, divisions, orphans."""
        born: dict[int, list[int]] = {}
        for label in range(self.seen + 1, len(self.lineage) + 1):
            track = self.lineage.track(label)
            if track.parent:
                self.children.setdefault(track.parent, []).append(label)
                born.setdefault(track.parent, []).append(label)
            else:  # in frame 0 too: a cell cut there leaves a piece to join
                self.orphans.append((t, label))
        self.seen = len(self.lineage)
        for parent, labels in born.items():
            if self.lineage.track(parent).end == t - 2 and len(labels) == 1:
                if self.params.fill_gaps:
                    self.gaps.append((t, parent, labels[0]))
            elif len(labels) == 2:
                self.divisions.append((t, parent, labels[0], labels[1]))

    def _held(self, frame: int) -> np.ndarray | None:
        for held in self.held:
            if held.frame == frame:
                return held.mask
        return None

    def _merge(self, label: int, into: int) -> None:
        """`label`'s track becomes part of `into`'s: one label in every held frame."""
        a, b = self.find(label), self.find(into)
        if a == b:
            return
        self.alias[a] = b
        self.members.setdefault(b, []).extend([a, *self.members.pop(a, [])])
        if a in self.grown or not self._within(a, b):
            self.grown.add(b)  # its lineage track no longer tells its span
        self.lut[self.lut == a] = b
        for held in self.held:
            held.mask[held.mask == a] = b

    def _within(self, inner: int, outer: int) -> bool:
        """`inner`'s lineage track lies within the frames of `outer`'s."""
        a, b = self.lineage.track(inner), self.lineage.track(outer)
        return b.begin <= a.begin and a.end <= b.end

    def _remove(self, label: int) -> None:
        root = self.find(label)
        self.removed.add(root)
        self.lut[self.lut == root] = 0
        for held in self.held:
            held.mask[held.mask == root] = 0

    def _short(self, label: int, since: int | None = None) -> bool:
        """`label`'s track ended, childless, within `short_frames` frames of its beginning
        (or of frame `since`), before the last frame."""
        track = self.lineage.track(label)
        start = track.begin if since is None else since
        return (
            label not in self.grown
            and track.end - start < self.params.short_frames
            and track.end < self.n_frames - 1
            and not self.children.get(label)
        )

    def _ended(self, label: int, start: int, frame: int) -> bool:
        """`label` is in none of the frames `start`..`frame` and has no child track (a gap
        link continuing it, filled or not, or daughters)."""
        for parent, kids in self.children.items():
            if self.find(parent) == label and any(self.find(k) != label for k in kids):
                return False
        for t in range(start, frame + 1):
            mask = self._held(t)
            if mask is None or (mask == label).any():
                return False
        return True

    def _joined(self, mask: np.ndarray, label: int) -> int:
        """The cell `label` shares its longest border with, if that border is long enough
        for a cut (`cut_contact`); else 0."""
        other, contact = touching(mask, label)
        if not other:
            return 0
        smaller = min(int((mask == label).sum()), int((mask == other).sum()))
        return other if contact >= self.params.cut_contact * np.sqrt(smaller) else 0

    def _spurious(self, label: int) -> bool:
        """A blob: off the image border in every frame and, on average, smaller than
        `spurious_area` of the typical cell (`label`'s track is short)."""
        track = self.lineage.track(label)
        masks = [self._held(t) for t in range(track.begin, track.end + 1)]
        if any(m is None for m in masks):
            return False
        cells = [m == self.find(label) for m in masks]
        if any(on_border(c) for c in cells):
            return False
        area = np.mean([c.sum() for c in cells])
        return bool(area < self.params.spurious_area * self._typical_area())

    def _typical_area(self) -> float:
        """Median cell area over the held frames."""
        areas = [np.bincount(h.mask.ravel())[1:] for h in self.held]
        pooled = np.concatenate(areas) if areas else np.zeros(0)
        pooled = pooled[pooled > 0]
        return float(np.median(pooled)) if len(pooled) else 0.0

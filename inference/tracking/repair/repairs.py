"""The repairs in the order they judge a track: spurious blobs dropped and divisions
vetted here, the others in their modules (`gaps`, `cuts`, `merges`).

Spurious detection dropped (`drop_spurious`): a track without parent or children that
lives at most `short_frames` frames, neither in the first nor in the last frame, does not
touch the image border and whose mean area is below `spurious_area` times the typical
cell area (the median over the held frames) becomes background. Real cells entering or
leaving the field touch the border, and a real cell is not a fraction of the typical
size, so those are kept. A short daughter that touches no cell and is such a blob is
dropped the same way, and its division undone (with the `cut_area` test of `repair.cuts`).

Divisions vetted (`vet_divisions`, where the model folder has a `division/` model): a
division that none of the other repairs undid is scored by the division model
(`inference.models.division`, a logistic regression over `division_features`: e.g. how
long a border the daughters share and whether they part over the next frames); below
its threshold it is undone: the daughter nearer the mother's own size (her median over
the held frames before) continues her track, the other starts a track of its own (no
parent). Unlike a cut piece that lives `short_frames` frames, a piece that persists is
not joined to its sister: it stays a cell of its own, which the CTC counts as one
false detection rather than as a false division and a broken track.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from inference.cells.division_features import division_features
from inference.tracking.repair.cuts import CutRepairs
from inference.tracking.repair.entries import EntryRepairs
from inference.tracking.repair.gaps import GapRepairs
from inference.tracking.repair.held import HeldMask
from inference.tracking.repair.merges import MergeRepairs


class Repairs(GapRepairs, CutRepairs, MergeRepairs, EntryRepairs):
    """Repairs the result masks streaming from the tracker and the lineage they belong to.

    `apply` passes the masks through, `short_frames + 3` frames behind;
    `tracks` is the repaired lineage once the last mask has passed.
    """

    def apply(self, masks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The repaired masks of `masks`, in order (all of them once `masks` is exhausted)."""
        for mask in masks:
            yield from self.push(mask)
        yield from self.finish()

    def push(self, mask: np.ndarray) -> list[np.ndarray]:
        """Take the next frame's result mask; returns the masks now final."""
        if not self.enabled:
            return [mask]
        t = self.held[-1].frame + 1 if self.held else 0
        mask = self._resolved(mask)
        self.held.append(HeldMask(t, mask))
        self._look_at_new_tracks(t)
        self._decide(t, final=False)
        return self._release(len(self.held) - self.delay)

    def finish(self) -> list[np.ndarray]:
        """The masks still held, after the last decisions (every track is complete now)."""
        if not self.enabled:
            return []
        self._decide(self.n_frames, final=True)
        return self._release(len(self.held))

    def _decide(self, now: int, *, final: bool) -> None:
        """Judge the divisions and orphans old enough (all of them when `final`)."""
        ripe = now - self.params.short_frames - 1  # tracks born up to here are judged
        waiting_gaps = []
        for gap in self.gaps:
            if final or gap[0] <= ripe:
                self._fill_gap(*gap)
            else:
                waiting_gaps.append(gap)
        self.gaps = waiting_gaps
        waiting = []
        for division in self.divisions:
            if not final and division[0] > ripe:
                waiting.append(division)
            elif self.params.merge_cuts and self._delay_early_division(*division):
                continue
            elif self.params.split_merges and self._split_merge(*division):
                continue
            elif self.params.fill_gaps and self._resume_missed(*division):
                continue
            elif self.params.merge_cuts and self._judge_division(*division):
                continue
            elif self.params.border_entries and self._entering(*division):
                continue
            elif self.division is not None:
                self._vet_division(*division)
        self.divisions = waiting
        waiting_orphans = []
        for frame, label in self.orphans:
            if final or frame <= ripe:
                self._judge_orphan(frame, label)
            else:
                waiting_orphans.append((frame, label))
        self.orphans = waiting_orphans

    def _judge_orphan(self, frame: int, label: int) -> None:
        if self.find(label) != label or label in self.adopted:
            return
        if not self._short(label):
            if self.params.merge_cuts and frame > 0:
                self._join_split_track(frame, label)
            return
        if self.params.merge_cuts and self._absorb(label):
            return
        # a short track in the first frame may be a cell seen leaving: never dropped
        if self.params.drop_spurious and frame > 0 and self._spurious(label):
            self._remove(label)

    def _vet_division(self, frame: int, mother: int, first: int, second: int) -> None:
        """Undo a division the division model finds unlike a mitosis: the daughter nearer
        the mother's own size continues her track, the other starts a track of its own."""
        labels = mother, first, second = tuple(self.find(x) for x in (mother, first, second))
        if len(set(labels)) < 3 or self.removed.intersection(labels) or self.division is None:
            return
        features = division_features(self._held, frame, mother, first, second)
        if features is None:
            return
        if self.division.probability(features)[0] >= self.division.threshold:
            return
        sizes = [
            int((m == mother).sum())
            for t in range(frame - 1, frame - 4, -1)
            if (m := self._held(t)) is not None
        ]
        own = float(np.median([s for s in sizes if s])) if any(sizes) else 1.0
        now = self._held(frame)
        if now is None:
            return
        first_off, second_off = (abs(np.log((now == d).sum() / own)) for d in (first, second))
        keep, other = (first, second) if first_off <= second_off else (second, first)
        self._merge(keep, mother)
        self.unparented.add(other)

"""Segmentation errors repaired from the lineage: missed cells filled, cut cells joined,
spurious blobs dropped, merged cells split, on the result masks a few frames before they
are written.

The solver links the masks it is given; a segmenter's mistakes then become lineage events:
a cell missed for one frame a gap link (written the CTC way as a new track whose parent is
the old one), a cell cut in two a division, a spurious blob a short track, two cells merged
for a frame a track that ends and a division where the object parts again. `Repairs` sits
between the streaming tracker and the writer, holds the last `short_frames + 3` result
masks (`2 * short_frames + 3` with `split_merges`, which looks back from a division to the
frame before the merge), files each new track when it appears and judges it once it is
`short_frames + 1` frames old. Each repair is decided from what is measurable there:

1. Missed detection filled (`fill_gaps`): a track continued over one missing frame (a gap
   link) gets a mask in that frame, its previous mask moved halfway to its next centroid and
   painted on background pixels only; the two tracks become one (one label, no parent/child
   pair). The gap link already passed the solver's gap cost; the repair asks only that the
   continuation persist (live more than `short_frames` frames, or have children): on the GT
   of held-out SIM+ frames the one gap link the solver made led to a one-frame object, a
   wrong link that filling would have turned into a false cell and a lost complete track.
   Without a free pixel to paint, the parent/child pair is kept. A mother missed in the
   frame before she divides leaves the same gap link to one daughter and the other daughter
   without a parent: a lasting parentless track born in that frame off the border, beside
   the linked one, both daughter-sized and together about the mother's size (`_gap_sister`),
   is her second daughter; the missed frame gets the mother moved halfway to the daughters
   and the division is kept at its frame.
2. Cut cell joined (`merge_cuts`): a piece of a cell cut in two for a frame or two is a
   track that ends, without children, within `short_frames` frames (and before the last
   frame) while sharing a long border with one and the same cell in each of its frames:
   at least `cut_contact` times the square root of the smaller one's area, in face-adjacent
   pixel pairs. A straight cut through a round cell gives about 2 (injected cuts on a
   simulated SIM+ sequence: 5th percentile 1.3, lowest 0.7); a division's daughters do not
   touch at all in the SIM+ and simulated GT, and touch at 0.0-0.93 in our segmenter's
   masks (the sample and the test scenario), so 1 lies between. Such a short piece joins
   that cell (one label, the union of their pixels). If it was born as a daughter, the
   division is undone and its sister continues the mother's track (the solver may have
   given the piece to its own cell, making a false division there, or to a neighbour,
   making one there), but only if that leaves the mother's track a cell of at least
   `cut_area` of the mother's area: a cut's pieces add up to the mother, a real daughter
   is about half of it (a real division whose daughter the segmenter merged into a
   neighbour a frame later keeps its division so). A track without a parent that outlives
   `short_frames` frames, born sharing such a border with a cell whose older track ends
   within `short_frames` frames, is the piece that went on: the two are one track. That
   older track is the one written so far (a gap filled, a piece joined before count with
   it, `_ends_within`): on the simulated sequence with 5% injected errors, 7 of its 19
   identity switches were cells cut after such an earlier repair (CT 0.52 -> 0.60). Pieces
   of a cell cut in the first frame are joined the same way (a short piece there is never
   dropped as a blob: it may be a cell seen leaving). A real division survives because
   both daughters persist and are not joined by a long border.
   In the last `short_frames` frames persistence cannot be seen: there two daughters
   born joined by a long border, together at most `CUT_GROWTH` times the mother's area
   grown by her last frame's growth (a cut's pieces add up to her, a cell entering the
   field grows in view; the simulator's 3D daughters at birth, of a mother who shrank
   before, add up to 1.38 times her), are a cut. A thin
   false boundary of background between the pieces leaves no border to measure: then a
   short piece whose last mask one cell (present in each of its frames) covers by at least
   `cut_cover` in the frame after it ends was cut from that cell, and a lasting track born
   beside a cell whose older track ends within `short_frames`, covering that cell's last
   mask so the frame after, is its continuation (our segmenter's gaps: on the held-out
   GOWT1 and MSC frames CT 0.778 -> 0.800 and 0.263 -> 0.278, TRA up 0.0005 and 0.002). The
   GNN's link probabilities are not used again: the solver already spent them on the
   division it made. Cuts next to a real division: a mother cut in the frames before she
   divides makes her pieces the daughters early; two lasting daughters joined by a long
   border from their first frame for up to `short_frames` frames and then apart, of
   balanced sizes, together at least `cut_area` of the mother and at most 1 / `cut_area`
   of her or of a typical cell (two touching cells, one of them the mother, are more), are
   her pieces: they are written as the mother and
   the daughters are born in the first frame they are apart (`_delay_early_division`).
   A daughter cut in her first frame gives a short piece as the daughter and a lasting
   parentless track as the rest of her: the piece joins that track, which becomes the
   daughter (`_newborn`). On injected 5% errors, held-out SIM+ frames: BC(0) 0.40 ->
   0.67, CT 0.68 -> 0.72.
3. Spurious detection dropped (`drop_spurious`): a track without parent or children that
   lives at most `short_frames` frames, neither in the first nor in the last frame, does not
   touch the image border and whose mean area is below `spurious_area` times the typical
   cell area (the median over the held frames) becomes background. Real cells entering or
   leaving the field touch the border, and a real cell is not a fraction of the typical
   size, so those are kept. A short daughter that touches no cell and is such a blob is
   dropped the same way, and its division undone (with the `cut_area` test above).
4. Merged cells split (`split_merges`): a segmenter that fuses two touching cells into one
   object for a frame or two makes the solver continue one of them into the object and end
   the other; when the cells part, the object "divides" into the two. Each division is
   first asked whether it ends such a merge: in one of the `short_frames` frames before it
   (s, the first merged frame), the mother's object covers at least `merge_cover` of its
   own mask in s-1 and of another cell's mask there, and is at least `merge_area` of the
   two cells' summed area; that other cell's track is in none of the frames s to the
   division, has no child track (a gap link) and had lived more than `short_frames`
   frames (or since the first frame: a younger one is an unjoined cut piece or a cell that just
   came in). Then, in each merged frame, each pixel of the object goes to the nearer of the
   two cells' masks of s-1, moved part of the way from their centroids to those of the
   daughters that continue them (daughters paired with the cells by the smaller summed
   squared centroid distance); the mother's track continues as one daughter, the other
   cell's as the other, and the division is gone. On the two injected merges of the 5% mix
   that this finds, the object covers 0.81 and 0.94 of the cell whose track ended, 0.83
   and 0.77 of its own, and is 1.00 and 1.07 of their summed area; a dividing mother covers
   one cell the frame before (and at most 2/3 of two cells' summed area when their sizes
   are within 2x), so 0.5 and 0.8 lie between. A real division survives because its
   mother was one cell, not a fused pair of which one track ended there: on GT masks no
   division meets the rule. Not handled: two daughters merged right after their birth
   (the mother's track runs on into them, and divides a frame late), a merge in the last
   frames (it never parts), a merged object that the solver gives a new track, or one
   that parts without a division (a new track or a gap link for the second cell).
5. Divisions vetted (`vet_divisions`, where the model folder has a `division/` model): a
   division that none of the repairs above undid is scored by the division model
   (`inference.models.division`, a logistic regression over `division_features`: e.g. how
   long a border the daughters share and whether they part over the next frames); below
   its threshold it is undone: the daughter nearer the mother's own size (her median over
   the held frames before) continues her track, the other starts a track of its own (no
   parent). Unlike a cut piece that lives `short_frames` frames, a piece that persists is
   not joined to its sister: it stays a cell of its own, which the CTC counts as one
   false detection rather than as a false division and a broken track.

On perfect masks these patterns are rare (daughters persist, cells appear at the border,
a mother was one cell);
on the GT masks of the held-out SIM+ frames, a simulated SIM+ sequence and the sample the
results are unchanged with every repair on (docs/tracking.md). Labels stay those of the
lineage; a label merged into another or dropped is left unused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from inference.cells.borders import bounding_box, centroid, neighbour_pairs
from inference.cells.division_features import division_features
from inference.cells.features import apply_lut
from inference.config import flag, integer, number, setting
from inference.io import Track

if TYPE_CHECKING:  # lineage imports the solver, whose config holds RepairParams
    from inference.models.division import DivisionModel
    from inference.tracking.lineage import LineageBuilder

#: A gap's second daughter (`Repairs._gap_sister`): each daughter is at most this share of
#: the mother's area, the two together within these shares, their centroids within this
#: many mother diameters (daughters at birth in the SIM+ GT: each 0.22-0.89 of the mother,
#: together 0.69-1.35, 0.63-1.49 diameters apart; the simulator's: 0.51-0.80, 1.03-1.53)
DAUGHTER_SHARE = 0.9
PAIR_SHARE = (0.6, 1.6)
SISTER_REACH = 1.6
#: A cut mother's pieces: the smaller is at least this share of the larger (a cut through
#: her: about 1; our segmenter's early splits 0.78-0.84). On GT masks, a small cell beside
#: the mother taken for her daughter is not (the sample: 130 px against 669; a dense
#: HeLa-like simulation: 51 against 647)
PIECE_BALANCE = 0.35
#: A cut's pieces add up to the cell, at most this many times its area the frame before
#: grown by its last growth; a division's daughters may add up to more: those of the
#: simulator's 3D preset at birth, which touch by a long border as a cut's pieces do, 1.38
#: times (a cut entering the field, growing 18% a frame: 1.05 times the grown area)
CUT_GROWTH = 1.2
#: A cell missed for a frame comes back within this share of its diameter of where it was
RESUME_REACH = 0.5
#: ... while the neighbour it was given to as a daughter stays this share of her size
RESUME_SISTER = 0.6

#: A hook of `track_stream`: a frame's cell table and its cells' track labels.
Observer = Callable[[pd.DataFrame, np.ndarray], None]


@dataclass(frozen=True)
class RepairParams:
    """The `solver.repair` section of the tracker's config.json: which repairs run and the
    settings of their rules (see the module docstring). A model folder without the section
    gets these defaults."""

    fill_gaps: bool = setting(flag(), True)
    merge_cuts: bool = setting(flag(), True)
    drop_spurious: bool = setting(flag(), True)
    # a cut piece or a spurious blob lives at most this many frames
    short_frames: int = setting(integer(1, 10), 2)
    # a spurious blob is smaller than this fraction of the typical cell
    spurious_area: float = setting(number(0, 1), 0.5)
    # the two pieces of a cut share a border of at least this many times the square root of
    # the smaller one's area (face-adjacent pixel pairs); see the module docstring
    cut_contact: float = setting(number(0), 1.0)
    # a division undone leaves the mother's track a cell of at least this fraction of the
    # mother's area (a cut's pieces add up to the mother; a real daughter is about half)
    cut_area: float = setting(number(0), 0.75)
    # ... or (pieces a thin gap keeps apart) the cell that covers at least this fraction of
    # the piece's last mask in the frame after it ends, present in each of its frames
    cut_cover: float = setting(number(0, 1), 0.5)
    split_merges: bool = setting(flag(), True)
    # a merged object covers at least this fraction of each of the two cells it fused (their
    # masks the frame before) ...
    merge_cover: float = setting(number(0, 1), 0.5)
    # ... and is at least this fraction of their summed area (one of them alone: at most 2/3
    # for cells of a size within 2x)
    merge_area: float = setting(number(0), 0.8)
    # ask the tracker's division model (a `division/` folder beside `tracker/`, if there is
    # one) about every division the repairs above leave standing
    vet_divisions: bool = setting(flag(), True)


@dataclass
class _Held:
    """A result mask not yet written (labels already those of the repaired lineage)."""

    frame: int
    mask: np.ndarray


class Repairs:
    """Repairs the result masks streaming from the tracker and the lineage they belong to.

    `apply` passes the masks through, `short_frames + 3` frames behind;
    `tracks` is the repaired lineage once the last mask has passed.
    """

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
        self.held: deque[_Held] = deque()
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
            or self.division is not None
        )
        self.observer: Observer | None = None
        self.observed: deque[tuple[pd.DataFrame, np.ndarray]] = deque()

    def apply(self, masks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The repaired masks of `masks`, in order (all of them once `masks` is exhausted)."""
        for mask in masks:
            yield from self.push(mask)
        yield from self.finish()

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

    def push(self, mask: np.ndarray) -> list[np.ndarray]:
        """Take the next frame's result mask; returns the masks now final."""
        if not self.enabled:
            return [mask]
        t = self.held[-1].frame + 1 if self.held else 0
        mask = self._resolved(mask)
        self.held.append(_Held(t, mask))
        self._look_at_new_tracks(t)
        self._decide(t, final=False)
        return self._release(len(self.held) - self.delay)

    def finish(self) -> list[np.ndarray]:
        """The masks still held, after the last decisions (every track is complete now)."""
        if not self.enabled:
            return []
        self._decide(self.n_frames, final=True)
        return self._release(len(self.held))

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

    # -- bookkeeping -------------------------------------------------------------------

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

    # -- the three repairs -------------------------------------------------------------

    def _fill_gap(self, t: int, parent: int, child: int) -> None:
        """Paint `parent`'s cell into the missed frame t-1 and make `child` its continuation,
        unless `child` is short-lived itself (then the gap link was likely wrong)."""
        before, missed, mask = self._held(t - 2), self._held(t - 1), self._held(t)
        if before is None or missed is None or mask is None or self._short(child):
            return
        source = self.find(parent)
        cells = before == source
        after = mask == self.find(child)
        if not cells.any() or not after.any():
            return
        sister = self._gap_sister(t, cells, after) if self.params.merge_cuts else 0
        if sister:
            after = after | (mask == sister)
        shift = np.round((centroid(after) - centroid(cells)) / 2).astype(int)
        moved = _shifted(cells, shift) & (missed == 0)
        if not moved.any():
            return  # no free pixel: the parent/child pair stays
        missed[moved] = source
        if sister:  # the mother divided in the missed frame's next: two daughters
            self.adopted[sister] = parent
            self.ends[parent] = t - 1
        else:
            self._merge(child, parent)

    def _gap_sister(self, t: int, mother: np.ndarray, daughter: np.ndarray) -> int:
        """A lasting parentless track born in frame `t` off the border beside `daughter`
        (the cell a gap link continued `mother`, seen in frame t-2, with): the mother missed
        in the frame she divided before, so her second daughter came without a parent.
        Each is at most `DAUGHTER_SHARE` of the mother, the two together `PAIR_SHARE`, their
        centroids within `SISTER_REACH` mother diameters, and no long border (a cut) joins
        them. 0 when there is none."""
        mask = self._held(t)
        if mask is None:
            return 0
        area = float(mother.sum())
        reach = SISTER_REACH * _diameter(area, mother.ndim)
        first = float(daughter.sum())
        for frame, label in self.orphans:
            if frame != t or self.find(label) != label or self._short(label):
                continue
            cells = mask == label
            second = float(cells.sum())
            if not cells.any() or _on_border(cells):
                continue
            if max(first, second) > DAUGHTER_SHARE * area:
                continue
            if not PAIR_SHARE[0] * area <= first + second <= PAIR_SHARE[1] * area:
                continue
            if np.linalg.norm(centroid(cells) - centroid(daughter)) > reach:
                continue
            both = np.where(daughter, 1, np.where(cells, 2, 0))
            if self._joined(both, 2):
                continue
            return label
        return 0

    def _split_merge(self, frame: int, mother: int, first: int, second: int) -> bool:
        """If the division of `mother` into `first` and `second` in `frame` ends a merge (its
        mask in one of the `short_frames` frames before covered two cells), give the merged
        frames' pixels back to the two cells and let each daughter continue one of them."""
        source = self.find(mother)
        for start in range(frame - 1, max(frame - 1 - self.params.short_frames, 0), -1):
            fused = self._fused(start, frame, source)
            if fused is not None:
                return self._unmerge(start, frame, source, fused, (first, second))
        return False

    def _fused(self, start: int, frame: int, source: int) -> int | None:
        """The cell that `source`'s object in frame `start` fused with, if it is a merge:
        the object covers at least `merge_cover` of both cells' masks in `start` - 1 and of
        their summed area, the other cell's track ended there (`_ended`) after living more
        than `short_frames` frames (or since the first frame)."""
        before, merged = self._held(start - 1), self._held(start)
        if before is None or merged is None:
            return None
        cells = merged == source
        own = before == source
        if not cells.any() or not own.any():
            return None
        cover = self.params.merge_cover
        if (cells & own).sum() < cover * own.sum():
            return None
        values, counts = np.unique(before[cells & (before != source)], return_counts=True)
        for other, inside in zip(values.tolist(), counts.tolist(), strict=True):
            if not other or other in self.removed:
                continue
            area = int((before == other).sum())
            if inside < cover * area or cells.sum() < self.params.merge_area * (area + own.sum()):
                continue
            begin = self.lineage.track(other).begin
            if 0 < begin and start - 1 - begin < self.params.short_frames:
                continue  # too young: a cut piece, or a cell that just came in
            if self._ended(other, start, frame):
                return int(other)
        return None

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

    def _unmerge(
        self, start: int, frame: int, source: int, other: int, daughters: tuple[int, int]
    ) -> bool:
        """Split `source`'s object in frames `start`..`frame`-1 between itself and `other`
        (each pixel to the nearer of their masks in `start` - 1, moved towards the daughter
        that continues each), then join the daughters to the two tracks."""
        before, after = self._held(start - 1), self._held(frame)
        if before is None or after is None:
            return False
        if len({source, *(self.find(d) for d in daughters)}) < 3:
            return False  # a daughter already joined to its sister or the mother
        own, theirs = before == source, before == other
        c_own, c_other = centroid(own), centroid(theirs)
        mine, yours = daughters
        c1, c2 = (centroid(after == self.find(d)) for d in daughters)
        straight = np.sum((c1 - c_own) ** 2) + np.sum((c2 - c_other) ** 2)
        crossed = np.sum((c2 - c_own) ** 2) + np.sum((c1 - c_other) ** 2)
        if crossed < straight:
            mine, yours, c1, c2 = yours, mine, c2, c1
        fused_area = self.params.merge_area * (own.sum() + theirs.sum())
        steps = frame - start + 1
        splits = []
        for k, t in enumerate(range(start, frame), start=1):
            mask = self._held(t)
            cells = mask == source if mask is not None else None
            if cells is None or cells.sum() < fused_area:
                return False  # not the merged object in every frame
            moved_own = _shifted(own, np.round((c1 - c_own) * k / steps).astype(int))
            moved_other = _shifted(theirs, np.round((c2 - c_other) * k / steps).astype(int))
            given = _nearer(cells, moved_other, moved_own)
            if not given.any() or given.sum() == cells.sum():
                return False
            splits.append((mask, given))
        for mask, given in splits:
            mask[given] = other
        self._merge(mine, source)
        self._merge(yours, other)
        return True

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

    def _judge_division(self, frame: int, mother: int, first: int, second: int) -> bool:
        """Undo the division if a daughter is a cut piece or a blob; whether it did."""
        before, mask = self._held(frame - 1), self._held(frame)
        if before is None or mask is None:
            return False
        for piece, sister in ((first, second), (second, first)):
            if self._short(piece):
                target = self._target(piece)
                if target and target != self.find(sister) and self._newborn(target, frame):
                    # the daughter was cut at birth: the piece the solver made a daughter
                    # joins the other piece, whose track came without a parent: its parent
                    # is the mother
                    self._merge(piece, target)
                    self.adopted[target] = mother
                    return True
            elif self._at_end(piece) and self._at_end(sister):
                # too close to the end to see persistence: two sisters born joined by a
                # long border, together no more than the mother grown by a frame, are a cut
                target = self._joined(mask, self.find(piece))
                target = target if target == self.find(sister) else 0
                if target:  # and together no more than the mother grown by a frame
                    both = (mask == self.find(piece)) | (mask == target)
                    if both.sum() > CUT_GROWTH * self._grown_area(mother, frame):
                        target = 0
            else:
                continue
            blob = not target and self.params.drop_spurious and self._spurious(piece)
            if not target and not blob:
                continue
            # the mother's track goes on as the sister: without the piece (joined to another
            # cell, or dropped) the sister must still be about the mother's size, not a
            # daughter's. Joined to the sister, the two are one object again after a frame or
            # two, which real daughters are not; their summed area would not tell (a real
            # division's daughters add up to the mother too), and a faint cell's pieces may
            # be much smaller than the cell was (our segmenter at signal/noise 1)
            kept = mask == self.find(sister)
            if target != self.find(sister) and (
                kept.sum() < self.params.cut_area * (before == self.find(mother)).sum()
            ):
                continue
            if blob:
                self._remove(piece)
            else:
                self._merge(piece, target)
            self._merge(sister, mother)  # no division: the sister continues the mother
            return True
        return False

    def _grown_area(self, label: int, frame: int) -> float:
        """`label`'s area in frame `frame` - 1, grown once more by its growth from the
        frame before (a cell entering the field grows in view; shrinking counts as none)."""
        last, before = self._held(frame - 1), self._held(frame - 2)
        area = float((last == self.find(label)).sum()) if last is not None else 0.0
        earlier = float((before == self.find(label)).sum()) if before is not None else 0.0
        return area * max(1.0, area / earlier) if earlier else area

    def _newborn(self, label: int, frame: int) -> bool:
        """`label` is a track of its own born in `frame` without a parent, not short."""
        if self.find(label) != label or label > self.seen:
            return False
        track = self.lineage.track(label)
        return (
            track.begin == frame
            and not track.parent
            and label not in self.adopted
            and not self._short(label)
        )

    def _delay_early_division(self, frame: int, mother: int, first: int, second: int) -> bool:
        """A mother cut in two in the frames before she divides: her pieces become the
        daughters early. They are joined by a long border (`_joined`) from their first frame
        for up to `short_frames` frames, then apart, both persist, and together they are
        `cut_area` to 1 / `cut_area` of the mother (or of a typical cell), the smaller at
        least `PIECE_BALANCE` of the larger: in the joined frames the pieces are the mother
        again, and the daughters are born in the first frame they are apart. Whether it
        did."""
        before = self._held(frame - 1)
        labels = mother, first, second = tuple(self.find(x) for x in (mother, first, second))
        if before is None or len(set(labels)) < 3 or self._short(first) or self._short(second):
            return False
        joined = []
        for t in range(frame, frame + self.params.short_frames + 1):
            mask = self._held(t)
            if mask is None or not (mask == first).any() or not (mask == second).any():
                return False
            if self._joined(mask, first) != second:
                break
            joined.append(mask)
        else:
            return False  # joined in every frame looked at: a lasting cut, or not a cut
        if not joined:
            return False
        pieces = (joined[0] == first) | (joined[0] == second)
        area, cut_area = (before == mother).sum(), self.params.cut_area
        sizes = sorted(int((joined[0] == piece).sum()) for piece in (first, second))
        if pieces.sum() < cut_area * area or sizes[0] < PIECE_BALANCE * sizes[1]:
            return False  # too little of her, or a small cell beside her
        if pieces.sum() > max(area, self._typical_area()) / cut_area:
            return False  # more than she was and than a cell is: two cells
        for t, mask in enumerate(joined, start=frame):
            mask[(mask == first) | (mask == second)] = mother
            # the observer sees raw labels: every raw label written as either piece
            pieces_raw = np.flatnonzero(np.isin(self.lut, (first, second))).tolist()
            self.relabelled[t] = dict.fromkeys(pieces_raw, mother)
        birth = frame + len(joined)
        self.begins[first] = self.begins[second] = birth
        self.ends[mother] = birth - 1
        return True

    def _resume_missed(self, frame: int, mother: int, first: int, second: int) -> bool:
        """A cell missed for a frame that comes back beside a neighbour may be taken for
        the neighbour's daughter instead of a gap. A daughter about the size of a cell whose
        track ended the frame before last (`_ended`, lasting), at that cell's place
        (centroids within `RESUME_REACH` of its diameter), while her sister stays at least
        `RESUME_SISTER` of the mother: she continues that cell's track, over the missed frame
        filled in as in `_fill_gap` (where its place is at least half free: otherwise it was
        merged, not missed), and the mother goes on as the sister. Whether it did."""
        before, missed, mask = self._held(frame - 2), self._held(frame - 1), self._held(frame)
        if before is None or missed is None or mask is None:
            return False
        labels = mother, first, second = tuple(self.find(x) for x in (mother, first, second))
        if len(set(labels)) < 3:
            return False
        for piece, sister in ((first, second), (second, first)):
            if (mask == sister).sum() < RESUME_SISTER * (missed == mother).sum():
                continue
            cells = mask == piece
            lost = self._lost_at(frame, cells, before)
            if not lost:
                continue
            old = before == lost
            shift = np.round((centroid(cells) - centroid(old)) / 2).astype(int)
            placed = _shifted(old, shift)
            moved = placed & (missed == 0)
            if moved.sum() < 0.5 * placed.sum():
                continue  # its place is taken: a merge, not a miss (or no room to fill)
            missed[moved] = lost
            self._merge(piece, lost)
            self._merge(sister, mother)
            return True
        return False

    def _lost_at(self, frame: int, cells: np.ndarray, before: np.ndarray) -> int:
        """The cell of frame `frame` - 2 (`before`) whose track ended there, lasting and
        childless, of about `cells`' size (within `PAIR_SHARE` of its size there, changed
        over the two frames as it changed the frame before) and at its place; 0: none."""
        area, centre = float(cells.sum()), centroid(cells)
        # only cells of about that size can qualify, so only those within reach of a cell
        # of the largest such size: look for them in a box around the centre, not among
        # every cell of the frame (a dense frame holds hundreds)
        across = _diameter(area / PAIR_SHARE[0], before.ndim)
        half = (RESUME_REACH + 2) * across  # its reach, and its own extent twice over
        box = tuple(slice(max(int(c - half), 0), int(c + half) + 1) for c in centre.tolist())
        sizes = np.bincount(before.ravel())
        earlier = self._held(frame - 3)
        earlier_sizes = np.bincount(earlier.ravel()) if earlier is not None else np.zeros(1)
        best, nearest = 0, np.inf
        for label in np.unique(before[box][before[box] > 0]).tolist():
            # its size two frames on, changed as it changed in its last frame (a cell
            # leaving the field shrinks frame by frame; a steady cell stays as it was)
            seen = label < len(earlier_sizes) and earlier_sizes[label] > 0
            trend = sizes[label] / earlier_sizes[label] if seen else 0
            change = float(np.clip(trend, 0.5, 2.0)) ** 2 if trend else 1.0
            expected = sizes[label] * change
            if not PAIR_SHARE[0] <= area / expected <= PAIR_SHARE[1]:
                continue
            old = before == label
            reach = RESUME_REACH * _diameter(float(sizes[label]), old.ndim)
            distance = float(np.linalg.norm(centroid(old) - centre))
            if distance > reach or distance >= nearest:
                continue
            track = self.lineage.track(label) if label <= self.seen else None
            if track is None or label in self.removed or not self._ended(label, frame - 1, frame):
                continue
            if 0 < track.begin and track.end - track.begin < self.params.short_frames:
                continue  # a short piece, not a cell that was there
            best, nearest = int(label), distance
        return best

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

    def _at_end(self, label: int) -> bool:
        """`label`'s track reaches the last frame, born within `short_frames` of it."""
        track = self.lineage.track(label)
        last = self.n_frames - 1
        return track.end == last and last - track.begin < self.params.short_frames

    def _absorb(self, piece: int) -> bool:
        """Join the short track `piece` to its `_target`, if it has one."""
        target = self._target(piece)
        if target:
            self._merge(piece, target)
        return bool(target)

    def _target(self, piece: int) -> int:
        """The cell the track `piece` shares a long border with (`_joined`) in each of its
        frames, if that is one and the same cell; else the cell that covers the piece's
        pixels in the frame after it ends (`_regrown`); else 0."""
        track = self.lineage.track(piece)
        masks = [self._held(t) for t in range(track.begin, track.end + 1)]
        if any(m is None for m in masks):
            return 0
        touched = {self._joined(m, self.find(piece)) for m in masks}
        if len(touched) == 1 and (target := touched.pop()):
            return target
        return self._regrown(piece, masks)

    def _regrown(self, piece: int, masks: list[np.ndarray]) -> int:
        """The cell present in every frame of the short track `piece` (`masks`) that covers
        most of the piece's last mask in the frame after it (`_covered_by`): a cut whose
        pieces a thin gap kept apart (so no border joins them), whole again; else 0."""
        after = self._held(self.lineage.track(piece).end + 1)
        last = masks[-1] == self.find(piece)
        if after is None or not last.any():
            return 0
        values, counts = np.unique(after[last & (after > 0)], return_counts=True)
        if not len(values):
            return 0
        cell = int(values[np.argmax(counts)])
        present = all((m == cell).any() for m in masks)
        return cell if present and self._covered_by(piece, cell) else 0

    def _joined(self, mask: np.ndarray, label: int) -> int:
        """The cell `label` shares its longest border with, if that border is long enough
        for a cut (`cut_contact`); else 0."""
        other, contact = _touching(mask, label)
        if not other:
            return 0
        smaller = min(int((mask == label).sum()), int((mask == other).sum()))
        return other if contact >= self.params.cut_contact * np.sqrt(smaller) else 0

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

    def _spurious(self, label: int) -> bool:
        """A blob: off the image border in every frame and, on average, smaller than
        `spurious_area` of the typical cell (`label`'s track is short)."""
        track = self.lineage.track(label)
        masks = [self._held(t) for t in range(track.begin, track.end + 1)]
        if any(m is None for m in masks):
            return False
        cells = [m == self.find(label) for m in masks]
        if any(_on_border(c) for c in cells):
            return False
        area = np.mean([c.sum() for c in cells])
        return bool(area < self.params.spurious_area * self._typical_area())

    def _join_split_track(self, frame: int, label: int) -> None:
        """A lasting track without a parent, born touching a cell whose (older) track ends
        within `short_frames` frames (or, a thin gap between them, born beside one whose
        last mask it covers the frame after, `_covered_by`): the cut piece that went on,
        the two are one track."""
        mask = self._held(frame)
        if mask is None:
            return
        joined = self._joined(mask, label)
        candidates = [joined] if joined else self._neighbours(mask, label)
        for other in candidates:
            if other > self.seen or not self._ends_within(other, frame):
                continue
            if joined or self._covered_by(other, label):
                self._merge(label, other)
                return

    def _ends_within(self, label: int, frame: int) -> bool:
        """`label`'s track as written now (its raw tracks and those merged into it: a gap
        filled, a piece joined) began before `frame` and ends, childless, within
        `short_frames` frames of it, before the last frame."""
        group = [label, *self.members.get(label, [])]
        tracks = [self.lineage.track(raw) for raw in group]
        begin = min(self.begins.get(t.label, t.begin) for t in tracks)
        end = max(self.ends.get(t.label, t.end) for t in tracks)
        kids = [k for raw in group for k in self.children.get(raw, []) if self.find(k) != label]
        return (
            begin < frame
            and end - frame < self.params.short_frames
            and end < self.n_frames - 1
            and not kids
        )

    def _neighbours(self, mask: np.ndarray, label: int, reach: int = 3) -> list[int]:
        """The cells within `reach` pixels of `label`'s box in `mask`."""
        cells = mask == label
        if not cells.any():
            return []
        box = tuple(slice(max(s.start - reach, 0), s.stop + reach) for s in bounding_box(cells))
        return [int(v) for v in np.unique(mask[box]) if v and v != label]

    def _covered_by(self, piece: int, cell: int) -> bool:
        """Whether `cell` covers at least `cut_cover` of `piece`'s last mask in the frame
        after the piece's track ends."""
        end = self.lineage.track(piece).end
        last, after = self._held(end), self._held(end + 1)
        if last is None or after is None:
            return False
        cells = last == self.find(piece)
        covered = int((after[cells] == self.find(cell)).sum())
        return bool(cells.any()) and covered >= self.params.cut_cover * int(cells.sum())

    def _typical_area(self) -> float:
        """Median cell area over the held frames."""
        areas = [np.bincount(h.mask.ravel())[1:] for h in self.held]
        pooled = np.concatenate(areas) if areas else np.zeros(0)
        pooled = pooled[pooled > 0]
        return float(np.median(pooled)) if len(pooled) else 0.0


def _diameter(area: float, ndim: int) -> float:
    """The diameter of a disc (2D) or ball (3D) of `area` pixels or voxels."""
    if ndim == 2:
        return float(2 * np.sqrt(area / np.pi))
    return float(2 * np.cbrt(3 * area / (4 * np.pi)))


def _nearer(cells: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The pixels of `cells` nearer to `first` than to `second` (Euclidean distance to the
    nearest pixel of each, measured in the bounding box of all three)."""
    box = bounding_box(cells | first | second)
    if not first[box].any() or not second[box].any():
        return np.zeros_like(cells)
    to_first = ndi.distance_transform_edt(~first[box])
    to_second = ndi.distance_transform_edt(~second[box])
    out = np.zeros_like(cells)
    out[box] = cells[box] & (to_first < to_second)
    return out


def _shifted(cells: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`cells` moved by `shift` pixels (what leaves the image is lost)."""
    out = np.zeros_like(cells)
    src, dst = [], []
    for s, size in zip(shift.tolist(), cells.shape, strict=True):
        s = max(-size, min(size, s))
        src.append(slice(max(0, -s), size - max(0, s)))
        dst.append(slice(max(0, s), size - max(0, -s)))
    out[tuple(dst)] = cells[tuple(src)]
    return out


def _touching(mask: np.ndarray, label: int) -> tuple[int, int]:
    """The cell `label` shares its longest border with and that border's length in
    face-adjacent pixel pairs; (0, 0) when it touches none."""
    other, is_cell = neighbour_pairs(mask, label)
    if not is_cell.any():
        return 0, 0
    values, counts = np.unique(other[is_cell], return_counts=True)
    best = int(np.argmax(counts))
    return int(values[best]), int(counts[best])


def _on_border(cells: np.ndarray) -> bool:
    """Whether any pixel of `cells` lies on the image border."""
    for axis in range(cells.ndim):
        a = np.moveaxis(cells, axis, 0)
        if a[0].any() or a[-1].any():
            return True
    return False

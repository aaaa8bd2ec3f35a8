"""The tracking errors behind the CTC measures, one by one, located in frame and space.

Result and ground truth are matched frame by frame exactly as the CTC does (a GT marker
matches the result cell covering more than half of it: `inference.measures.match_labels`),
and then:

- a GT division is *missed*, and a result division is *false*, unless the two match by the
  rule of the CTC's branching correctness BC(0) (py-ctcmetrics' own `is_matching`: same
  number of daughters, parent and daughters matched, same frames), so the counts equal
  BC(0)'s false negatives and false positives;
- an *identity switch* is a GT track whose matched result label changes between two frames
  in which it is matched, without the result linking the two labels (as parent and child),
  a GT track continued across a missed frame included.

Each error carries its frame, the (z,) y, x position of the cell concerned and the result
track to mark in the lineage forest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ctc_metrics.metrics.biological.bc import is_matching

from inference.cells.positions import frame_positions, position_columns
from inference.errors import CTCError
from inference.io import Track, open_masks, read_tracks
from inference.io.result import RES_TRACK_FILE
from inference.measures import match_labels
from inference.progress import progress

#: Kinds of error, in the order the report lists them.
KINDS = ("missed division", "false division", "identity switch")
#: Each kind in the plural, for headings and counts.
PLURALS = {
    "missed division": "missed divisions",
    "false division": "false divisions",
    "identity switch": "identity switches",
}


@dataclass(frozen=True)
class TrackingError:
    """One error: where (`frame`, `position`), which tracks, and in words."""

    kind: str
    frame: int
    position: tuple[float, ...]
    gt_label: int | None
    res_label: int | None
    detail: str


@dataclass
class ErrorAnalysis:
    """All errors of a result against GT, plus the detection counts around them."""

    errors: list[TrackingError]
    axes: list[str]
    gt_divisions: int
    res_divisions: int
    matched_divisions: int
    gt_cells: int
    res_cells: int
    missed_cells: int
    false_cells: int
    counts: dict[str, int] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[TrackingError]:
        """The errors of one kind, by frame."""
        return [e for e in self.errors if e.kind == kind]


@dataclass
class _Matching:
    """Per frame: GT label -> result label, and both sides' cell positions."""

    gt_to_res: list[dict[int, int]] = field(default_factory=list)
    res_to_gt: list[dict[int, int]] = field(default_factory=list)
    mapped_ref: list[list[int]] = field(default_factory=list)
    mapped_comp: list[list[int]] = field(default_factory=list)
    gt_pos: list[dict[int, tuple[float, ...]]] = field(default_factory=list)
    res_pos: list[dict[int, tuple[float, ...]]] = field(default_factory=list)
    gt_cells: int = 0
    res_cells: int = 0
    missed: int = 0
    false: int = 0
    axes: list[str] = field(default_factory=list)


def analyse_errors(res_dir: str | Path, gt_dir: str | Path) -> ErrorAnalysis:
    """Match `res_dir` to `gt_dir` (holding TRA/) and list every division and identity error."""
    res_dir, gt_dir = Path(res_dir), Path(gt_dir)
    tra = gt_dir / "TRA"
    gt_tracks = read_tracks(tra / "man_track.txt")
    res_tracks = read_tracks(res_dir / RES_TRACK_FILE)
    matching = _match(res_dir, tra)
    errors, matched = _division_errors(gt_tracks, res_tracks, matching)
    errors = _pair_shifted_divisions(errors)
    errors += _identity_switches(gt_tracks, res_tracks, matching)
    errors.sort(key=lambda e: (KINDS.index(e.kind), e.frame, e.gt_label or 0, e.res_label or 0))
    return ErrorAnalysis(
        errors=errors,
        axes=matching.axes,
        gt_divisions=len(_splits(gt_tracks)),
        res_divisions=len(_splits(res_tracks)),
        matched_divisions=matched,
        gt_cells=matching.gt_cells,
        res_cells=matching.res_cells,
        missed_cells=matching.missed,
        false_cells=matching.false,
        counts={kind: sum(1 for e in errors if e.kind == kind) for kind in KINDS},
    )


def _match(res_dir: Path, tra: Path) -> _Matching:
    gt_masks = open_masks(tra, "man_track")
    res_masks = open_masks(res_dir, "mask")
    if len(gt_masks) != len(res_masks):
        raise CTCError(
            f"{len(res_masks)} mask frames, but the ground truth has {len(gt_masks)}", res_dir
        )
    out = _Matching()
    pairs = zip(gt_masks, res_masks, strict=True)
    for t, (ref, comp) in enumerate(progress(pairs, len(gt_masks), "match to GT")):
        if ref.shape != comp.shape:
            raise CTCError(
                f"shape {comp.shape} differs from the ground truth's {ref.shape}",
                res_masks.frames[t].path,
            )
        labels_ref, labels_comp, mapped_ref, mapped_comp, _ = match_labels(ref, comp)
        out.mapped_ref.append(mapped_ref)
        out.mapped_comp.append(mapped_comp)
        out.gt_to_res.append(dict(zip(mapped_ref, mapped_comp, strict=True)))
        out.res_to_gt.append(dict(zip(mapped_comp, mapped_ref, strict=True)))
        out.gt_pos.append(_positions(ref, t, out))
        out.res_pos.append(_positions(comp, t, out))
        out.gt_cells += len(labels_ref)
        out.res_cells += len(labels_comp)
        out.missed += len(set(labels_ref) - set(mapped_ref))
        out.false += len(set(labels_comp) - set(mapped_comp))
    return out


def _positions(mask: np.ndarray, t: int, out: _Matching) -> dict[int, tuple[float, ...]]:
    table = frame_positions(mask, t)
    out.axes = position_columns(table)
    coords = table[out.axes].to_numpy()
    return {
        int(label): tuple(float(v) for v in row)
        for label, row in zip(table["label"], coords, strict=True)
    }


def _splits(tracks: list[Track]) -> dict[int, list[Track]]:
    """Parent label -> its children, for parents with two or more (divisions)."""
    children: dict[int, list[Track]] = defaultdict(list)
    for t in tracks:
        if t.parent:
            children[t.parent].append(t)
    return {p: kids for p, kids in children.items() if len(kids) >= 2}


def _division_errors(
    gt_tracks: list[Track], res_tracks: list[Track], m: _Matching
) -> tuple[list[TrackingError], int]:
    gt_by, res_by = {t.label: t for t in gt_tracks}, {t.label: t for t in res_tracks}
    gt_splits, res_splits = _splits(gt_tracks), _splits(res_tracks)
    matches = set()
    for comp, comp_kids in res_splits.items():
        for ref, ref_kids in gt_splits.items():
            if gt_by[ref].end != res_by[comp].end:
                continue
            if is_matching(  # numpy ids: it compares them to lists elementwise
                np.int64(comp),
                np.int64(ref),
                m.mapped_ref,
                m.mapped_comp,
                np.asarray([k.label for k in ref_kids]),
                np.asarray([k.label for k in comp_kids]),
                gt_by[ref].end,
                res_by[comp].end,
                [k.begin for k in ref_kids],
                [k.begin for k in comp_kids],
                0,
            ):
                matches.add((ref, comp))
    found_ref = {ref for ref, _ in matches}
    found_comp = {comp for _, comp in matches}
    errors = []
    for ref, kids in gt_splits.items():
        if ref in found_ref:
            continue
        end = gt_by[ref].end
        res = m.gt_to_res[end].get(ref) if end < len(m.gt_to_res) else None
        names = ", ".join(str(k.label) for k in kids)
        what = f"result track {res} does not divide here" if res else "no result cell on it"
        errors.append(
            TrackingError(
                "missed division",
                min(k.begin for k in kids),
                m.gt_pos[end].get(ref, ()) if end < len(m.gt_pos) else (),
                ref,
                res,
                f"GT track {ref} divides into {names}; {what}",
            )
        )
    for comp, kids in res_splits.items():
        if comp in found_comp:
            continue
        end = res_by[comp].end
        gt = m.res_to_gt[end].get(comp) if end < len(m.res_to_gt) else None
        names = ", ".join(str(k.label) for k in kids)
        what = f"GT track {gt} does not divide here" if gt else "it matches no GT cell"
        errors.append(
            TrackingError(
                "false division",
                min(k.begin for k in kids),
                m.res_pos[end].get(comp, ()) if end < len(m.res_pos) else (),
                gt,
                comp,
                f"result track {comp} divides into {names}; {what}",
            )
        )
    return errors, len(matches)


def _pair_shifted_divisions(errors: list[TrackingError], within: int = 3) -> list[TrackingError]:
    """Note on a missed and a false division of the same GT cell a few frames apart: the
    result divides, but early or late (BC(i) for i > 0 forgives that)."""
    false = [e for e in errors if e.kind == "false division" and e.gt_label]
    out = []
    for error in errors:
        partner = None
        if error.kind == "missed division":
            partner = next(
                (
                    f
                    for f in false
                    if f.gt_label == error.gt_label and abs(f.frame - error.frame) <= within
                ),
                None,
            )
        if partner is None:
            out.append(error)
            continue
        shift = partner.frame - error.frame
        frames = f"{abs(shift)} frame{'s' if abs(shift) > 1 else ''}"
        when = f"{frames} {'late' if shift > 0 else 'early'}"
        out.append(
            TrackingError(
                error.kind,
                error.frame,
                error.position,
                error.gt_label,
                error.res_label,
                f"{error.detail} (result track {partner.res_label} divides {when})",
            )
        )
    return out


def _identity_switches(
    gt_tracks: list[Track], res_tracks: list[Track], m: _Matching
) -> list[TrackingError]:
    """GT tracks whose matched result label changes without a result link between the two."""
    res_parent = {t.label: t.parent for t in res_tracks}
    gt_by = {t.label: t for t in gt_tracks}
    only_child: dict[int, Track] = {}
    counts: dict[int, int] = defaultdict(int)
    for t in gt_tracks:
        counts[t.parent] += 1
    for t in gt_tracks:
        if t.parent in gt_by and counts[t.parent] == 1:
            only_child[t.parent] = t  # the same cell, continued across a missed frame
    errors = []
    for track in gt_tracks:
        if track.parent in gt_by and counts[track.parent] == 1:
            continue  # followed from its parent below
        last: tuple[int, int] | None = None  # (frame, result label) last matched
        piece: Track | None = track
        while piece is not None:
            for t in range(piece.begin, min(piece.end, len(m.gt_to_res) - 1) + 1):
                res = m.gt_to_res[t].get(piece.label)
                if res is None:
                    continue
                if last is not None and last[1] != res and res_parent.get(res) != last[1]:
                    errors.append(
                        TrackingError(
                            "identity switch",
                            t,
                            m.gt_pos[t].get(piece.label, ()),
                            piece.label,
                            res,
                            f"GT track {piece.label}: result track {last[1]} (frame "
                            f"{last[0]}) becomes {res}",
                        )
                    )
                last = (t, res)
            piece = only_child.get(piece.label)
    return errors

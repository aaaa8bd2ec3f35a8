"""The settings of the repairs (`solver.repair` in a tracker's config.json) and the
measured bounds their rules use."""

from __future__ import annotations

from dataclasses import dataclass

from inference.config import flag, integer, number, setting

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


#: A division whose smaller daughter touches the field's border and is under this share of
#: the mother, while the other is at least `ENTRY_SISTER` of her, is a cell entering the
#: field beside her (`repair.entries`; a mitosis: daughters of 0.51-0.80 of the mother)
ENTRY_SHARE = 0.125
ENTRY_SISTER = 0.85


@dataclass(frozen=True)
class RepairParams:
    """The `solver.repair` section of the tracker's config.json: which repairs run and the
    settings of their rules (see `inference.tracking.repair`). A model folder without the section
    gets these defaults."""

    fill_gaps: bool = setting(flag(), True)
    merge_cuts: bool = setting(flag(), True)
    drop_spurious: bool = setting(flag(), True)
    # a cut piece or a spurious blob lives at most this many frames
    short_frames: int = setting(integer(1, 10), 2)
    # a spurious blob is smaller than this fraction of the typical cell
    spurious_area: float = setting(number(0, 1), 0.5)
    # the two pieces of a cut share a border of at least this many times the square root of
    # the smaller one's area (face-adjacent pixel pairs); see `inference.tracking.repair.cuts`
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
    # a cell entering the field beside another, taken for her daughter, kept apart
    border_entries: bool = setting(flag(), True)
    # ask the tracker's division model (a `division/` folder beside `tracker/`, if there is
    # one) about every division the other repairs leave standing
    vet_divisions: bool = setting(flag(), True)

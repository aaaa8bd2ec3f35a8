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

1. Missed detection filled (`fill_gaps`, `repair.gaps`).
2. Cut cell joined (`merge_cuts`, `repair.cuts`).
3. Spurious detection dropped (`drop_spurious`, `repair.repairs`).
4. Merged cells split (`split_merges`, `repair.merges`).
5. Divisions vetted (`vet_divisions`, `repair.repairs`).

Each module's docstring gives its rule and the measurements behind its bounds
(`repair.params`); `repair.held` holds the frames and the bookkeeping they share.

On perfect masks these patterns are rare (daughters persist, cells appear at the border,
a mother was one cell);
on the GT masks of the held-out SIM+ frames, a simulated SIM+ sequence and the sample the
results are unchanged with every repair on (docs/tracking.md). Labels stay those of the
lineage; a label merged into another or dropped is left unused.
"""

from inference.tracking.repair.held import Observer
from inference.tracking.repair.params import RepairParams
from inference.tracking.repair.repairs import Repairs

__all__ = ["Observer", "RepairParams", "Repairs"]

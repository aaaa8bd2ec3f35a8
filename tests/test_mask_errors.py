"""The segmentation-error injector: each error does what it says, at the rate asked, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from inference.io import open_masks
from training.mask_errors import (
    ErrorRates,
    add_blob,
    cut_cell,
    inject,
    inject_sequence,
    merge_cells,
)

SAMPLE_TRA = Path(__file__).resolve().parents[1] / "data/sample/Sim-N2DH/01_GT/TRA"


def _discs(centres, radius=8, shape=(80, 120)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, np.int64)
    for label, (cy, cx) in enumerate(centres, 1):
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = label
    return mask


def _pieces(mask: np.ndarray, label: int) -> int:
    return ndi.label(mask == label)[1]


def test_a_cut_cell_becomes_two_connected_pieces_of_the_same_pixels():
    mask = _discs([(40, 40)])
    before = mask > 0
    assert cut_cell(mask, 1, 7, np.random.default_rng(0))
    assert set(np.unique(mask)) == {0, 1, 7}
    assert np.array_equal(mask > 0, before)  # no pixel gained or lost
    assert _pieces(mask, 1) == 1 and _pieces(mask, 7) == 1
    assert min((mask == 1).sum(), (mask == 7).sum()) > 0.2 * before.sum()  # through the centre


def test_a_cut_works_in_3d():
    zz, yy, xx = np.mgrid[:20, :30, :30]
    mask = (((zz - 10) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2) <= 36).astype(np.int64)
    assert cut_cell(mask, 1, 2, np.random.default_rng(1))
    assert _pieces(mask, 1) == 1 and _pieces(mask, 2) == 1


def test_merged_neighbours_become_one_connected_cell():
    mask = _discs([(40, 40), (40, 57)])  # 1 px apart
    merge_cells(mask, 1, 2)
    assert set(np.unique(mask)) == {0, 1}
    assert _pieces(mask, 1) == 1


def test_a_blob_lands_on_background_only():
    mask = _discs([(40, 40), (40, 80)])
    cells = mask.copy()
    assert add_blob(mask, 9, 4, np.random.default_rng(2))
    blob = mask == 9
    assert 20 < blob.sum() <= np.pi * 4.5**2
    assert np.array_equal(mask[~blob], cells[~blob]) and not (cells[blob] > 0).any()


def test_errors_come_at_the_rates_asked_and_the_same_seed_gives_the_same_frame():
    centres = [(y, x) for y in range(10, 400, 19) for x in range(10, 400, 19)]  # 1 px apart
    mask = _discs(centres, radius=9, shape=(400, 400))
    rates = ErrorRates(cut=0.10, merge=0.05, drop=0.08, add=0.04)
    out, done = inject(mask, rates, np.random.default_rng(3))
    n = len(centres)
    assert abs(len(done.dropped) - 0.08 * n) < 4 * np.sqrt(0.08 * n)
    assert abs(len(done.cut) - 0.10 * n * 0.9) < 4 * np.sqrt(0.10 * n) + 3
    assert abs(len(done.added) - 0.04 * n) < 4 * np.sqrt(0.04 * n)
    assert abs(len(done.merged) - 0.05 * n * 0.8) < 4 * np.sqrt(0.05 * n) + 3
    for keep, other in done.merged:
        assert not (out == other).any() and _pieces(out, keep) == 1
    for label in done.dropped:
        assert not (out == label).any()
    again, _ = inject(mask, rates, np.random.default_rng(3))
    assert np.array_equal(out, again)
    none, nothing = inject(mask, ErrorRates(), np.random.default_rng(3))
    assert np.array_equal(none, mask) and not (nothing.cut or nothing.dropped or nothing.added)


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="cut"):
        ErrorRates(cut=1.5)


def test_a_sequence_gets_its_errors_written_as_a_mask_folder(tmp_path):
    report = inject_sequence(SAMPLE_TRA, tmp_path / "damaged", ErrorRates(cut=0.2, drop=0.1))
    source, damaged = open_masks(SAMPLE_TRA), open_masks(tmp_path / "damaged")
    assert len(damaged) == len(source) == len(report)
    cells = [len(np.unique(source.read(t))) - 1 for t in range(len(source))]
    objects = [len(np.unique(damaged.read(t))) - 1 for t in range(len(damaged))]
    expected = [c + len(r.cut) - len(r.dropped) for c, r in zip(cells, report, strict=True)]
    assert objects == expected
    assert sum(len(r.cut) for r in report) > 0 and sum(len(r.dropped) for r in report) > 0
    again = inject_sequence(SAMPLE_TRA, tmp_path / "again", ErrorRates(cut=0.2, drop=0.1))
    assert again == report
    with pytest.raises(Exception, match="exists"):
        inject_sequence(SAMPLE_TRA, tmp_path / "damaged", ErrorRates())

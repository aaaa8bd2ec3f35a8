"""Real CTC data (../shared/ctc): it loads, its GT scores perfectly, a real result validates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from ctc_metrics.utils.representations import match as ctc_match

from inference.ctc_rules import count_divisions, is_valid, validate_result
from inference.io import list_frames, open_images, open_masks, read_tracks, write_result
from inference.measures import evaluate, match_labels

CTC = Path(__file__).resolve().parents[1].parent / "shared" / "ctc"
if not CTC.is_dir():
    pytest.skip(f"real CTC data not found at {CTC}", allow_module_level=True)

pytestmark = pytest.mark.realdata

#: name -> (frames, image shape, image dtype, tracks, divisions, SEG frames), from SOURCES.md.
DATASETS = {
    "Fluo-N2DH-SIM+": (65, (690, 628), "uint16", 95, 28, 65),
    "Fluo-N2DH-GOWT1": (92, (1024, 1024), "uint8", 27, 2, 30),
    "Fluo-C2DL-MSC": (48, (832, 992), "uint16", 15, 0, 18),
}
HELA = CTC / "Fluo-N2DL-HeLa-01_RES-example" / "01_RES"


def _gt(name: str) -> Path:
    folder = CTC / name / "01_GT"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.mark.parametrize("name", DATASETS)
def test_sequence_loads(name: str) -> None:
    n_frames, shape, dtype, n_tracks, n_divisions, n_seg = DATASETS[name]
    gt = _gt(name)
    images = open_images(CTC / name / "01")
    assert (len(images), images.shape, images.dtype) == (n_frames, shape, np.dtype(dtype))
    tra = open_masks(gt / "TRA")
    assert (tra.prefix, len(tra), tra.shape) == ("man_track", n_frames, shape)
    seg = open_masks(gt / "SEG")
    assert (seg.prefix, len(seg), seg.shape) == ("man_seg", n_seg, shape)
    for sequence in (images, tra, seg):
        for frame in sequence:
            assert frame.shape == shape
    tracks = read_tracks(gt / "TRA" / "man_track.txt")
    assert (len(tracks), count_divisions(tracks)) == (n_tracks, n_divisions)


@pytest.fixture(scope="module")
def gt_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each dataset's GT TRA lineage written as a result folder, streamed by write_result."""
    out = {}
    for name in DATASETS:
        tra = _gt(name) / "TRA"
        masks = open_masks(tra, "man_track")
        folder = tmp_path_factory.mktemp(name) / "01_RES"
        tracks = read_tracks(tra / "man_track.txt")
        out[name] = write_result(folder, masks, tracks, n_frames=len(masks))
    return out


@pytest.mark.parametrize("name", DATASETS)
def test_gt_as_result_validates(name: str, gt_results: dict[str, Path]) -> None:
    assert validate_result(gt_results[name], images_dir=CTC / name / "01") == []
    # GT labels in several pieces are only warnings (SIM+ has 12, MSC 1): still valid.
    assert is_valid(validate_result(gt_results[name], warnings=True))


def test_gowt1_gapped_division_is_accepted(gt_results: dict[str, Path]) -> None:
    tracks = {t.label: t for t in read_tracks(gt_results["Fluo-N2DH-GOWT1"] / "res_track.txt")}
    gaps = {t.label: t.begin - tracks[t.parent].end for t in tracks.values() if t.parent in tracks}
    assert max(gaps.values()) == 5  # label 18 starts at 21, its mother 16 ends at 16
    assert gaps[18] == 5 and tracks[18].parent == 16
    assert validate_result(gt_results["Fluo-N2DH-GOWT1"]) == []


@pytest.mark.parametrize("name", DATASETS)
def test_gt_as_result_scores_perfectly(name: str, gt_results: dict[str, Path]) -> None:
    scores = evaluate(gt_results[name], _gt(name), threads=2)
    for measure in ("TRA", "DET", "LNK", "CT", "TF"):
        assert scores[measure] == 1.0, measure
    # BC is undefined without GT divisions (MSC); CCA without a GT track that is born by
    # a division and divides again (GOWT1, MSC): py-ctcmetrics gives None for both.
    assert scores["BC(0)"] == (1.0 if DATASETS[name][4] else None)
    assert scores["CCA"] == (1.0 if name == "Fluo-N2DH-SIM+" else None)
    if name == "Fluo-N2DH-SIM+":  # its TRA masks are the full SEG masks
        assert scores["SEG"] == 1.0
    else:  # TRA markers are not the SEG masks of GOWT1 and MSC
        assert 0.2 < scores["SEG"] < 0.7


def test_hela_result_validates() -> None:
    if not HELA.is_dir():
        pytest.skip(f"{HELA} not found")
    assert validate_result(HELA, warnings=True) == []
    tracks = read_tracks(HELA / "res_track.txt")
    assert (len(list_frames(HELA, "mask")), len(tracks), count_divisions(tracks)) == (92, 285, 106)


def test_fast_matching_equals_py_ctcmetrics_on_real_frames() -> None:
    gt = _gt("Fluo-N2DH-GOWT1")
    ref, comp = gt / "TRA" / "man_track031.tif", gt / "SEG" / "man_seg031.tif"
    expected = ctc_match(str(ref), str(comp))
    assert len(expected[2]) > 10  # markers inside full masks: many matches
    assert match_labels(tifffile.imread(ref), tifffile.imread(comp)) == expected

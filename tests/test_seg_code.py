"""The segmentation model's pieces: U-Net, tiling, targets, post-processing, model folders."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from inference.errors import CTCError
from inference.models.folder import load_model_folder, save_model_folder
from inference.segmentation.segmenter import MODEL_KIND, Segmenter
from seg_code.normalize import percentile_normalize
from seg_code.postprocess import PostprocessParams, labels_from_probabilities
from seg_code.predict import _tile_starts, predict_probabilities, resolve_precision
from seg_code.targets import CELL, EDGE, centre_map, class_map
from seg_code.unet import UNet


def _disc(shape, centre, radius):
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize(
    ("ndim", "shape", "pool_z"), [(2, (1, 40, 56), None), (3, (1, 6, 24, 40), (False, True))]
)
def test_unet_keeps_spatial_shape(ndim, shape, pool_z):
    model = UNet(ndim, 2, 4, 2, pool_z).eval()
    x = torch.zeros((shape[0], 2, *[s * 1 for s in shape[1:]]))
    pad = [(-s) % d for s, d in zip(shape[1:], model.divisor, strict=True)]
    x = torch.zeros((1, 2, *[s + p for s, p in zip(shape[1:], pad, strict=True)]))
    assert model(x).shape == (1, 4, *x.shape[2:])


def test_tiled_prediction_equals_whole_image():
    torch.manual_seed(0)
    model = UNet(2, 1, 8, 3).eval()
    image = np.random.default_rng(0).random((1, 150, 230), dtype=np.float32)
    # exact in float32; bfloat16 ("auto" on some CPUs) rounds differently per tile size
    whole = predict_probabilities(model, image, (1024, 1024), (0, 0), precision="float32")
    tiled = predict_probabilities(
        model, image, (96, 96), (32, 32), batch_size=3, precision="float32"
    )
    assert whole.shape == (4, 150, 230)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    np.testing.assert_allclose(whole[:3].sum(axis=0), 1.0, atol=1e-5)


def test_tiled_prediction_3d():
    torch.manual_seed(0)
    model = UNet(3, 1, 4, 2, (False, True)).eval()
    image = np.random.default_rng(1).random((1, 7, 130, 90), dtype=np.float32)
    whole = predict_probabilities(model, image, (64, 512, 512), (0, 0, 0), precision="float32")
    tiled = predict_probabilities(model, image, (8, 64, 64), (0, 20, 20), precision="float32")
    assert whole.shape == (4, 7, 130, 90)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiled_prediction_along_z():
    """A stack deeper than a tile is tiled along Z as well (5 tiles of 16 slices over 30),
    and the result still equals the whole-stack prediction."""
    torch.manual_seed(0)
    model = UNet(3, 1, 4, 2, (False, True)).eval()
    image = np.random.default_rng(1).random((1, 30, 70, 60), dtype=np.float32)
    whole = predict_probabilities(model, image, (64, 512, 512), (0, 0, 0), precision="float32")
    tiled = predict_probabilities(model, image, (16, 64, 64), (6, 20, 20), precision="float32")
    assert len(_tile_starts(30, 16, 6)[0]) == 5
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_class_map_marks_touching_border_as_edge():
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 15:25] = 2
    classes = class_map(labels, edge_width=1)
    assert classes[10, 14] == EDGE and classes[10, 15] == EDGE  # the shared border
    assert classes[10, 10] == CELL and classes[0, 0] == 0
    assert classes[5, 10] == EDGE  # border against background


def test_centre_map_peaks_inside_each_cell():
    labels = np.zeros((40, 40), np.int32)
    labels[_disc((40, 40), (12, 12), 8)] = 1
    labels[_disc((40, 40), (28, 28), 6)] = 2
    centres = centre_map(labels)
    assert centres[12, 12] == pytest.approx(1.0) and centres[28, 28] == pytest.approx(1.0)
    assert centres[labels == 0].max() == 0.0
    assert 0 < centres[12, 5] < 0.5


def test_postprocess_splits_a_blob_with_two_centres():
    shape = (60, 80)
    blob = _disc(shape, (30, 28), 14) | _disc(shape, (30, 52), 14)
    p_cell = blob.astype(np.float32)
    p_edge = np.zeros(shape, np.float32)
    p_centre = (_disc(shape, (30, 28), 4) | _disc(shape, (30, 52), 4)).astype(np.float32)
    params = PostprocessParams(min_centre_size=5, min_cell_size=20)
    labels = labels_from_probabilities(p_cell, p_edge, p_centre, params)
    assert labels.dtype == np.uint16
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[30, 20] != labels[30, 60]
    assert (labels > 0).sum() == blob.sum()


def test_centre_split_separates_two_peaks_whose_seed_merged():
    yy, xx = np.mgrid[:40, :70]
    centre = np.maximum(
        np.exp(-((yy - 20) ** 2 + (xx - 22) ** 2) / 120.0),
        np.exp(-((yy - 20) ** 2 + (xx - 48) ** 2) / 120.0),
    ).astype(np.float32)  # two nuclei whose centres blur: saddle ~0.24 under peaks of 1
    cell = (centre > 0.05).astype(np.float32)
    edge = np.zeros_like(cell)
    base = PostprocessParams(centre_threshold=0.2, min_centre_size=5, min_cell_size=20)
    merged = labels_from_probabilities(cell, edge, centre, base)
    split = labels_from_probabilities(cell, edge, centre, replace(base, centre_split=0.3))
    assert merged.max() == 1
    assert split.max() == 2 and split[20, 22] != split[20, 48]
    # a single peak is never split, however low the prominence asked
    one = labels_from_probabilities(
        cell,
        edge,
        np.exp(-((yy - 20) ** 2 + (xx - 35) ** 2) / 300.0).astype(np.float32),
        replace(base, centre_split=0.01),
    )
    assert one.max() == 1


def test_whole_foreground_keeps_thin_protrusions_and_coreless_cells():
    cell = np.zeros((60, 90), np.float32)
    edge = np.zeros_like(cell)
    cell[20:36, 10:26] = 1.0  # a cell body
    edge[27:29, 26:70] = 1.0  # a protrusion 2 px wide, all "edge", 44 px long
    edge[50:52, 20:80] = 1.0  # a thin cell with no core at all
    centre = np.zeros_like(cell)
    centre[26:30, 16:20] = 1.0
    base = PostprocessParams(min_centre_size=4, min_cell_size=30, edge_distance=3)
    cut = labels_from_probabilities(cell, edge, centre, base)
    whole = labels_from_probabilities(cell, edge, centre, replace(base, whole_foreground=True))
    assert cut[28, 27] == 1 and cut[28, 60] == 0 and cut[50, 50] == 0
    assert whole.max() == 2
    body = whole[28, 18]
    assert body > 0 and whole[28, 69] == body  # the whole protrusion, to its tip
    assert whole[50, 50] not in (0, body) and (whole == whole[50, 50]).sum() == 120


def test_postprocess_empty_frame_gives_empty_mask():
    zeros = np.zeros((32, 32), np.float32)
    labels = labels_from_probabilities(zeros, zeros, zeros, PostprocessParams())
    assert labels.shape == (32, 32) and labels.max() == 0


def test_postprocess_drops_small_and_border_cells():
    shape = (50, 50)
    p_cell = (_disc(shape, (25, 25), 8) | _disc(shape, (5, 40), 1)).astype(np.float32)
    p_cell[0:3, 0:3] = 1
    zeros = np.zeros(shape, np.float32)
    labels = labels_from_probabilities(
        p_cell, zeros, zeros, PostprocessParams(min_cell_size=6, border_margin=4)
    )
    assert labels.max() == 1 and labels[25, 25] == 1


def test_percentile_normalize_is_robust_to_offset_and_gain():
    image = np.random.default_rng(0).gamma(2.0, 10.0, (64, 64)).astype(np.float32)
    a = percentile_normalize(image)
    b = percentile_normalize(image * 7.0 + 300.0)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_gamma_lifts_faint_cells_and_keeps_the_scale():
    image = np.zeros((64, 64), np.float32)
    image[:8] = 100.0  # bright cells: the high percentile
    image[20:28] = 5.0  # a faint cell, 5% of the bright ones
    linear = percentile_normalize(image, low=1.0, high=99.8)
    lifted = percentile_normalize(image, low=1.0, high=99.8, gamma=0.5)
    assert lifted[24, 10] == pytest.approx(np.sqrt(linear[24, 10]), rel=1e-5)
    assert lifted[24, 10] > 4 * linear[24, 10]
    assert lifted[0, 0] == pytest.approx(1.0) and lifted[40, 0] == 0.0
    with pytest.raises(ValueError, match="gamma"):
        percentile_normalize(image, gamma=0.0)


def _save_tiny_model(folder, ndim=2):
    model = UNet(ndim, 2, 4, 2, (False, True) if ndim == 3 else None)
    config = {
        "architecture": {"ndim": ndim, "in_channels": 2, "base_channels": 4, "depth": 2,
                         "pool_z": [False, True] if ndim == 3 else None},
        "context_frames": 1,
        "normalization": {"low": 1.0, "high": 99.8},
        "postprocess": PostprocessParams().to_dict(),
        "inference": {"tile": [64] * ndim, "margin": [8] * ndim, "batch_size": 1},
    }  # fmt: skip
    save_model_folder(folder, MODEL_KIND, config, model.state_dict())
    return model


def test_model_folder_round_trip(tmp_path):
    model = _save_tiny_model(tmp_path / "seg")
    config, state = load_model_folder(tmp_path / "seg", MODEL_KIND)
    assert config["format_version"] == 1 and len(config["weights"]["sha256"]) == 64
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)
    segmenter = Segmenter.from_folder(tmp_path / "seg", {"min_cell_size": 3})
    assert segmenter.postprocess.min_cell_size == 3 and segmenter.ndim == 2


def test_model_folder_refuses_overwrite(tmp_path):
    _save_tiny_model(tmp_path / "seg")
    with pytest.raises(CTCError, match="already exists"):
        _save_tiny_model(tmp_path / "seg")


def test_corrupt_weights_are_refused(tmp_path):
    _save_tiny_model(tmp_path / "seg")
    weights = tmp_path / "seg" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CTCError, match="sha256"):
        Segmenter.from_folder(tmp_path / "seg")
    weights.unlink()
    with pytest.raises(CTCError, match="weights file is missing"):
        Segmenter.from_folder(tmp_path / "seg")


def test_config_that_disagrees_with_weights_is_refused(tmp_path):
    _save_tiny_model(tmp_path / "seg")
    path = tmp_path / "seg" / "config.json"
    config = json.loads(path.read_text())
    config["architecture"]["base_channels"] = 8
    path.write_text(json.dumps(config))
    with pytest.raises(CTCError, match="do not fit the architecture"):
        Segmenter.from_folder(tmp_path / "seg")


def test_wrong_kind_and_missing_folder(tmp_path):
    _save_tiny_model(tmp_path / "seg")
    with pytest.raises(CTCError, match="kind"):
        load_model_folder(tmp_path / "seg", "tracker")
    with pytest.raises(CTCError, match="not found"):
        Segmenter.from_folder(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CTCError, match="config.json is missing"):
        Segmenter.from_folder(tmp_path / "empty")


def test_match_counts_counts_a_merge_once():
    from training.segmentation.metrics import match_counts

    gt = np.zeros((20, 40), np.int32)
    gt[5:15, 2:12], gt[5:15, 14:24], gt[5:15, 28:38] = 1, 2, 3
    pred = np.zeros_like(gt)
    pred[5:15, 2:24] = 1  # one object over GT 1 and 2: both matched, one prediction
    iou, n_gt, matched_gt, n_pred, matched_pred = match_counts(gt, pred)
    assert (n_gt, matched_gt, n_pred, matched_pred) == (3, 2, 1, 1)
    assert iou == pytest.approx(2 * 100 / 220)


def test_bfloat16_prediction_is_close_to_float32():
    torch.manual_seed(0)
    model = UNet(2, 1, 16, 2).eval()
    image = np.random.default_rng(2).random((1, 64, 64), dtype=np.float32)
    full = predict_probabilities(model, image, (64, 64), (0, 0), precision="float32")
    fast = predict_probabilities(model, image, (64, 64), (0, 0), precision="bfloat16")
    np.testing.assert_allclose(fast, full, atol=3e-2)
    with pytest.raises(ValueError, match="precision"):
        predict_probabilities(model, image, (64, 64), (0, 0), precision="half")


def test_auto_precision_is_bfloat16_only_where_native(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert resolve_precision("auto", cpu) == "float32"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert resolve_precision("auto", cpu) == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", cpu)


def test_flip_average_makes_the_segmenter_mirror_equivariant(tmp_path):
    torch.manual_seed(3)
    _save_tiny_model(tmp_path / "seg")
    segmenter = Segmenter.from_folder(tmp_path / "seg")
    segmenter.precision = "float32"
    frame = np.random.default_rng(4).random((64, 64), dtype=np.float32)
    context = [segmenter.normalize(frame)] * 2
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in context]

    def probabilities(ctx):
        return segmenter.probabilities(ctx, frame.shape)

    plain_gap = np.abs(probabilities(mirrored) - probabilities(context)[..., ::-1]).max()
    segmenter.flip_average = True
    averaged = probabilities(context)
    np.testing.assert_allclose(probabilities(mirrored), averaged[..., ::-1], atol=1e-5)
    assert plain_gap > 1e-3  # a plain network is not mirror-symmetric: the test can fail
    np.testing.assert_allclose(averaged[:3].sum(axis=0), 1.0, atol=1e-5)

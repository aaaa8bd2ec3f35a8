"""Cell features and crops, checked against scikit-image's regionprops (not our own code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.measure import regionprops_table

from inference.cells.crops import cell_crops, crop_geometry, intensity_range
from inference.cells.features import compact_labels, feature_columns, frame_features
from inference.cells.moments import cell_moments
from inference.errors import CTCError


def _blobs(shape: tuple[int, ...], labels: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    mask = np.zeros(shape, np.uint32)
    for label in labels:
        centre = rng.uniform(6, np.asarray(shape) - 6)
        radii = rng.uniform(2, 5, size=len(shape))
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1
        mask[inside] = label
    return mask


@pytest.mark.parametrize("shape", [(64, 80), (16, 40, 48)])
def test_features_match_regionprops(shape):
    labels = [3, 7, 100, 2**23 + 5]  # skips numbers; the last is past the lookup table
    mask = _blobs(shape, labels)
    image = np.random.default_rng(1).integers(0, 4000, size=shape).astype(np.uint16)
    table = frame_features(mask, image, frame=5)
    ref = regionprops_table(
        mask.astype(np.int64),
        image,
        properties=(
            "label",
            "area",
            "centroid",
            "bbox",
            "intensity_mean",
            "intensity_max",
            "intensity_min",
            "axis_major_length",
            "axis_minor_length",
        ),
    )
    assert list(table.columns) == feature_columns(len(shape))
    assert (table["frame"] == 5).all()
    np.testing.assert_array_equal(table["label"], ref["label"])
    np.testing.assert_allclose(table["area"], ref["area"])
    axes = "zyx"[-len(shape) :]
    for k, a in enumerate(axes):
        np.testing.assert_allclose(table[f"centroid_{a}"], ref[f"centroid-{k}"])
        np.testing.assert_allclose(table[f"bbox_min_{a}"], ref[f"bbox-{k}"])
        np.testing.assert_allclose(table[f"bbox_max_{a}"], ref[f"bbox-{k + len(shape)}"])
    np.testing.assert_allclose(table["mean_intensity"], ref["intensity_mean"])
    np.testing.assert_allclose(table["max_intensity"], ref["intensity_max"])
    np.testing.assert_allclose(table["min_intensity"], ref["intensity_min"])
    np.testing.assert_allclose(table["major_axis"], ref["axis_major_length"], rtol=1e-6)
    np.testing.assert_allclose(table["minor_axis"], ref["axis_minor_length"], rtol=1e-6)


def test_empty_frame_gives_an_empty_table():
    table = frame_features(np.zeros((20, 30), np.uint16), np.ones((20, 30), np.uint8), 0)
    assert table.empty and list(table.columns) == feature_columns(2)


def test_bad_masks_are_refused():
    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(CTCError, match="negative"):
        frame_features(np.full((8, 8), -1, np.int16), image, 0)
    with pytest.raises(CTCError, match="integer"):
        frame_features(np.zeros((8, 8), np.float32), image, 0)
    with pytest.raises(CTCError, match="shape"):
        frame_features(np.zeros((8, 9), np.uint16), image, 0)


def test_compact_labels_renumber_in_order():
    mask = np.array([[0, 9, 9], [4, 0, 1000]], np.uint16)
    compact = compact_labels(mask)
    np.testing.assert_array_equal(compact.labels, [4, 9, 1000])
    np.testing.assert_array_equal(compact.index, [[0, 2, 2], [1, 0, 3]])


@pytest.mark.parametrize("shape", [(64, 80), (16, 40, 48)])
def test_crops_show_one_cell_at_a_fixed_size(shape):
    mask = _blobs(shape, [1, 2, 3])
    image = np.full(shape, 500, np.uint16)
    compact = compact_labels(mask)
    table = frame_features(mask, image, 0, compact)
    geometry = crop_geometry([table], len(shape), size=16)
    crops = cell_crops(image, compact, table, tuple(geometry["extent"]), tuple(geometry["size"]))
    assert crops.shape == (3, *geometry["size"]) and crops.dtype == np.float32
    assert (crops >= 0).all() and (crops <= 2.1).all()
    # a window as large as the whole cell: pixels outside the cell are 0, the cell is not
    assert (crops.reshape(3, -1).max(axis=1) > 0).all()
    assert (crops.reshape(3, -1).min(axis=1) == 0).all()


def test_crop_of_a_cell_larger_than_the_window_is_resized():
    mask = np.zeros((100, 100), np.uint16)
    mask[10:90, 20:60] = 1
    image = (np.arange(100)[:, None] * np.ones(100)).astype(np.uint16)
    compact = compact_labels(mask)
    table = frame_features(mask, image, 0, compact)
    crops = cell_crops(image, compact, table, (20, 20), (16, 16))
    assert crops.shape == (1, 16, 16)
    column = crops[0, :, 8]
    assert (np.diff(column) >= 0).all() and column[-1] > column[0]  # the whole gradient fits


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "uint32", "int64"])
def test_compact_labels_of_every_integer_type(dtype):
    mask = _blobs((40, 50), [1, 5, 77])
    compact = compact_labels(mask.astype(dtype))
    values, inverse = np.unique(mask, return_inverse=True)
    np.testing.assert_array_equal(compact.labels, values[1:])
    np.testing.assert_array_equal(compact.index, inverse.reshape(mask.shape))
    assert compact.index.dtype == np.int32


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_2d_moments_are_the_3d_ones_of_a_single_slice(dtype):
    mask = _blobs((70, 90), list(range(1, 12)), seed=4)
    image = np.random.default_rng(5).uniform(0, 3000, size=mask.shape).astype(dtype)
    compact = compact_labels(mask)
    flat = cell_moments(compact.index, image, compact.count)
    slab = cell_moments(compact.index[None], image[None], compact.count)
    for name in ("area", "sums", "products", "box_min", "box_max", "value_sum", "value_min"):
        np.testing.assert_array_equal(getattr(flat, name), getattr(slab, name), err_msg=name)
    np.testing.assert_array_equal(flat.value_squares, slab.value_squares)


def _torch_crops(image, compact, table, extent, size):
    """The crops as cutting each window out and pooling it with torch (the reference)."""
    lo, hi = intensity_range(image, compact)
    axes = "zyx"[-image.ndim :]
    pool = F.adaptive_avg_pool2d if image.ndim == 2 else F.adaptive_avg_pool3d
    out = []
    for k, row in enumerate(table.itertuples()):
        bmin = np.array([getattr(row, f"bbox_min_{a}") for a in axes], int)
        bmax = np.array([getattr(row, f"bbox_max_{a}") for a in axes], int)
        side = np.maximum(extent, bmax - bmin)
        start = (bmin + bmax) // 2 - side // 2
        src = tuple(
            slice(max(s, 0), min(s + w, n))
            for s, w, n in zip(start, side, image.shape, strict=True)
        )
        dst = tuple(slice(a.start - s, a.stop - s) for a, s in zip(src, start, strict=True))
        values = (image[src].astype(np.float64) - lo) * (1.0 / (hi - lo))
        window = np.zeros(side, np.float32)
        window[dst] = np.where(compact.index[src] == k + 1, 0.1 + np.clip(values, 0, 2), 0)
        out.append(pool(torch.from_numpy(window)[None, None], size)[0, 0].numpy())
    return np.stack(out)


@pytest.mark.parametrize(
    ("shape", "extent", "size"),
    [
        ((90, 100), (30, 30), (16, 16)),
        ((90, 100), (23, 37), (16, 11)),
        ((12, 60, 70), (5, 30, 30), (5, 16, 16)),
    ],
)
def test_crops_pool_as_torch_does_to_the_last_bit(shape, extent, size):
    mask = _blobs(shape, list(range(1, 9)), seed=7)
    mask[: shape[0] // 3] = np.where(mask[: shape[0] // 3] > 0, 3, 0)  # a large cell too
    image = np.random.default_rng(8).integers(0, 4000, size=shape).astype(np.uint16)
    compact = compact_labels(mask)
    table = frame_features(mask, image, 0, compact)
    crops = cell_crops(image, compact, table, extent, size)
    np.testing.assert_array_equal(crops, _torch_crops(image, compact, table, extent, size))

"""SEG and detection counts on label arrays (for model selection; reports use py-ctcmetrics)."""

from __future__ import annotations

import numpy as np


def match_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[float, int, int, int, int]:
    """(IoU sum over GT objects, GT objects, matched GT objects, predicted objects, predicted
    objects that match a GT object).

    A GT object is matched by the predicted object covering more than half of it, as in
    the CTC's SEG and DET measures; SEG = IoU sum / GT objects.
    """
    gt = gt.ravel().astype(np.int64)
    pred = pred.ravel().astype(np.int64)
    n_gt, n_pred = int(gt.max(initial=0)) + 1, int(pred.max(initial=0)) + 1
    pairs = np.bincount(gt * n_pred + pred, minlength=n_gt * n_pred).reshape(n_gt, n_pred)
    gt_area = pairs.sum(axis=1)
    pred_area = pairs.sum(axis=0)
    present_gt = np.flatnonzero(gt_area[1:]) + 1
    present_pred = int(np.count_nonzero(pred_area[1:]))
    if n_pred == 1 or present_gt.size == 0:  # nothing predicted, or nothing to find
        return 0.0, int(present_gt.size), 0, present_pred, 0
    overlap = pairs[present_gt, 1:]
    best = overlap.argmax(axis=1) + 1
    inter = pairs[present_gt, best]
    matched = inter * 2 > gt_area[present_gt]
    union = gt_area[present_gt] + pred_area[best] - inter
    iou = np.where(matched, inter / np.maximum(union, 1), 0.0)
    matched_pred = int(np.unique(best[matched]).size)  # one may cover two merged GT cells
    return float(iou.sum()), int(present_gt.size), int(matched.sum()), present_pred, matched_pred


def marker_counts(markers: np.ndarray, pred: np.ndarray) -> tuple[int, int]:
    """(predicted objects, predicted objects that are the match of a tracking marker).

    Markers label every cell of a frame, where SEG masks often annotate a few: an object
    that matches no marker (debris, or the second piece of a cut cell) is a false detection
    that SEG masks cannot see. A marker is matched by the object covering more than half of
    it, as in the CTC's DET measure.
    """
    m = markers.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    n_m, n_p = int(m.max(initial=0)) + 1, int(p.max(initial=0)) + 1
    found = int(np.count_nonzero(np.bincount(p, minlength=n_p)[1:]))
    if n_m == 1 or n_p == 1:
        return found, 0
    pairs = np.bincount(m * n_p + p, minlength=n_m * n_p).reshape(n_m, n_p)
    area = pairs.sum(axis=1)
    present = np.flatnonzero(area[1:]) + 1
    best = pairs[present, 1:].argmax(axis=1) + 1
    matched = pairs[present, best] * 2 > area[present]
    return found, int(np.unique(best[matched]).size)

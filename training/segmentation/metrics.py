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

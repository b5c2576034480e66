"""logits -> metrics: the audio-tagging scores of PSLA / AST / ATGNN / AT-GCN and DCASE / FSD50K.

* mAP and mAUC (PSLA / AST / ATGNN): per-class average precision and ROC AUC with
  scikit-learn, averaged over the classes that have at least one positive (AP) or both a
  positive and a negative (AUC) in the evaluation set; ``d' = sqrt(2) * Phi^-1(mAUC)``.
* lwlrap (DCASE 2019 task 2, FSD50K): label-weighted label-ranking average precision. For every
  clip and each of its true labels ``c``, precision = (number of true labels scored at or above
  ``c``) / (number of labels scored at or above ``c``); per-class lwlrap is the mean over the
  clips where ``c`` is true, and the overall value the mean over all (clip, true label) pairs,
  i.e. the per-class values weighted by label frequency.

Classes without a positive example are left out of every mean (and out of mAUC also those
without a negative); how many were left out is reported with each metric.
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

import numpy as np
import torch
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["tagging_metrics", "mean_average_precision", "lwlrap", "d_prime"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check(scores: ArrayLike, targets: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """``[N, S]`` scores and 0/1 targets -> float64 scores and boolean targets (``> 0.5``)."""
    s, t = _np(scores), _np(targets)
    if s.shape != t.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and targets {t.shape} must both be [N, S]")
    if not np.isfinite(s).all():
        raise ValueError(f"scores hold {int((~np.isfinite(s)).sum())} NaN or infinite values")
    if not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError("targets must be finite values in [0, 1] (0/1 multi-hot)")
    return s, t > 0.5


def d_prime(auc: float) -> float:
    """``sqrt(2) * Phi^-1(auc)``: the sensitivity index of PSLA / AST for a given ROC AUC."""
    return float(norm.ppf(auc) * np.sqrt(2.0))


def lwlrap(scores: ArrayLike, targets: ArrayLike) -> Dict[str, object]:
    """Label-weighted label-ranking average precision (DCASE 2019 task 2 / FSD50K).

    Args:
        scores: ``[N, S]`` scores (probabilities or logits: only their order within a clip
            matters).
        targets: ``[N, S]`` 0/1 targets (values above 0.5 count as positive).

    Ties are counted pessimistically, as scikit-learn's
    ``label_ranking_average_precision_score`` does: the rank of a label is the number of
    labels scored at or above it (``>=``), and the hits are the true labels among those. The
    overall value therefore equals scikit-learn's LRAP with ``sample_weight`` = number of true
    labels per clip. Clips without a true label contribute nothing; classes without a positive
    clip are left out (their weight is zero).

    Returns:
        ``lwlrap`` (float, NaN without any positive), ``per_class`` (``[S]``, NaN for the
        classes left out), ``weight`` (``[S]``, the share of all true labels each class holds;
        ``lwlrap == sum(per_class * weight)`` over the classes kept), ``classes_left_out``
        (classes without a positive) and ``samples_left_out`` (clips without a true label).
    """
    s, t = _check(scores, targets)
    num_classes = s.shape[1]
    # sort every clip's labels by descending score; ties are resolved below, so the order
    # inside a tie group does not matter
    order = np.argsort(-s, axis=1, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=1)
    t_sorted = np.take_along_axis(t, order, axis=1)
    hits = np.cumsum(t_sorted, axis=1)
    # pessimistic ties: every label of a tie group gets the position of the group's last label
    pos = np.arange(num_classes)
    is_last = np.ones_like(t_sorted)
    is_last[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    group_end = np.where(is_last, pos, num_classes)
    group_end = np.minimum.accumulate(group_end[:, ::-1], axis=1)[:, ::-1]
    precision_sorted = np.take_along_axis(hits, group_end, axis=1) / (group_end + 1.0)
    precision = np.zeros_like(s)
    np.put_along_axis(precision, order, np.where(t_sorted, precision_sorted, 0.0), axis=1)

    counts = t.sum(axis=0)
    total = counts.sum()
    kept = counts > 0
    per_class = np.full(num_classes, np.nan)
    per_class[kept] = precision.sum(axis=0)[kept] / counts[kept]
    weight = counts / total if total > 0 else np.zeros(num_classes)
    value = float(np.sum(per_class[kept] * weight[kept])) if total > 0 else float("nan")
    return {"lwlrap": value, "per_class": per_class, "weight": weight,
            "classes_left_out": int(num_classes - kept.sum()),
            "samples_left_out": int((t.sum(axis=1) == 0).sum())}


def tagging_metrics(scores: ArrayLike, targets: ArrayLike) -> Dict[str, object]:
    """All tagging metrics of one evaluation.

    Args:
        scores: ``[N, S]`` probabilities or logits (only their order matters).
        targets: ``[N, S]`` 0/1 targets (values above 0.5 count as positive).

    Returns:
        ``mAP``, ``mAUC``, ``d_prime``, ``lwlrap``; per-class ``AP`` / ``AUC`` arrays (NaN
        where undefined); the number of classes each mean covers (``classes_ap``,
        ``classes_auc``) and leaves out (``classes_left_out_ap``: no positive;
        ``classes_left_out_auc``: no positive or no negative). lwlrap leaves out the same
        classes as mAP.
    """
    s, t = _check(scores, targets)
    num_classes = s.shape[1]
    ap = np.full(num_classes, np.nan)
    auc = np.full(num_classes, np.nan)
    for c in range(num_classes):
        pos = t[:, c].sum()
        if pos > 0:
            ap[c] = average_precision_score(t[:, c], s[:, c])
            if pos < len(t):
                auc[c] = roc_auc_score(t[:, c], s[:, c])
    m_ap = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    m_auc = float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")
    classes_ap, classes_auc = int(np.isfinite(ap).sum()), int(np.isfinite(auc).sum())
    return {"mAP": m_ap, "mAUC": m_auc,
            "d_prime": d_prime(m_auc) if np.isfinite(m_auc) else float("nan"),
            "lwlrap": lwlrap(s, t)["lwlrap"],
            "AP": ap, "AUC": auc, "classes_ap": classes_ap, "classes_auc": classes_auc,
            "classes_left_out_ap": num_classes - classes_ap,
            "classes_left_out_auc": num_classes - classes_auc}


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    """mAP over the classes with at least one positive (see :func:`tagging_metrics`)."""
    return float(tagging_metrics(scores, targets)["mAP"])

"""logits -> metrics: the audio-tagging scores of PSLA / AST / ATGNN / AT-GCN.

Per-class average precision and ROC AUC with scikit-learn, averaged over the classes that
have at least one positive (AP) or both a positive and a negative (AUC) in the evaluation
set; ``d' = sqrt(2) * Phi^-1(mAUC)``.
"""
from __future__ import annotations

from typing import Dict, Union

import numpy as np
import torch
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["tagging_metrics", "mean_average_precision", "d_prime"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def d_prime(auc: float) -> float:
    return float(norm.ppf(auc) * np.sqrt(2.0))


def tagging_metrics(scores: ArrayLike, targets: ArrayLike) -> Dict[str, object]:
    """``scores`` (probabilities or logits: only their order matters) and 0/1 ``targets``, both
    ``[N, S]``. Returns ``mAP``, ``mAUC``, ``d_prime``, per-class ``AP`` / ``AUC`` arrays
    (NaN where undefined) and the number of classes each mean covers."""
    s, t = _np(scores), _np(targets) > 0.5
    if s.shape != t.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and targets {t.shape} must both be [N, S]")
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
    return {"mAP": m_ap, "mAUC": m_auc,
            "d_prime": d_prime(m_auc) if np.isfinite(m_auc) else float("nan"),
            "AP": ap, "AUC": auc, "classes_ap": int(np.isfinite(ap).sum()),
            "classes_auc": int(np.isfinite(auc).sum())}


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    return float(tagging_metrics(scores, targets)["mAP"])

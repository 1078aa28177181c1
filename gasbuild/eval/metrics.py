"""The benchmark's arithmetic: logits to a prediction and probabilities, then MCC, Brier, sn34.

Everything here follows BitMind's gasbench line by line (``benchmarks/utils/inference.py``
``process_model_output``; ``benchmarks/utils/metrics.py`` ``Metrics``; ``benchmarks/recording.py``
``compute_metrics_from_df``), so that a local score is the network's score on the same samples:

- a single logit is a sigmoid (AI when p > 0.5); two or more are a softmax, computed in the
  logits' own float32 as numpy does it there; with 3 classes the prediction is "argmax is not
  class 0" and P(AI) = 1 - P(real); with 2, P(AI) = P(synthetic);
- binary MCC from the confusion counts, 0.0 when a marginal is empty;
- Brier score on P(AI) clipped to [1e-7, 1 - 1e-7], 0.25 (chance) when nothing ran;
- ``sn34 = sqrt(max(1e-12, ((mcc+1)/2)^1.2 * max(0, (0.25-brier)/0.25)^1.8))`` clamped to
  [0, 1]: the floor makes the smallest score of a run that produced predictions 1e-6;
  a run with no successful sample scores 0.0, MCC 0.0 and Brier 0.25, as ``recording.py`` does.

Only numpy is needed; this module never sees model code (metrics are computed on the trusted
side from the logits the sandboxed child wrote).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MCC_EXPONENT = 1.2  # alpha in compute_sn34_score
BRIER_EXPONENT = 1.8  # beta
BRIER_CHANCE = 0.25  # always answering p = 0.5
SCORE_FLOOR = 1e-12  # the geometric mean's floor, before the square root
PROB_CLIP = 1e-7
LABELS = {"real": 0, "synthetic": 1, "semisynthetic": 1}  # constants.MEDIA_TYPE_TO_LABEL


@dataclass(frozen=True)
class Prediction:
    """One sample's verdict as the benchmark records it."""

    predicted: int  # 0 real, 1 AI-generated
    p_ai: float  # the probability the Brier score uses
    probs: tuple[float, ...]  # softmax (or the sigmoid's single value)


def process_output(logits: Any) -> Prediction:
    """``process_model_output``: one sample's logits (float32) to a prediction.

    numpy arithmetic on the float32 row, exactly as the benchmark does it, so that the
    probabilities carry the same rounding.
    """
    import numpy as np

    row = np.atleast_1d(np.asarray(logits)).flatten()
    if len(row) == 1:
        p = 1.0 / (1.0 + np.exp(-row[0]))
        probs = np.array([p], dtype=np.float64)
        return Prediction(int(p > 0.5), float(probs[0]), (float(probs[0]),))
    exp = np.exp(row - np.max(row))
    soft = exp / np.sum(exp)
    if len(soft) == 3:
        predicted = 0 if int(np.argmax(soft)) == 0 else 1
        p_ai = 1.0 - float(soft[0])
    elif len(soft) == 2:
        predicted = int(np.argmax(soft))
        p_ai = float(soft[1])
    else:  # the benchmark's fallback for other widths (gasbuild's checks reject them)
        predicted = int(soft[0] > 0.5)
        p_ai = float(soft[0])
    return Prediction(predicted, p_ai, tuple(float(x) for x in soft))


@dataclass(frozen=True)
class Scores:
    """The benchmark's figures over the samples that ran."""

    samples: int
    accuracy: float
    mcc: float
    brier: float
    sn34_score: float


def mcc(labels: Sequence[int], predicted: Sequence[int]) -> float:
    """Binary Matthews correlation from the confusion counts (0.0 when undefined)."""
    tp = tn = fp = fn = 0.0
    for label, pred in zip(labels, predicted, strict=True):
        if label == 1 and pred == 1:
            tp += 1
        elif label == 0 and pred == 0:
            tn += 1
        elif label == 0 and pred == 1:
            fp += 1
        elif label == 1 and pred == 0:
            fn += 1
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator > 0 else 0.0


def brier(labels: Sequence[int], p_ai: Sequence[float]) -> float:
    """Mean squared error of the clipped P(AI) against the label (0.25 when empty)."""
    if not labels:
        return BRIER_CHANCE
    total = 0.0
    for label, p in zip(labels, p_ai, strict=True):
        clipped = min(max(p, PROB_CLIP), 1.0 - PROB_CLIP)
        total += (clipped - label) ** 2
    return total / len(labels)


def sn34(mcc_value: float, brier_value: float) -> float:
    """``compute_sn34_score`` with its defaults (geometric mean, alpha 1.2, beta 1.8)."""
    mcc_norm = max(0.0, min((mcc_value + 1.0) / 2.0, 1.0)) ** MCC_EXPONENT
    brier_norm = max(0.0, (BRIER_CHANCE - brier_value) / BRIER_CHANCE) ** BRIER_EXPONENT
    final = max(SCORE_FLOOR, mcc_norm * brier_norm) ** 0.5
    return float(max(0.0, min(final, 1.0)))


def score(labels: Sequence[int], predictions: Iterable[Prediction]) -> Scores:
    """All figures for samples with these labels and predictions (in the same order)."""
    preds = list(predictions)
    if not preds:  # recording.py's answer for a run where nothing succeeded
        return Scores(0, 0.0, 0.0, BRIER_CHANCE, 0.0)
    predicted = [p.predicted for p in preds]
    correct = sum(1 for label, pred in zip(labels, predicted, strict=True) if label == pred)
    m = mcc(labels, predicted)
    b = brier(labels, [p.p_ai for p in preds])
    return Scores(len(preds), correct / len(preds), m, b, sn34(m, b))

"""Zero-shot classification and retrieval, per language."""
from clipscale.evaluation.driver import evaluate
from clipscale.evaluation.metrics import (ensemble_class_features, l2_normalize,
                                          retrieval_recall, zeroshot_top1)
from clipscale.evaluation.sets import EvalSets, chance_levels

__all__ = ["evaluate", "EvalSets", "chance_levels", "zeroshot_top1", "retrieval_recall",
           "ensemble_class_features", "l2_normalize"]

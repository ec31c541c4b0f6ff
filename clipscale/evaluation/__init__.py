"""Zero-shot classification and retrieval, per language.

Names load on first use, so the typed configs (``suite_config``) import without torch.
"""
import importlib

_HOME = {"evaluate": "driver", "EvalSets": "sets", "chance_levels": "sets",
         "zeroshot_top1": "metrics", "retrieval_recall": "metrics",
         "ensemble_class_features": "metrics", "l2_normalize": "metrics",
         "SuiteScorer": "suite_scoring", "SuiteError": "suite_readers", "read_suite": "suite_readers"}

__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'clipscale.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"clipscale.evaluation.{_HOME[name]}"), name)

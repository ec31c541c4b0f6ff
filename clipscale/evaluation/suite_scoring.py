"""Score a model on evaluation suites: flat ``<suite>/<metric>_<lang>`` columns.

Classification: ``top1``, ``top5``, ``mean_per_class_recall``; retrieval: ``i2t_r1/5/10`` and
``t2i_r1/5/10``; each per language and ``_mean`` over the suite's languages. ``<suite>/n_<lang>``
is the number of queries behind the per-language numbers (images; for retrieval also
``n_captions_<lang>``), for binomial intervals. The model needs only ``encode_image`` and
``encode_text``, as in evaluation/driver.py.
"""
from __future__ import annotations

import numpy as np
import torch

from clipscale.data.images import to_tensor_batch
from clipscale.evaluation.metrics import (classification_metrics, ensemble_class_features,
                                          multi_caption_recall)
from clipscale.evaluation.suite_readers import ClassificationData, RetrievalData, read_suite

RECALL_KS = (1, 5, 10)


def fill_template(template: str, name: str) -> str:
    """clip_benchmark's ``{c}``, and the bare ``{}`` / emoji-world ``{x}`` forms."""
    return template.replace("{c}", name).replace("{x}", name).replace("{}", name)


class Features:
    """Batched, normalised-later features of a model (eval mode and no grad are the caller's)."""

    def __init__(self, model, tokenizer, image_size: int, context_length: int, batch_size: int,
                 device, dtype=None):
        self.model, self.tokenizer = model, tokenizer
        self.image_size, self.context_length = image_size, context_length
        self.batch_size, self.device, self.dtype = batch_size, device, dtype

    def images(self, images) -> torch.Tensor:
        out = []
        for batch in images.batches(self.image_size, self.batch_size):
            x = to_tensor_batch(batch).to(self.device)
            out.append(self.model.encode_image(x.to(self.dtype) if self.dtype else x).float().cpu())
        return torch.cat(out)

    def texts(self, texts: list[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer.encode_batch(texts[i:i + self.batch_size], self.context_length)
            out.append(self.model.encode_text(tokens.to(self.device)).float().cpu())
        return torch.cat(out)


def score_classification(feats: Features, data: ClassificationData) -> dict[str, dict]:
    """language -> metrics (and ``n``)."""
    image_feats = feats.images(data.images)
    labels = torch.from_numpy(data.labels)
    out = {}
    for lang in data.languages:
        names, templates = data.classnames[lang], data.templates[lang]
        texts = [fill_template(t, n) for n in names for t in templates]
        class_feats = ensemble_class_features(feats.texts(texts).view(len(names), len(templates), -1))
        out[lang] = {**classification_metrics(image_feats, class_feats, labels), "n": len(labels)}
    return out


def score_retrieval(feats: Features, data: RetrievalData) -> dict[str, dict]:
    image_feats = feats.images(data.images)
    out = {}
    for lang in data.languages:
        texts, text_image = data.captions[lang]
        used, local = np.unique(text_image, return_inverse=True)  # this language's images only
        m = multi_caption_recall(image_feats[torch.from_numpy(used)], feats.texts(texts),
                                 torch.from_numpy(local), ks=RECALL_KS)
        out[lang] = {**m, "n": len(used), "n_captions": len(texts)}
    return out


def flatten(suite_name: str, per_lang: dict[str, dict]) -> dict[str, float]:
    """``{lang: {metric: v}}`` -> ``{suite/metric_lang: v}`` plus ``suite/metric_mean``."""
    out = {}
    for lang, metrics in per_lang.items():
        out.update({f"{suite_name}/{k}_{lang}": v for k, v in metrics.items()})
    for k in next(iter(per_lang.values())):
        if not k.startswith("n"):
            out[f"{suite_name}/{k}_mean"] = float(np.mean([m[k] for m in per_lang.values()]))
    return out


class SuiteScorer:
    """Suites read once (and small ones kept decoded); ``score`` runs a model over all of them."""

    def __init__(self, suites: list):
        self.suites = list(suites)
        self.data = [read_suite(s) for s in self.suites]

    def score_per_suite(self, feats: Features) -> list[tuple[object, object, dict[str, dict]]]:
        """[(suite config, data, {lang: metrics})] for every suite."""
        out = []
        for suite, data in zip(self.suites, self.data):
            fn = score_classification if isinstance(data, ClassificationData) else score_retrieval
            out.append((suite, data, fn(feats, data)))
        return out

    def run(self, model, tokenizer, image_size: int, context_length: int, batch_size: int = 256,
            device="cpu", dtype=None) -> list[tuple[object, object, dict[str, dict]]]:
        """``score_per_suite`` with the model in eval mode (restored after) and no grad."""
        was_training = isinstance(model, torch.nn.Module) and model.training
        if isinstance(model, torch.nn.Module):
            model.eval()
        try:
            with torch.no_grad():
                return self.score_per_suite(Features(model, tokenizer, image_size, context_length,
                                                     batch_size, device, dtype))
        finally:
            if was_training:
                model.train()

    def score(self, *args, **kwargs) -> dict[str, float]:
        """Flat ``<suite>/<metric>_<lang>`` columns; arguments as ``run``."""
        out = {}
        for suite, _, per_lang in self.run(*args, **kwargs):
            out.update(flatten(suite.name, per_lang))
        return out

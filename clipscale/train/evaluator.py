"""Evaluation inside the training loop: held-out sets decoded once, metrics on demand.

``eval.eval_dir`` (the emoji-world layout) gives the legacy ``zeroshot_top1_<lang>`` columns,
unchanged; each of ``eval.suites`` adds its ``<suite>/<metric>_<lang>`` columns."""
from __future__ import annotations

import torch

from clipscale.config import RunConfig


class Evaluator:
    def __init__(self, cfg: RunConfig, tokenizer_path: str, device, precision: str):
        from clipscale.evaluation import EvalSets, SuiteScorer
        from clipscale.text.tokenizer import load_tokenizer
        from clipscale.train.plan import plan_run

        last = plan_run(cfg)[-1]  # evaluate at the final stage's resolution and text length
        self.image_size, self.text_tokens = last.image_size, last.text_tokens
        self.sets = EvalSets.load(cfg.eval.eval_dir, self.image_size) if cfg.eval.eval_dir else None
        self.suites = SuiteScorer(cfg.eval.suites) if cfg.eval.suites else None
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.batch_size = cfg.eval.batch_size
        self.device = device
        self.dtype = torch.bfloat16 if precision == "bf16" else None

    def run(self, engine) -> dict:
        from clipscale.evaluation import evaluate

        out = {}
        if self.sets is not None:
            out.update(evaluate(engine.module, self.tokenizer, self.sets, self.image_size,
                                self.text_tokens, batch_size=self.batch_size, device=self.device,
                                dtype=self.dtype))
        if self.suites is not None:
            out.update(self.suites.score(engine.module, self.tokenizer, self.image_size,
                                         self.text_tokens, batch_size=self.batch_size,
                                         device=self.device, dtype=self.dtype))
        return out

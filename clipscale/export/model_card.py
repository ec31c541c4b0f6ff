"""The model card (``README.md``) of an ``hf`` export: what the model is, how it was trained, how it scores,
and how to load it in open_clip with the same token ids."""
from __future__ import annotations

import json

from clipscale.text.tokenizer import EOT_ID, PAD_ID, SOT_ID

LOADING = """\
```python
import open_clip, sentencepiece, torch

model, _, preprocess = open_clip.create_model_and_transforms("local-dir:PATH")  # or "hf-hub:ORG/NAME"
model.eval()
sp = sentencepiece.SentencePieceProcessor(model_file="PATH/tokenizer.model")

def tokenize(texts, context_length={ctx}):
    # clipscale's ids: SOT={sot}, pieces (cut to context_length - 2), EOT={eot}, then pad {pad}
    out = torch.full((len(texts), context_length), {pad}, dtype=torch.long)
    for i, ids in enumerate(sp.encode(list(texts))):
        row = [{sot}] + ids[: context_length - 2] + [{eot}]
        out[i, : len(row)] = torch.tensor(row)
    return out

with torch.no_grad():
    text_features = model.encode_text(tokenize(["a photo of a cat"]), normalize=True)
```

`open_clip.get_tokenizer` does not know this SentencePiece vocabulary: use `tokenize` above (or
`clipscale.text.tokenizer.load_tokenizer(path).encode_batch`), which give identical ids.
"""


def _eval_table(results, run_id: str) -> str:
    if results is None or len(results) == 0:
        return "No evaluation rows were recorded for this run.\n"
    rows = results[results["run_id"] == run_id] if "run_id" in results.columns else results
    if len(rows) == 0:
        return "No evaluation rows were recorded for this run.\n"
    last = rows.sort_values("samples_seen").iloc[-1]
    metrics = sorted(c for c in rows.columns
                     if any(c.startswith(p) or f"/{p}" in c for p in ("zeroshot_", "i2t_", "t2i_"))
                     and last.notna()[c])
    lines = [f"At {int(last['samples_seen']):,} samples seen:", "", "| metric | value |", "|---|---|"]
    lines += [f"| {m} | {float(last[m]):.4f} |" for m in metrics]
    return "\n".join(lines) + "\n"


def model_card(trained, image_size: int, results=None) -> str:
    cfg = trained.run_config or {}
    state = trained.state
    data = cfg.get("data", {})
    spec = trained.spec
    front = ["---", "library_name: open_clip", "tags:", "- clip", "- clipscale", "license: apache-2.0", "---"]
    body = [
        f"# {trained.name}",
        "",
        f"A CLIP model ({spec.name}: ViT image tower {spec.image.width}x{spec.image.layers}, patch "
        f"{spec.image.patch_size}, {image_size}px; text tower {spec.text.width}x{spec.text.layers}, "
        f"context {spec.text.context_length}, vocabulary {spec.text.vocab_size}; embedding {spec.embed_dim}; "
        f"{trained.loss} loss) trained with clipscale, in open_clip's format.",
        "",
        "## Training",
        "",
        f"- samples seen: {state.samples_seen:,} ({state.step:,} steps)",
        f"- compute: {state.compute:.4g} FLOPs",
        f"- data: `{data.get('train_shards', 'unknown')}`"
        + (f", languages {', '.join(data['languages'])}" if data.get("languages") else ""),
        "",
        "## Evaluation",
        "",
        _eval_table(results, cfg.get("name", trained.name)),
        "## Loading in open_clip",
        "",
        LOADING.format(ctx=spec.text.context_length, sot=SOT_ID, eot=EOT_ID, pad=PAD_ID),
        "## Run configuration",
        "",
        "```json",
        json.dumps(cfg, indent=1),
        "```",
        "",
    ]
    return "\n".join(front + body)

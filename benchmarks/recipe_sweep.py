"""The tiny recipe, measured: a plain single-process loop on clipscale's own towers and loss.

Each probe trains one model on pre-decoded tensors of a world's curated shards (no Ray, no
DeepSpeed: the learning question apart from the distributed path) and records samples seen,
training wall, final train loss, a contrastive **val loss** on fresh training-distribution pairs
(the tuning signal: far less noisy than zero-shot on a few hundred images) and the held-out
zero-shot / retrieval metrics (validation only, never tuned on). Rows go to a JSON-lines file;
``--table`` renders them as the markdown table of docs/recipe.md.

    python benchmarks/recipe_sweep.py world  DIR  '{"num_samples": 40000, ...}'   # pool + curation
    python benchmarks/recipe_sweep.py probe  DIR  '{"model": "tiny-s", "lr": 1e-3, ...}' --rows R.jsonl
    python benchmarks/recipe_sweep.py table  R.jsonl

The probe's knobs and defaults are ``Probe``'s fields; ``english_share: 1.0`` keeps only the
English curated pairs (what the demo's English-only trials train on).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from clipscale.models.clip import CLIP
from clipscale.models.registry import get_spec
from clipscale.train.engine import param_groups
from clipscale.train.loss import clip_softmax_loss
from clipscale.train.schedule import cosine_lr


class Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "tiny-s"
    image_size: int = 32
    text_tokens: int = 16
    samples: int = 16384
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 1024
    weight_decay: float = 0.1
    logit_scale: float | None = None   # init of exp(logit_scale); None: CLIP's 1/0.07
    english_share: float | None = None  # 1.0: English pairs only
    threads: int = 2
    seed: int = 0
    data: str = "curated"              # curated | pool


# ---- world: pool, curation, tokenizer, fresh val pairs ----

def make_world(folder: Path, world: dict) -> dict:
    from clipscale.curation.config import CurationConfig
    from clipscale.curation.job import run_curation
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.text.tokenizer import train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    t = time.time()
    summary = generate_pool(EmojiWorldConfig(**world), folder / "world", workers=2, progress=False)
    t_pool = time.time() - t
    # fresh pairs of the same world (another pool seed) for the val loss
    val_cfg = dict(world, num_samples=2000, samples_per_shard=2000, seed=int(world.get("seed", 0)) + 7919)
    generate_pool(EmojiWorldConfig(**val_cfg), folder / "val", workers=1, progress=False)
    t = time.time()
    report = run_curation(CurationConfig(input=str(folder / "world" / "pool"),
                                         output=str(folder / "curated"),
                                         metadata=str(folder / "world" / "lexicons"),
                                         workers=1, cpus_per_worker=0.5), progress=False)
    t_cur = time.time() - t
    tok = folder / "tokenizer.model"
    if not tok.exists():
        train_tokenizer(folder / "curated" / "shards", tok, vocab_size=2048)
    info = {"world": world, "pool_s": round(t_pool, 1), "curation_s": round(t_cur, 1),
            "pool_languages": summary["languages"], "curation": report}
    (folder / "world_info.json").write_text(json.dumps(info, indent=1, default=str))
    return info


def _load_pairs(shards_dir: Path, size: int, cache: Path):
    """(uint8 images [N, s, s, 3], captions, languages, is_noise), decoded once per size."""
    from clipscale.data.images import decode_image
    from clipscale.data.shards import iter_shard, list_shards

    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return z["images"], list(z["captions"]), list(z["langs"]), z["noise"]
    images, caps, langs, noise = [], [], [], []
    for shard in list_shards(shards_dir):
        for s in iter_shard(shard):
            if s.image is None or s.text is None:
                continue
            images.append(decode_image(s.image, size))
            caps.append(s.text)
            langs.append((s.meta or {}).get("language", "?"))
            noise.append(bool((s.meta or {}).get("is_noise", False)))
    out = np.stack(images), caps, langs, np.array(noise)
    np.savez(cache, images=out[0], captions=np.array(caps, dtype=object),
             langs=np.array(langs, dtype=object), noise=out[3])
    return out


def _tokens(tok, captions, text_tokens) -> torch.Tensor:
    from clipscale.text.reduction import truncate

    out = [tok.encode_batch(captions[i:i + 1024], 32) for i in range(0, len(captions), 1024)]
    return truncate(torch.cat(out), text_tokens)  # the run's default: tokenise at 32, truncate


# ---- one probe ----

def val_loss(model, images: np.ndarray, tokens: torch.Tensor, batch: int = 256) -> float:
    """Mean symmetric InfoNCE over fixed chunks of `batch` fresh pairs at logit scale 1/0.07
    (fixed, so the number compares across runs whatever temperature each learnt)."""
    from clipscale.data.images import to_tensor_batch

    losses = []
    with torch.no_grad():
        for i in range(0, len(tokens) - batch + 1, batch):
            out = model(to_tensor_batch(images[i:i + batch]), tokens[i:i + batch])
            losses.append(float(clip_softmax_loss(out["image_features"], out["text_features"],
                                                  torch.tensor(1 / 0.07))))
    return float(np.mean(losses))


def run_probe(folder: Path, p: Probe) -> dict:
    from clipscale.data.images import to_tensor_batch
    from clipscale.evaluation import evaluate
    from clipscale.evaluation.sets import EvalSets
    from clipscale.text.tokenizer import load_tokenizer

    torch.set_num_threads(p.threads)
    torch.manual_seed(p.seed)
    tok = load_tokenizer(folder / "tokenizer.model")
    src = folder / ("curated/shards" if p.data == "curated" else "world/pool")
    images, caps, langs, noise = _load_pairs(src, p.image_size, folder / f"{p.data}_{p.image_size}.npz")
    if p.english_share == 1.0:
        keep = np.array([lang == "en" for lang in langs])
        images, caps = images[keep], [c for c, k in zip(caps, keep) if k]
    elif p.english_share is not None:
        raise ValueError("probe english_share: only 1.0 (English only) or null (the whole mix)")
    tokens = _tokens(tok, caps, p.text_tokens)
    v_img, v_caps, v_langs, v_noise = _load_pairs(folder / "val" / "pool", p.image_size,
                                                  folder / f"val_{p.image_size}.npz")
    clean = ~v_noise
    v_img, v_tok = v_img[clean], _tokens(tok, [c for c, k in zip(v_caps, clean) if k], p.text_tokens)
    v_en = np.array([lang == "en" for lang, k in zip(v_langs, clean) if k])

    spec = get_spec(p.model, vocab_size=tok.vocab_size, context_length=32)
    model = CLIP(spec, init_logit_scale=None if p.logit_scale is None else math.log(p.logit_scale))
    opt = torch.optim.AdamW(param_groups(model, p.weight_decay), lr=p.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = np.random.default_rng(p.seed)
    order, pos, seen, losses = gen.permutation(len(tokens)), 0, 0, []
    t0 = time.perf_counter()
    while seen < p.samples:
        if pos + p.batch > len(order):
            order, pos = gen.permutation(len(tokens)), 0
        idx = order[pos:pos + p.batch]
        pos += p.batch
        for g in opt.param_groups:
            g["lr"] = cosine_lr(seen, p.lr, p.warmup, p.samples)
        out = model(to_tensor_batch(images[idx]), tokens[idx])
        loss = clip_softmax_loss(out["image_features"], out["text_features"], out["logit_scale"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += p.batch
        losses.append(float(loss))
    wall = time.perf_counter() - t0
    model.eval()
    m = evaluate(model, tok, EvalSets.load(folder / "world" / "eval", p.image_size), p.image_size,
                 p.text_tokens)
    langs_eval = [k[len("zeroshot_top1_"):] for k in m if k.startswith("zeroshot_top1_")
                  and k not in ("zeroshot_top1_mean", "zeroshot_top1_non_en")]
    row = {"probe": p.model_dump(), "world": json.loads((folder / "world_info.json").read_text())["world"],
           "pairs": len(tokens), "epochs": round(seen / len(tokens), 2), "samples_seen": seen,
           "wall_s": round(wall, 1), "samples_per_s": round(seen / wall, 1),
           "train_loss": round(float(np.mean(losses[-20:])), 3),
           "val_loss": round(val_loss(model, v_img, v_tok), 3),
           "val_loss_en": round(val_loss(model, v_img[v_en], v_tok[v_en]), 3),
           "zs_mean": round(m["zeroshot_top1_mean"], 4), "zs_en": round(m["zeroshot_top1_en"], 4),
           "i2t_r1_mean": round(float(np.mean([m[f"i2t_r1_{x}"] for x in langs_eval])), 4),
           "t2i_r1_en": round(m["t2i_r1_en"], 4),
           "logit_scale_end": round(float(model.logit_scale.exp()), 1)}
    return row


def table(rows: list[dict]) -> str:
    head = ("| world | model | px | batch | lr | warmup | wd | scale init | samples | pairs | epochs | wall s | "
            "samples/s | train loss | val loss | val loss en | zs mean | zs en | i2t R@1 mean | t2i R@1 en |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        p, w = r["probe"], r["world"]
        wname = r.get("world_name", f"{w.get('num_samples')}/{w.get('num_concepts')}c")
        mix = " en-only" if p.get("english_share") == 1.0 else ""
        lines.append(f"| {wname}{mix} | {p['model']} | {p['image_size']} | {p['batch']} | {p['lr']:g} | "
                     f"{p['warmup']} | {p['weight_decay']:g} | {p.get('logit_scale') or '1/0.07'} | {r['samples_seen']} | {r['pairs']} | "
                     f"{r['epochs']} | {r['wall_s']} | {r['samples_per_s']} | {r['train_loss']} | "
                     f"{r['val_loss']} | {r['val_loss_en']} | {100 * r['zs_mean']:.1f} | "
                     f"{100 * r['zs_en']:.1f} | {100 * r['i2t_r1_mean']:.1f} | {100 * r['t2i_r1_en']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verb", choices=["world", "probe", "table"])
    ap.add_argument("target", help="world folder (world, probe) or rows file (table)")
    ap.add_argument("spec", nargs="?", default="{}", help="JSON: the world config or the probe")
    ap.add_argument("--rows", help="probe: append the row to this JSON-lines file")
    ap.add_argument("--name", help="probe: a short name of the world for the table")
    a = ap.parse_args(argv)
    if a.verb == "world":
        info = make_world(Path(a.target), json.loads(a.spec))
        print(json.dumps({k: info[k] for k in ("pool_s", "curation_s", "pool_languages")}))
        print(json.dumps(info["curation"], default=str)[:2000])
    elif a.verb == "probe":
        row = run_probe(Path(a.target), Probe(**json.loads(a.spec)))
        if a.name:
            row["world_name"] = a.name
        if a.rows:
            with open(a.rows, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(table([row]))
    else:
        rows = [json.loads(x) for x in Path(a.target).read_text().splitlines() if x.strip()]
        print(table(rows))


if __name__ == "__main__":
    sys.exit(main())

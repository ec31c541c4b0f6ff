"""``clipscale tokenizer train --shards DIR --out FILE``: a SentencePiece model on the captions."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    tok = sub.add_parser("tokenizer", help="train the SentencePiece tokenizer")
    tsub = tok.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    p = tsub.add_parser("train", help="train a tokenizer on the captions of shards",
                        description="Reserved ids: pad=0, unk=1, sot=2, eot=3.")
    p.add_argument("--shards", required=True, help="shard folder, glob or file")
    p.add_argument("--out", required=True, help="output .model file")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    p.add_argument("--character-coverage", type=float, default=0.9995,
                   help="share of characters covered by the vocabulary; the rest are bytes")
    p.add_argument("--max-sentences", type=int, default=200_000,
                   help="captions read (the first ones, in shard order)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from clipscale.config import ConfigError
    from clipscale.text.tokenizer import load_tokenizer, train_tokenizer

    try:
        path = train_tokenizer(args.shards, args.out, vocab_size=args.vocab_size,
                               model_type=args.model_type,
                               character_coverage=args.character_coverage,
                               max_sentences=args.max_sentences)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    print(f"wrote {path} ({load_tokenizer(path).vocab_size} pieces)")
    return 0

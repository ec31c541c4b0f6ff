"""``clipscale tokenizer train --shards DIR --out FILE``: a SentencePiece model on the captions."""
from __future__ import annotations

import argparse
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class TokenizerTrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shards: str = Field(description="shard folder, glob or file")
    out: str = Field(description="output .model file")
    vocab_size: int = Field(4096, ge=64, description="vocabulary size")
    model_type: Literal["unigram", "bpe"] = Field("unigram", description="SentencePiece model type")
    character_coverage: float = Field(0.9995, gt=0, le=1, description="share of characters covered by "
                                                                      "the vocabulary; the rest are bytes")
    max_sentences: int = Field(200_000, ge=1, description="captions read (the first ones, in shard order)")


def register(sub) -> None:
    tok = sub.add_parser("tokenizer", help="train the SentencePiece tokenizer")
    tsub = tok.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    p = tsub.add_parser("train", help="train a tokenizer on the captions of shards",
                        description="Reserved ids: pad=0, unk=1, sot=2, eot=3.")
    add_model_flags(p, TokenizerTrainOptions)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from clipscale.errors import ConfigError
    from clipscale.text.tokenizer import load_tokenizer, train_tokenizer

    opts = model_from_args(args, TokenizerTrainOptions, kind="tokenizer options")
    try:
        path = train_tokenizer(opts.shards, opts.out, vocab_size=opts.vocab_size, model_type=opts.model_type,
                               character_coverage=opts.character_coverage, max_sentences=opts.max_sentences)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e
    print(f"wrote {path} ({load_tokenizer(path).vocab_size} pieces)")
    return 0

"""SentencePiece tokenizer: train on captions, load, encode batches for the text tower.

Reserved ids: 0 = pad, 1 = unknown, 2 = start of text (SOT), 3 = end of text (EOT). A caption
becomes ``[SOT, pieces..., EOT, 0, 0, ...]``; when it is too long the pieces are cut and EOT
stays last, because text towers pooled at EOT must always find it.

The model file is one self-contained ``.model`` file: a run copies it into its own folder and
reuses that copy on resume, so token ids never change under a run.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

from clipscale.errors import ClipscaleError

PAD_ID, UNK_ID, SOT_ID, EOT_ID = 0, 1, 2, 3
RUN_TOKENIZER_NAME = "tokenizer.model"
MIN_COVERAGE = 0.98  # SentencePiece refuses a lower character_coverage


class TokenizerNotFoundError(ClipscaleError, FileNotFoundError):
    """The tokenizer file is missing (or is not a SentencePiece model)."""


def _captions_from(source) -> Iterable[str]:
    """A folder / glob / shard file (str or path) -> its captions; any other iterable is taken
    to be the captions themselves."""
    if isinstance(source, (str, os.PathLike)):
        from clipscale.data.shards import iter_shard, list_shards

        def gen():
            for path in list_shards(source):
                for s in iter_shard(path):
                    if s.text is not None:
                        yield s.text
        return gen()
    return source


def train_tokenizer(source, out_path: str | os.PathLike, vocab_size: int = 4096,
                    model_type: str = "unigram", character_coverage: float = 0.9995,
                    max_sentences: int = 200_000, byte_fallback: bool = True,
                    num_threads: int = 1) -> Path:
    """Train a SentencePiece model on captions and write it to ``out_path`` (atomically).

    ``source``: a shard folder, glob or file, or an iterable of caption strings.
    ``character_coverage`` 0.9995 is SentencePiece's advice for CJK-rich text: rare characters
    are left out of the vocabulary and, with ``byte_fallback``, spelled as UTF-8 bytes instead of
    becoming unknown. ``vocab_size`` is a soft limit: a small corpus may give fewer pieces.
    ``num_threads=1`` keeps training deterministic."""
    import sentencepiece as spm

    captions = []
    for text in _captions_from(source):
        text = text.replace("\n", " ").strip()
        if text:
            captions.append(text)
        if len(captions) >= max_sentences:
            break
    if not captions:
        raise ValueError("no captions to train the tokenizer on (empty source)")
    reserved = 4 + (256 if byte_fallback else 0)
    if vocab_size <= reserved:
        raise ValueError(f"vocab_size={vocab_size} leaves no room for pieces: the special tokens "
                         f"{'and the 256 byte tokens ' if byte_fallback else ''}take {reserved}")
    # keep a quarter of the non-reserved vocabulary for multi-character pieces
    coverage = fit_character_coverage(captions, (vocab_size - reserved) * 3 // 4,
                                      character_coverage)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(captions), model_writer=model, vocab_size=vocab_size,
        model_type=model_type, character_coverage=coverage,
        byte_fallback=byte_fallback, hard_vocab_limit=False,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=SOT_ID, eos_id=EOT_ID,
        pad_piece="<pad>", unk_piece="<unk>", bos_piece="<sot>", eos_piece="<eot>",
        num_threads=num_threads, input_sentence_size=0, shuffle_input_sentence=False,
        minloglevel=2)
    from clipscale.atomic import atomic_path

    out = Path(out_path)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(model.getvalue())
    return out


def fit_character_coverage(captions: list[str], max_chars: int, coverage: float) -> float:
    """The largest coverage <= ``coverage`` that keeps at most ``max_chars`` distinct characters.

    SentencePiece refuses a vocabulary smaller than the characters it must cover, and 14
    languages (CJK above all) bring thousands. It keeps characters by descending frequency while
    the share covered so far is below the coverage, so capping the coverage at the share of the
    ``max_chars`` most frequent characters keeps exactly that many; byte fallback spells the rest.
    Counted as SentencePiece does: after NFKC, with spaces as the "\u2581" meta symbol."""
    import unicodedata
    from collections import Counter

    counts = Counter()
    for text in captions:
        counts.update(unicodedata.normalize("NFKC", text).replace(" ", "\u2581"))
    freqs = sorted(counts.values(), reverse=True)
    if len(freqs) <= max_chars:
        return coverage
    total = sum(freqs)
    fitted = min(coverage, sum(freqs[:max_chars]) / total * (1 - 1e-9))
    if fitted < MIN_COVERAGE:  # SentencePiece's own floor
        cum, need = 0, 0
        while cum / total < MIN_COVERAGE:
            cum += freqs[need]
            need += 1
        raise ValueError(f"vocabulary too small for these captions: {need} distinct characters "
                         f"cover {MIN_COVERAGE:.0%} of the text and a vocabulary needs about 4/3 "
                         f"of that for characters plus the reserved tokens; raise vocab_size")
    return fitted


class Tokenizer:
    """A loaded SentencePiece model with the reserved ids above."""

    def __init__(self, path: str | os.PathLike):
        import sentencepiece as spm

        self.path = str(path)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(self.path)
        except (OSError, RuntimeError) as e:
            raise TokenizerNotFoundError(f"{self.path} is not a SentencePiece model ({e})") from e
        ids = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if ids != (PAD_ID, UNK_ID, SOT_ID, EOT_ID):
            raise ValueError(f"{self.path}: reserved ids (pad, unk, sot, eot) are {ids}, expected "
                             f"{(PAD_ID, UNK_ID, SOT_ID, EOT_ID)}; train it with clipscale")

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    pad_id, sot_id, eot_id = PAD_ID, SOT_ID, EOT_ID

    def encode(self, text: str) -> list[int]:
        """Piece ids of one caption, without SOT/EOT."""
        return self.sp.EncodeAsIds(text)

    def decode(self, ids) -> str:
        """Text of ids; pad, SOT and EOT are dropped."""
        return self.sp.DecodeIds([int(i) for i in ids if int(i) not in (PAD_ID, SOT_ID, EOT_ID)])

    def encode_ids(self, texts: list[str], context_length: int):
        """int64 array [B, context_length]: SOT, pieces, EOT, then pad 0. Long captions keep their
        first ``context_length - 2`` pieces and end in EOT. NumPy, not torch: the training
        stream's decode tasks tokenize, and importing torch there cost each decode process
        ~1 CPU-s at start (docs/throughput.md)."""
        import numpy as np

        if context_length < 2:
            raise ValueError(f"context_length must be >= 2 (SOT and EOT), got {context_length}")
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for i, ids in enumerate(self.sp.EncodeAsIds(list(texts))):
            row = [SOT_ID] + ids[: context_length - 2] + [EOT_ID]
            out[i, : len(row)] = row
        return out

    def encode_batch(self, texts: list[str], context_length: int):
        """``encode_ids`` as a LongTensor."""
        import torch

        return torch.from_numpy(self.encode_ids(texts, context_length))


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer file; a missing file is a TokenizerNotFoundError that says how to make one.
    A URI (a run's tokenizer on shared storage) is read from this node's cached copy of it."""
    from clipscale import storage

    if storage.is_uri(path):
        try:
            path = storage.local_copy(path)
        except FileNotFoundError:
            raise TokenizerNotFoundError(f"tokenizer not found: {path}") from None
    p = Path(path)
    if not p.is_file():
        raise TokenizerNotFoundError(
            f"tokenizer not found: {p} (train one with `clipscale tokenizer train --shards DIR "
            f"--out {p.name}`, or point the run at an existing .model file)")
    return Tokenizer(p)


def tokenizer_for_run(run_dir: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """The run's own tokenizer file, ``run_dir/tokenizer.model``: reused when present (a resumed
    run keeps its ids), else copied from ``source``. Raises when neither exists."""
    import shutil

    dest = Path(run_dir) / RUN_TOKENIZER_NAME
    if dest.is_file():
        return dest
    if source is None or not Path(source).is_file():
        raise TokenizerNotFoundError(f"no tokenizer in {run_dir} and source {source} is missing")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest

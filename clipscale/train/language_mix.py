"""A run's language mix, chosen per run from one shared pool: which captions the stream keeps.

Sweeps over English share or language set do not need one pool per mix. The stream keeps a
caption with a probability that depends only on its language (the shard json's ``language``):

- ``languages``: captions in other languages are dropped (rate 0).
- ``english_share`` s: with e the English share of the (language-filtered) pool, keep English at
  rate s(1-e) / ((1-s)e) when s <= e, else keep every other language at rate (1-s)e / (s(1-e)).
  Only one side is thinned, so as much data as possible is kept.

The keep decision hashes the sample key with the run's seed, so it is the same on every epoch,
on every resume and in every read task (no shared random state). The mix a run reports in its
results rows is the expected mix after filtering, computed from the pool's measured mix.
"""
from __future__ import annotations

import zlib


def keep_rates(pool_mix: dict[str, float], languages: list[str] | None,
               english_share: float | None) -> dict[str, float]:
    """Keep probability per language of ``pool_mix`` (counts or shares) for the wanted mix."""
    rates = {lang: 1.0 if languages is None or lang in languages else 0.0 for lang in pool_mix}
    kept = {lang: n * rates[lang] for lang, n in pool_mix.items()}
    total = sum(kept.values())
    if total <= 0:
        raise ValueError(f"data.languages={languages}: the pool has no caption in these languages "
                         f"(it has {sorted(pool_mix)})")
    if english_share is None:
        return rates
    e = kept.get("en", 0.0) / total
    s = english_share
    if e == 0 and s > 0:
        raise ValueError(f"data.english_share={s}: the pool has no English captions")
    if e == 1 and s < 1:
        raise ValueError(f"data.english_share={s}: the pool has only English captions")
    if s <= e:
        rates["en"] = s * (1 - e) / ((1 - s) * e) if s < 1 else 1.0
    else:
        other = (1 - s) * e / (s * (1 - e))
        rates = {lang: (other * r if lang != "en" else r) for lang, r in rates.items()}
    return rates


def mix_after(pool_mix: dict[str, float], rates: dict[str, float]) -> dict[str, float]:
    """Expected language shares after keeping each language at its rate."""
    kept = {lang: n * rates.get(lang, 1.0) for lang, n in pool_mix.items()}
    total = sum(kept.values())
    return {lang: v / total for lang, v in kept.items() if v > 0}


def keeps(key: str, rate: float, seed: int) -> bool:
    """Deterministic Bernoulli(rate) draw for one sample key."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(f"{seed}:{key}".encode()) / 2**32 < rate

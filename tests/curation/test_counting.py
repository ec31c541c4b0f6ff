"""The counting pass per shard, without Ray: partial counts of any split of the pool add up to
the counts of the whole pool exactly."""
import random

import numpy as np

from clipscale.curation.job import add_counts
from clipscale.curation.shard_pass import CaptionMatcher, count_shard
from clipscale.data.shards import Sample, write_tar

METADATA = {"en": ["cat", "red cat", "dog", "St. Louis", "7"], "ja": ["猫", "犬", "ねこ"]}
WORDS = {"en": ["a", "cat", "red", "dog", "St.", "Louis", "7", "the"], "ja": ["猫", "犬", "ねこ", "が", "好き"]}


def samples(n: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lang = rng.choice(["en", "ja", "en"])
        sep = " " if lang == "en" else ""
        text = sep.join(rng.choice(WORDS[lang]) for _ in range(rng.randint(1, 6)))
        out.append(Sample(key=f"k{i:04d}", image=b"img", image_ext="png", text=text,
                          meta={"language": lang}))
    return out


def test_partial_counts_combine_exactly(tmp_path):
    pool = samples(400, 0)
    matcher = CaptionMatcher(METADATA)
    write_tar(tmp_path / "whole.tar", pool)
    whole = count_shard(str(tmp_path / "whole.tar"), matcher, tmp_path / "whole.parquet")
    cuts = sorted(random.Random(1).sample(range(1, 400), 6))
    totals = {lang: np.zeros(len(e), dtype=np.int64) for lang, e in METADATA.items()}
    for i, (a, b) in enumerate(zip([0] + cuts, cuts + [400])):
        write_tar(tmp_path / f"part{i}.tar", pool[a:b])
        part = count_shard(str(tmp_path / f"part{i}.tar"), matcher, tmp_path / f"part{i}.parquet")
        add_counts(totals, part["counts"])
    expected = {lang: np.zeros(len(e), dtype=np.int64) for lang, e in METADATA.items()}
    add_counts(expected, whole["counts"])
    for lang in METADATA:
        assert totals[lang].tolist() == expected[lang].tolist()
    assert expected["en"].sum() > 0 and expected["ja"].sum() > 0
    # And the automaton is built once per language for the life of the matcher.
    assert set(matcher.automata) == {"en", "ja"}


def test_counts_count_captions_not_occurrences(tmp_path):
    write_tar(tmp_path / "s.tar", [Sample(key="a", image=b"i", text="cat cat red cat",
                                          meta={"language": "en"})])
    result = count_shard(str(tmp_path / "s.tar"), CaptionMatcher(METADATA), tmp_path / "s.parquet")
    assert result["counts"] == {"en": {"0": 1, "1": 1}}

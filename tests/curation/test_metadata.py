"""Metadata: loading a folder, building from a corpus (hand-worked PMI), the bundled lexicons."""
import json
import math

import pytest

from clipscale.curation.metadata import (NUMBERS, MetadataError, build_from_corpus, clean_entries,
                                         emoji_cldr_lexicon, load_metadata, tokenize, write_metadata)


def test_load_folder_txt_and_json_with_numbers_added(tmp_path):
    write_metadata(tmp_path, "en", ["cat", " dog ", "", "cat", "7"])
    (tmp_path / "ja.json").write_text(json.dumps(["猫", "犬"]), encoding="utf-8")
    (tmp_path / "README.md").write_text("not metadata")
    md = load_metadata(tmp_path)
    assert sorted(md) == ["en", "ja"]
    assert md["en"][:3] == ["cat", "dog", "7"]
    assert md["en"][3:] == [n for n in NUMBERS if n != "7"]
    assert md["ja"][:2] == ["猫", "犬"] and len(md["ja"]) == 102
    assert load_metadata(tmp_path, ["ja"], add_numbers=False) == {"ja": ["猫", "犬"]}


def test_missing_or_empty_metadata_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MetadataError, match="does not exist"):
        load_metadata(tmp_path / "nope")
    with pytest.raises(MetadataError, match="no LANG.txt"):
        load_metadata(tmp_path)
    write_metadata(tmp_path, "en", ["cat"])
    with pytest.raises(MetadataError, match=r"no file for \['de'\]"):
        load_metadata(tmp_path, ["en", "de"])
    (tmp_path / "fr.json").write_text('{"not": "a list"}')
    with pytest.raises(MetadataError, match="list of strings"):
        load_metadata(tmp_path)


def test_tokenize_splits_marks_and_unspaced_characters():
    assert list(tokenize("New York, 東京タワー!")) == ["New", "York", ",", "東", "京", "タ", "ワ", "ー", "!"]


def test_build_from_corpus_unigram_count_and_bigram_pmi():
    corpus = ["new york is big", "new york is old", "a big dog"]
    # unigrams: new 2, york 2, is 2, big 2, old 1, a 1, dog 1 (11); bigrams (8): new york 2,
    # york is 2, is big 1, is old 1, a big 1, big dog 1.
    # PMI(new york) = log((2/8) / ((2/11) * (2/11))) = log(7.5625) = 2.0232
    assert math.log((2 / 8) / ((2 / 11) ** 2)) == pytest.approx(2.0232, abs=1e-4)
    entries = build_from_corpus(corpus, min_unigram_count=2, min_bigram_pmi=2.0,
                                min_bigram_count=2, add_numbers=False)
    assert entries == ["big", "is", "new", "york", "new york", "york is"]
    assert build_from_corpus(corpus, 2, 2.03, 2, add_numbers=False) == ["big", "is", "new", "york"]
    assert build_from_corpus(corpus, 2, 2.0, 2)[-100:] == list(NUMBERS)


def test_punctuation_breaks_bigrams_and_unspaced_bigrams_join_without_space():
    assert "york is" not in build_from_corpus(["new york, is"] * 3, 1, -50, 1, add_numbers=False)
    assert "東京" in build_from_corpus(["東京 東京"], 1, -50, 1, add_numbers=False)


def test_clean_entries_keeps_first_occurrence_order():
    assert clean_entries(["b", "a", "b", " "], add_numbers=False) == ["b", "a"]


def test_bundled_emoji_lexicon_has_cldr_names_per_language():
    en, ja, es = emoji_cldr_lexicon("en"), emoji_cldr_lexicon("ja"), emoji_cldr_lexicon("es")
    assert "grinning face" in en and "red apple" in en
    assert len(ja) > 1000 and len(es) > 1000
    assert not any(e.startswith(":") or "_" in e for e in en)
    with pytest.raises(MetadataError):
        emoji_cldr_lexicon("xx")


def test_build_metadata_cli_from_corpus_and_lexicon(tmp_path, capsys):
    import argparse

    from clipscale.cli import main
    from clipscale.cli.curate import register

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("new york is big\nnew york is old\na big dog\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="clipscale")
    register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["curate", "build-metadata", "--out", str(tmp_path / "md"),
                              "--corpus", str(corpus), "--lang", "en", "--min-count", "2",
                              "--min-pmi", "2.0", "--min-bigram-count", "2", "--emoji-lexicon", "en"])
    assert args.func(args) == 0
    md = load_metadata(tmp_path / "md")
    assert list(md) == ["en"]
    assert md["en"][:6] == ["big", "is", "new", "york", "new york", "york is"]
    assert "grinning face" in md["en"] and md["en"][-1] == "99"
    assert main(["curate", "build-metadata", "--out", str(tmp_path / "x")]) == 2
    assert "nothing to build" in capsys.readouterr().err

"""Normalisation, entry padding and matching, pinned on hand-worked cases."""
import random

import pytest

from clipscale.curation.matching import (build_automaton, match_entries, match_entries_naive,
                                         normalize_caption, pad_entry)


def matches(entries, caption):
    return [entries[i] for i in match_entries(build_automaton(entries), caption)]


def test_normalize_caption_pads_wraps_marks_and_spaces_controls():
    assert normalize_caption("a,b.c") == " a , b . c "
    assert normalize_caption("Hi!") == " Hi !  "
    assert normalize_caption("x\ty\r\nz") == " x y  z "
    assert normalize_caption("q?;:`") == " q ?  ;  :  `  "
    # Nothing else changes: case, other marks, repeated spaces.
    assert normalize_caption("A  (b)-c") == " A  (b)-c "


def test_pad_entry_spaced_scripts_get_spaces_unspaced_and_punctuation_do_not():
    assert pad_entry("cat") == " cat "
    assert pad_entry("고양이") == " 고양이 "          # Hangul is spaced
    assert pad_entry("猫") == "猫"                    # CJK ideograph
    assert pad_entry("ねこ") == "ねこ"                # kana (left out by Meta CLIP 2's list)
    assert pad_entry("แมว") == "แมว"                  # Thai
    assert pad_entry("C++") == " C++"                 # ASCII punctuation side
    assert pad_entry("«chat»") == "«chat»"            # Unicode category P sides
    assert pad_entry("猫 cat") == "猫 cat "


def test_word_boundaries_in_spaced_text():
    assert matches(["cat"], "a cat sleeps") == ["cat"]
    assert matches(["cat"], "concatenate the cats") == []
    assert matches(["cat"], "cat") == ["cat"]                 # caption ends are padded
    assert matches(["cat"], "look, a cat.") == ["cat"]        # wrapped marks are boundaries
    assert matches(["cat"], "(cat)") == []                    # other marks are not


def test_cjk_thai_and_kana_entries_match_inside_unspaced_text():
    assert matches(["東京", "猫", "犬"], "私は東京の猫が好き") == ["東京", "猫"]
    assert matches(["猫咪"], "这只猫咪很可爱") == ["猫咪"]
    assert matches(["แมว"], "ฉันรักแมวมาก") == ["แมว"]
    assert matches(["ねこ", "ネコ"], "かわいいねことネコ") == ["ねこ", "ネコ"]


def test_korean_is_padded_so_a_particle_blocks_the_match():
    assert matches(["고양이"], "귀여운 고양이 사진") == ["고양이"]
    assert matches(["고양이"], "고양이가 잔다") == []


def test_matching_is_case_sensitive():
    assert matches(["apple", "Apple"], "Apple pie") == ["Apple"]
    assert matches(["apple"], "APPLE") == []


def test_overlapping_entries_all_count():
    entries = ["red", "red apple", "apple", "apple pie", "pie"]
    assert matches(entries, "a red apple pie") == entries
    # A caption's matches are a set: repeats of one entry count once.
    assert match_entries(build_automaton(["dog"]), "dog and dog and dog") == [0]


def test_entries_containing_marks_match_where_the_caption_has_them():
    entries = ["St. Louis", "U.S.", "1,000", "e.g.", "Inc."]
    assert matches(entries, "Trip to St. Louis, Missouri.") == ["St. Louis"]
    assert matches(entries, "made in the U.S. today") == ["U.S."]
    assert matches(entries, "over 1,000 cats, e.g. mine") == ["1,000", "e.g."]
    assert matches(entries, "Acme Inc.") == ["Inc."]
    assert matches(entries, "St Louis and US and 1000") == []


def test_entries_with_the_same_key_both_count():
    # load_metadata drops repeats, but an automaton built from a raw list keeps every id.
    assert match_entries(build_automaton(["cat", "dog", "cat"]), "a cat") == [0, 2]


def test_entry_ending_in_punctuation_is_open_on_that_side():
    assert matches(["C++"], "I code C++11 daily") == ["C++"]


def test_empty_entry_is_refused():
    with pytest.raises(ValueError):
        pad_entry("")


def test_automaton_agrees_with_the_naive_loop_over_entries():
    rng = random.Random(3)
    words = ["cat", "dog", "red", "猫", "犬", "ねこ", "St.", "Louis", "a", "b,c", "高い", "แมว", "고양이"]
    entries = sorted({" ".join(rng.sample(words, rng.randint(1, 2))) for _ in range(60)})
    automaton = build_automaton(entries)
    padded = [pad_entry(e) for e in entries]
    for _ in range(300):
        caption = "".join(rng.choice(words) + rng.choice(["", " ", ", ", ". ", "\n"])
                          for _ in range(rng.randint(0, 8)))
        assert match_entries(automaton, caption) == match_entries_naive(padded, caption)


def metaclip_matches(entries, caption):
    return [entries[i] for i in match_entries(build_automaton(entries, "metaclip"), caption)]


def test_wrap_mode_is_the_default_and_lets_entries_with_marks_match():
    entries = ["St. Louis", "U.S.", "e.g.", "cat"]
    caption = "St. Louis, the U.S. e.g. a cat"
    assert build_automaton(entries, "wrap").get(pad_entry("St. Louis")) == [0]
    assert matches(entries, caption) == entries
    assert [entries[i] for i in match_entries(build_automaton(entries, "wrap"), caption)] == entries


def test_metaclip_mode_pads_entries_as_written_so_marked_entries_never_match():
    # Meta CLIP 2's get_spaced_metadata: no wrapping inside the entry.
    assert pad_entry("St. Louis", "metaclip") == " St. Louis "
    assert pad_entry("U.S.", "metaclip") == " U.S."        # '.' side is not padded
    entries = ["St. Louis", "U.S.", "1,000", "e.g.", "cat"]
    caption = "St. Louis, the U.S. over 1,000 cats, e.g. a cat"
    assert metaclip_matches(entries, caption) == ["cat"]
    # Without marks both modes agree.
    assert metaclip_matches(["red apple", "pie"], "a red apple pie") == ["red apple", "pie"]


def test_metaclip_mode_uses_meta_clip_2s_side_rules():
    # Kana is not in Meta CLIP 2's unspaced ranges: padded, so it cannot match inside text.
    assert pad_entry("ねこ", "metaclip") == " ねこ "
    assert metaclip_matches(["ねこ"], "かわいいねこ") == []
    assert pad_entry("猫", "metaclip") == "猫"
    # Its punctuation is ASCII plus a fixed full-width list, not Unicode category P.
    assert pad_entry("«chat»", "metaclip") == " «chat» "
    assert pad_entry("「猫」", "metaclip") == "「猫」"
    assert pad_entry("C++", "metaclip") == " C++"


def test_unknown_entry_punctuation_mode_is_refused():
    with pytest.raises(ValueError, match="entry_punctuation"):
        pad_entry("cat", "loose")


def test_curation_config_entry_punctuation_field(tmp_path):
    from clipscale.config import ConfigError
    from clipscale.curation.config import build_curation_config
    base = {"input": "in", "output": "out", "metadata": "m"}
    assert build_curation_config(base).entry_punctuation == "wrap"
    cfg = build_curation_config(dict(base, entry_punctuation="metaclip"))
    assert cfg.fingerprint({}) != build_curation_config(base).fingerprint({})
    with pytest.raises(ConfigError, match="entry_punctuation"):
        build_curation_config(dict(base, entry_punctuation="loose"))

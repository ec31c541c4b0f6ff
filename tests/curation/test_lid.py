"""Language ID from py3langid's bundled model, or the sample json's language when trusted."""
from clipscale.curation.lid import LanguageIdentifier, caption_language, canonical_language

LID = LanguageIdentifier(max_chars=200)


def test_model_identifies_clear_sentences():
    assert LID.identify("the black cat is sleeping on the sofa in my grandmother's house")[0] == "en"
    assert LID.identify("私は東京の猫が大好きです")[0] == "ja"
    lang, confidence = LID.identify("le chat noir dort sur le canapé de la maison de ma grand-mère")
    assert lang == "fr" and 0.5 < confidence <= 1.0


def test_json_language_is_trusted_only_when_asked():
    known = {"en", "de", "pt"}
    text = "the black cat is sleeping on the sofa"
    assert caption_language(text, {"language": "de"}, LID, True, known) == ("de", 1.0, "json")
    assert caption_language(text, {"language": "de"}, LID, False, known)[0] == "en"
    assert caption_language(text, {"language": ""}, LID, True, known)[2] == "py3langid"


def test_canonical_language():
    assert canonical_language("pt-BR", {"pt"}) == "pt"
    assert canonical_language("PT_br", {"pt"}) == "pt"
    assert canonical_language("pt-BR", {"pt", "pt-BR"}) == "pt-BR"
    assert canonical_language("SW", {"en"}) == "sw"


def test_restricting_the_model_to_a_language_set():
    short = "a photo of a banana"
    assert LanguageIdentifier(languages=["en", "de"]).identify(short)[0] == "en"

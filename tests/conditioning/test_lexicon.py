"""Free-word mapping: the packaged lexicon and the text-embedding mapper."""

import pytest

from conditioning import CATEGORIES, parse_emotion, resolve_word
from conditioning.lexicon import TextEmbeddingMapper, load_lexicon
from conditioning.vocabulary import ALIASES


def test_every_lexicon_entry_parses_to_vocabulary_categories():
    lexicon = load_lexicon()
    assert len(lexicon) > 150
    for word, text in lexicon.items():
        spec = parse_emotion(text, use_embedding=False)
        assert set(spec.weights) <= set(CATEGORIES), word


def test_lexicon_and_aliases_do_not_overlap():
    overlap = set(load_lexicon()) & (set(ALIASES) | set(CATEGORIES))
    assert not overlap


def test_unknown_word_without_embedding_is_refused():
    with pytest.raises(ValueError, match="unknown emotion 'blorft'"):
        resolve_word("blorft", use_embedding=False)


def test_the_packaged_text_model_is_installed():
    # A declared dependency: the free-word mapper must be there, not silently skipped.
    assert TextEmbeddingMapper.packaged_model_dir() is not None


def test_embedding_mapper_maps_an_emotion_word_outside_the_lexicon():
    word = "apprehension"
    assert word not in load_lexicon() and word not in ALIASES
    mapping = resolve_word(word)
    assert mapping.source == "text-embedding"
    assert parse_emotion(mapping.spec_text, use_embedding=False).dominant == "fearful"
    assert mapping.score >= 0.35
    assert "text embedding" in mapping.note


@pytest.mark.parametrize("word", ["table", "banana", "asdf"])
def test_embedding_mapper_refuses_words_far_from_every_emotion(word):
    with pytest.raises(ValueError, match="unknown emotion"):
        resolve_word(word)

"""The token cache is reused only for the same examples, tokenizer, encoder, settings and scheme."""
import pytest

from lorasum.data import features
from lorasum.data.features import encode_cached, encode_seq2seq

EXAMPLES = [{"id": "a", "lang": "en", "text": "The council voted on Monday.", "summary": "Council votes."},
            {"id": "b", "lang": "en", "text": "Prices rose in the city.", "summary": "Prices rise."}]


@pytest.fixture
def tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def entries(cache):
    return sorted(p.name for p in cache.glob("tokens-*.pt"))


def test_same_inputs_hit_the_cache(tokenizer, tmp_path):
    a = encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    b = encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    assert a == b and len(entries(tmp_path)) == 1


def test_new_encoding_version_misses_the_cache(tokenizer, tmp_path, monkeypatch):
    encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    monkeypatch.setattr(features, "ENCODING_VERSION", features.ENCODING_VERSION + 1)
    encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    assert len(entries(tmp_path)) == 2


def test_new_lorasum_version_misses_the_cache(tokenizer, tmp_path, monkeypatch):
    encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    monkeypatch.setattr(features, "_lorasum_version", lambda: "99.0")
    encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    assert len(entries(tmp_path)) == 2


def test_other_settings_or_encoder_miss_the_cache(tokenizer, tmp_path):
    short = encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    longer = encode_cached(EXAMPLES, tokenizer, encode_seq2seq, tmp_path, max_source_length=24, max_target_length=8)
    assert len(entries(tmp_path)) == 2
    assert len(longer[0]["input_ids"]) > len(short[0]["input_ids"])

    class Other:
        @staticmethod
        def encode_seq2seq(examples, tok, **kw):  # same bare name, another encoder
            return encode_seq2seq(examples, tok, **kw)

    encode_cached(EXAMPLES, tokenizer, Other.encode_seq2seq, tmp_path, max_source_length=16, max_target_length=8)
    assert len(entries(tmp_path)) == 3

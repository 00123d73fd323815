"""Offline token counting, text normalisation, and the secret detector."""

from __future__ import annotations

import pytest

from agentmem.secret_filter import find_secret
from agentmem.text import cjk_words, normalize, similarity, words, xml_text
from agentmem.tokens import default_counter, estimate_tokens


def test_default_counter_is_real_cl100k_offline() -> None:
    count = default_counter()
    assert count is not estimate_tokens  # litellm's bundled cl100k file was found and loaded
    assert count("hello world") == 2
    assert count("") == 0


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "Builds a churn model for Acme",
        "- 2026-11-23: naïve café → 東京",
        "x = {'a': [1, 2]}\n" * 5,
        "数据科学家，喜欢简洁的回答 🎉🎉",
        "order 4812-7781-0093 shipped 2026/11/23 at 14:05:59",
    ],
)
def test_estimate_never_undercounts(text: str) -> None:
    assert estimate_tokens(text) >= default_counter()(text)


def test_normalize_and_similarity() -> None:
    assert normalize("  Works remotely, from LISBON! ") == "works remotely from lisbon"
    assert similarity("Likes Python a lot", "likes python a lot!") == 1.0
    assert similarity("Likes Python", "Hates Java") == 0.0


def test_cjk_words_are_followed_by_their_character_pairs() -> None:
    assert words("我喜欢咖啡") == ["我喜欢咖啡", "我喜", "喜欢", "欢咖", "咖啡"]
    assert words("猫 and 犬") == ["猫", "and", "犬"]  # a lone character is its own part
    assert words("서울에서 일해요") == ["서울에서", "서울", "울에", "에서", "일해요", "일해", "해요"]
    # Kana and kanji are one run; the Latin word inside is a part of its own; halfwidth kana fold.
    assert words("Pythonで書く") == ["pythonで書く", "で書", "書く", "python"]
    assert words("ｺｰﾋｰ") == ["コーヒー", "コー", "ーヒ", "ヒー"]
    assert words("C++ and naïve café") == ["c++", "and", "naïve", "café"]  # other text as before
    assert cjk_words("iPhone用 case") == ["用", "iphone"]
    assert cjk_words("plain text") == []


def test_xml_text_escapes_and_flattens() -> None:
    assert xml_text("a < b & c > d\n- new line\x07") == "a &lt; b &amp; c &gt; d - new line"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sk-ant-api03-abcdefghijklmnopqrstuv", "API key"),
        ("my password is correct-horse-battery", "password"),
        ("pay with 5555 5555 5555 4444", "card number"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "bearer token"),
        ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
    ],
)
def test_secrets_are_detected(text: str, kind: str) -> None:
    assert find_secret(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "I work at Acme as a data scientist",
        "My order number is 1234 5678",  # too short and not Luhn-valid as a card
        "I forgot my password yesterday",  # mentions a password, does not contain one
        "Call me at +1 415 555 0100",
        "Uses the sk-learn library",
    ],
)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert find_secret(text) is None

"""Masking: secret values, Bearer tokens, URL passwords and secret-looking keys become ****."""

from __future__ import annotations

import time

import pytest

from apflow.masking import Masker, is_secret_key


@pytest.mark.parametrize("key", ["PASSWORD", "db_passwd", "DB_PASSWORD", "client_secret",
                                 "GITHUB_TOKEN", "api_key", "ApiKey", "X-API-KEY",
                                 "Authorization", "OAUTH_CLIENT", "aws_credentials",
                                 "private_key", "AWS_ACCESS_KEY_ID"])
def test_secret_looking_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["AUTHOR", "author_name", "AUTHORITY", "PATH", "HOME", "LANG",
                                 "keyboard", "USER"])
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    masker = Masker(["hunter2-long", "s3cr3t"])
    assert masker.mask("login with hunter2-long, then s3cr3t!") == "login with ****, then ****!"


def test_the_longest_secret_wins_when_secrets_overlap() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask("x abcdefgh y") == "x **** y"


def test_secret_values_shorter_than_four_characters_are_not_masked() -> None:
    assert Masker(["abc"]).mask("abc abcdef") == "abc abcdef"


def test_a_bearer_token_is_masked_and_the_word_bearer_kept() -> None:
    masker = Masker()
    assert masker.mask("sent Bearer eyJhbGciOi.J9x-y_z== ok") == "sent Bearer **** ok"
    assert masker.mask("bearer abc123") == "bearer ****"


def test_an_authorization_header_keeps_its_scheme() -> None:
    masker = Masker()
    assert (masker.mask("Authorization: Bearer tok123")
            == "Authorization: Bearer ****")
    assert masker.mask("authorization: Basic dXNlcjpwYXNz") == "authorization: Basic ****"


@pytest.mark.parametrize(("text", "masked"), [
    ("postgresql://app:pa55word@db:5432/x", "postgresql://app:****@db:5432/x"),
    ("see https://u:p%40ss@example.com/path?q=1", "see https://u:****@example.com/path?q=1"),
    ("https://example.com/a:b@c", "https://example.com/a:b@c"),
    ("https://user@example.com/", "https://user@example.com/"),
])
def test_passwords_in_urls_are_masked(text: str, masked: str) -> None:
    assert Masker().mask(text) == masked


@pytest.mark.parametrize(("text", "masked"), [
    ("PASSWORD=hunter2 next", "PASSWORD=**** next"),
    ("export DB_PASSWORD='two words'", "export DB_PASSWORD='****'"),
    ('API_KEY="a b c" rest', 'API_KEY="****" rest'),
    ('{"token": "abc\\"def", "n": 1}', '{"token": "****", "n": 1}'),
    ("client_secret: xyz", "client_secret: ****"),
    ("?user=me&access_key=ZZZ&x=1", "?user=me&access_key=****&x=1"),
    ("AUTHOR=alice", "AUTHOR=alice"),
    ("path=/usr/bin", "path=/usr/bin"),
])
def test_values_of_secret_looking_keys_are_masked(text: str, masked: str) -> None:
    assert Masker().mask(text) == masked


def test_text_without_secrets_is_returned_unchanged() -> None:
    text = "INFO processed 12 items in 3.2 s\nDEBUG done\n"
    assert Masker(["topsecret"]).mask(text) == text


def test_a_multi_line_secret_is_masked() -> None:
    key = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----"
    assert Masker([key]).mask(f"x\n{key}\ny") == "x\n****\ny"


def test_only_lines_with_secrets_change_in_a_long_text() -> None:
    lines = [f"line {i} ok" for i in range(1000)]
    lines[500] = "line 500 password=xyz"
    masked = Masker().mask("\n".join(lines)).split("\n")
    assert masked[500] == "line 500 password=****"
    assert masked[:500] == lines[:500] and masked[501:] == lines[501:]


def _timed(masker: Masker, text: str) -> float:
    started = time.perf_counter()
    masker.mask(text)
    return time.perf_counter() - started


def test_one_megabyte_of_ordinary_output_masks_in_well_under_100_ms() -> None:
    masker = Masker(["s3cr3t-value", "another-secret"])
    line = "2026-01-01T00:00:00Z INFO worker processed item 12345 in 3 ms, all fine\n"
    text = line * (1_000_000 // len(line))
    text += "token=abc s3cr3t-value https://u:p@h/ Bearer xyz\n"
    assert min(_timed(masker, text) for _ in range(3)) < 0.05


@pytest.mark.parametrize("text", ["token" * 200_000, "a" * 1_000_000, "/" * 1_000_000,
                                  "x=" * 500_000, "http" * 250_000])
def test_pathological_input_masks_in_linear_time(text: str) -> None:
    assert min(_timed(Masker(["secretvalue"]), text) for _ in range(2)) < 0.25

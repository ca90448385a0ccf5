"""Every text entering an audit table is sanitized one way."""

import pytest

from audit.capture.text import clean_json, clean_text, json_text


@pytest.mark.parametrize("value, expected", [
    (None, ""), ("a\x00b", "ab"), (12, "12"), ("x" * 40, "x" * 18 + "…[truncated]"),
])
def test_clean_text_drops_nul_bytes_and_bounds_the_length(value, expected):
    assert clean_text(value, 30) == expected


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", ""), ("text", "text"), (True, "true"), (12, "12"), (["a", "b"], '["a", "b"]'),
    ({"b": 1, "a": None}, '{"a": null, "b": 1}'),
])
def test_json_text_keeps_text_and_null_and_writes_the_rest_as_json(value, expected):
    assert json_text(value) == expected


def test_clean_json_cleans_keys_and_values_at_any_depth():
    assert clean_json({"k\x00": ["v\x00", {"n": "x\x00"}], "n": 1}) == {"k": ["v", {"n": "x"}], "n": 1}

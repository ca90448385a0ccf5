"""Every text entering an audit table is sanitized one way."""

import pytest

from audit.capture.text import TEXT_LIMIT, clean_json, clean_text, json_text


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


def test_clean_json_cleans_a_changes_mapping_value_by_value():
    long = "x" * (TEXT_LIMIT + 10)
    changes = {"title": {"old": "a\x00b", "new": long}, 7: {"old": None, "new": True}, "k" * 250: 1.5}
    cleaned = clean_json(changes)
    assert cleaned["title"] == {"old": "ab", "new": clean_text(long)}
    assert len(cleaned["title"]["new"]) == TEXT_LIMIT and cleaned["title"]["new"].endswith("…[truncated]")
    assert cleaned["7"] == {"old": None, "new": True}  # a key that is not text becomes text
    assert cleaned["k" * (200 - len("…[truncated]")) + "…[truncated]"] == 1.5
    assert cleaned is not changes and changes["title"]["old"] == "a\x00b"  # the input is left as it was

"""The API's JSON parser: DRF's, refusing what no field could ever accept.

- Nesting deeper than :data:`MAX_DEPTH` arrays/objects: Python's decoder recurses
  per level and 5,000 ``[`` (10 KB, anonymously) ended in a RecursionError (a
  500). The depth is counted on the raw text (string literals skipped) before
  decoding, so the decoder never sees such a body.
- Lone surrogates (``"\\ud800"``): valid JSON escapes, but not Unicode text; they
  reached choice fields, whose refusal quoting the value then failed to encode
  as UTF-8 (a 500). Refused here for every string, keys included.

Both are a 400 ``ParseError`` in the error envelope naming the reason.
"""

from __future__ import annotations

import codecs
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _depth(text: str) -> int:
    deepest = depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding} text.") from exc
        if _depth(text) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        try:
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if _has_surrogate(data):
            raise ParseError("JSON parse error - a lone surrogate (\\ud800-\\udfff) is not a character.")
        return data

"""The API's JSON parser: DRF's, plus a fixed limit on nesting (docs/architecture.md "One API style").

DRF's JSONParser turns a ValueError into a 400 but lets a RecursionError through: a body of 100,000 nested lists
was a 500 on every JSON endpoint. Python's own limit also depends on how deep the stack already is, so a body near
it could parse in the light lane (core.light_api, a shallow stack) and fail under DRF. One fixed depth, checked
here and by the lane, decides for both; no request body of ours nests more than a few levels.
"""
from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

MAX_JSON_DEPTH = 64  # levels of objects/lists, the top-level object being 1
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels"


def nested_too_deep(data: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests objects or lists more than `limit` levels (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(DRFJSONParser):
    """DRF's JSONParser; a body nested past MAX_JSON_DEPTH (or past Python's recursion limit) is its 400
    ``{code: "parse_error", detail}``, as any other malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if nested_too_deep(data):
            raise ParseError(TOO_DEEP)
        return data

"""JSON with comments and trailing commas, as Intuned.jsonc and *.job.jsonc allow."""

from __future__ import annotations

import json
import re
from typing import Any

_JSON_STRING = r'"(?:\\.|[^"\\])*"'
_COMMENT = re.compile(rf"({_JSON_STRING})|//[^\n]*|/\*.*?\*/", re.S)
_TRAILING_COMMA = re.compile(rf"({_JSON_STRING})|,(?=\s*[}}\]])")


def loads_jsonc(text: str) -> Any:
    # Strings are matched first and kept verbatim, so "//" or ",}" inside a string survive.
    text = _COMMENT.sub(lambda m: m.group(1) or " ", text)
    text = _TRAILING_COMMA.sub(lambda m: m.group(1) or "", text)
    return json.loads(text)

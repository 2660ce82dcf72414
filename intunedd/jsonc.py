"""JSON with comments and trailing commas, as Intuned.jsonc and *.job.jsonc allow.

Parsed by pyjson5 (a compiled JSON5 parser, a superset of JSONC): linear in the input, with a
nesting limit enforced while parsing, so a hostile file can neither stall the process nor
exhaust the stack.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyjson5

MAX_DEPTH = 64
_NEAR = re.compile(r" near (\d+)")
_BYTES_REPR = re.compile(r"b'(\w+)'")


class JsoncError(json.JSONDecodeError):
    """A JSONDecodeError, so callers written for the stdlib parser keep catching it."""


class JsoncTooDeep(JsoncError):
    pass


def loads_jsonc(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``text``; nesting deeper than ``max_depth`` arrays/objects is an error."""
    try:
        return pyjson5.decode(text, maxdepth=max_depth)
    except pyjson5.Json5DecoderException as e:
        # pyjson5 says where as " near N" (N counts from 1); JSONDecodeError adds line and column.
        message = str(e.message)
        near = _NEAR.search(message)
        position = min(max(int(near.group(1)) - 1, 0), len(text)) if near else 0
        if isinstance(e, pyjson5.Json5NestingTooDeep):
            raise JsoncTooDeep(f"nested deeper than {max_depth} levels", text, position) from None
        message = _BYTES_REPR.sub(r"\1", _NEAR.sub("", message))
        raise JsoncError(message, text, position) from None

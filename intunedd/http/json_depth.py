"""How deep a JSON text nests, checked before it is decoded.

msgspec decodes recursively and gives up with RecursionError wherever the interpreter's
stack happens to end; a body nested 100,000 deep must instead be a 400, at a depth the
operator chose (``server.max_json_depth``). The check runs in C: strings are cut out by
one regular expression (their brackets do not count), everything but brackets is
deleted, and what is left must match the language of bracket strings at most ``limit``
deep, a regular language whose expression uses only possessive repeats, so matching is
linear with no backtracking.
"""

from __future__ import annotations

import re
from functools import lru_cache

_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@lru_cache(maxsize=4)
def _nested_at_most(limit: int) -> re.Pattern[bytes]:
    pattern = b""
    for _ in range(limit):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def within_depth(body: bytes, limit: int) -> bool:
    """True when decoding ``body`` cannot go deeper than ``limit``.

    False for a body nested deeper, and also for some with unbalanced brackets (malformed
    JSON); the caller tells the two apart by decoding it untyped, where msgspec's own
    recursion limit bounds the work.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return True
    brackets = _STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    return _nested_at_most(limit).fullmatch(brackets) is not None

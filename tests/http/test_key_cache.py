"""A key found valid is trusted only briefly, so a revocation takes effect within a second."""

from __future__ import annotations

import trio

from intunedd.http.key_cache import KEY_RECHECK_S, KeyCache


async def test_a_valid_key_is_rechecked_within_a_second(autojump_clock: trio.abc.Clock) -> None:
    assert KEY_RECHECK_S < 1
    cache = KeyCache()
    assert not cache.fresh("digest")
    cache.remember("digest")
    assert cache.fresh("digest")
    await trio.sleep(KEY_RECHECK_S)
    assert not cache.fresh("digest")
    assert not cache.fresh("digest")  # and forgotten until checked again

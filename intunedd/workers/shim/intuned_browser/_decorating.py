"""What the settle helpers share: turning "run this, then wait" into a decorator."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

AsyncFunction = TypeVar("AsyncFunction", bound=Callable[..., Awaitable[Any]])
RunAndWait = Callable[..., Awaitable[Any]]


def waiting_decorator(
    helper: str, names: tuple[str, ...], kinds: tuple[type, ...], run_and_wait: RunAndWait, **options: Any
) -> Callable[[AsyncFunction], AsyncFunction]:
    """A decorator whose functions run as ``run_and_wait(target, call, **options)``, where ``target``
    is the function's argument named in ``names`` (else its first argument of one of ``kinds``)."""

    def decorate(function: AsyncFunction) -> AsyncFunction:
        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            target = _find_argument(helper, args, kwargs, names, kinds)
            return await run_and_wait(target, lambda: function(*args, **kwargs), **options)

        return cast(AsyncFunction, wrapper)

    return decorate


def _find_argument(
    helper: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], names: tuple[str, ...], kinds: tuple[type, ...]
) -> Any:
    for name in names:
        if isinstance(kwargs.get(name), kinds):
            return kwargs[name]
    for value in (*args, *kwargs.values()):
        if isinstance(value, kinds):
            return value
    raise TypeError(f"a function decorated with {helper} must take a {' or '.join(names)} argument")

"""A name -> implementation table with one-line descriptions: how the config's choices find their modules
(``inner.estimator``, ``outer.optimizer``), so adding one is a module that registers itself and touches no caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Implementations of one kind (``kind`` names it in errors), in registration order.

    :param kind: what an entry is, e.g. ``"inner estimator"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.entries: dict[str, T] = {}
        self.summaries: dict[str, str] = {}

    def register(self, name: str, summary: str) -> Callable[[T], T]:
        """Decorator: make the decorated object available as ``name``, described by ``summary``."""

        def decorate(entry: T) -> T:
            if name in self.entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self.entries[name] = entry
            self.summaries[name] = summary
            return entry

        return decorate

    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name is a ``ValueError`` listing the allowed ones."""
        if name not in self.entries:
            raise ValueError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.entries)}")
        return self.entries[name]

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self.entries)

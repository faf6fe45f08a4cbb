"""A lazy name -> class registry: engines are imported only when picked, so torch stays unloaded."""

from __future__ import annotations

import importlib
from typing import Any

from waterz.core.errors import UnknownEngine


class LazyRegistry:
    """Maps a public name to `"module.path:ClassName"`, imported on first use."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self.entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> type:
        target = self.entries.get(name)
        if target is None:
            known = ", ".join(self.names())
            raise UnknownEngine(f"Unknown {self.kind} '{name}'. Known {self.kind}s: {known}.")
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

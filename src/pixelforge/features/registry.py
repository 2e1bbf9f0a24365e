"""Feature extractors by name; each module registers its own at import."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from pixelforge.errors import ConfigError
from pixelforge.features.base import FeatureExtractor

_EXTRACTORS: dict[str, tuple[Callable[..., FeatureExtractor], str]] = {}


def register_extractor(name: str, factory: Callable[..., FeatureExtractor], summary: str) -> None:
    """Register ``factory(**options) -> FeatureExtractor`` under ``name``."""
    if name in _EXTRACTORS and _EXTRACTORS[name][0] is not factory:
        raise ValueError(f"feature extractor '{name}' is already registered")
    _EXTRACTORS[name] = (factory, summary)


def _ensure_loaded() -> None:
    import pixelforge.features.builtin  # noqa: F401  (registers the built-in extractors)


def get_extractor(name: str, **options: Any) -> FeatureExtractor:
    """Build the extractor ``name``; unknown names list the known ones."""
    _ensure_loaded()
    if name not in _EXTRACTORS:
        close = difflib.get_close_matches(name, list(_EXTRACTORS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown feature extractor '{name}'.{hint} Known: {', '.join(sorted(_EXTRACTORS))}."
        )
    return _EXTRACTORS[name][0](**options)


def list_extractors() -> list[tuple[str, str]]:
    """(name, summary) of every registered extractor."""
    _ensure_loaded()
    return sorted((k, v[1]) for k, v in _EXTRACTORS.items())

"""The shipped models' cards: every figure they show is the measurement in benchmarks/results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pixelforge import hub

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _leaves(doc: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(doc, dict):
        return [leaf for key, value in doc.items() for leaf in _leaves(value, (*path, key))]
    return [(path, doc)]


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


@pytest.mark.parametrize("name", sorted(hub.shipped_models()))
def test_card_scores_are_their_result_files_to_the_digits_shown(name):
    card = hub.read_model_meta(hub.shipped_models()[name])["card"]
    for key, scores in card.get("scores", {}).items():
        result = RESULTS / f"{key}.json"  # a card's scores are named after their result file
        assert result.is_file(), f"{name}: no {result.name} behind its '{key}' scores"
        measured = json.loads(result.read_text())["result"]
        for path, shown in _leaves(scores):
            value = measured
            for part in path:
                value = value[part]
            if isinstance(shown, float):
                assert round(value, _decimals(shown)) == shown, (name, key, path, value, shown)
            else:
                assert value == shown, (name, key, path, value, shown)

"""MetricResult: immutable, JSON-ready and readable in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pixelforge.metrics import MetricResult


def test_to_dict_is_json_ready_and_str_is_one_line() -> None:
    protocol = {"extractor": "inception-v3-fid", "feature_dim": np.int64(2048), "size": (299, 299)}
    result = MetricResult(
        name="kid",
        value=np.float64(0.0123),
        std=0.001,
        n_real=50_000,
        n_fake=50_000,
        protocol=protocol,
        warnings=["something to know"],
    )
    as_dict = json.loads(json.dumps(result.to_dict()))
    assert as_dict == {
        "metric": "kid",
        "value": 0.0123,
        "std": 0.001,
        "n_real": 50_000,
        "n_fake": 50_000,
        "protocol": {"extractor": "inception-v3-fid", "feature_dim": 2048, "size": [299, 299]},
        "warnings": ["something to know"],
    }
    text = str(result)
    assert "\n" not in text
    assert (
        text.startswith("kid = 0.0123 ± 0.001")
        and "inception-v3-fid" in text
        and "1 warning" in text
    )


def test_frozen_and_independent_of_the_callers_objects() -> None:
    protocol = {"extractor": "x"}
    result = MetricResult(name="fid", value=1.0, protocol=protocol)
    protocol["extractor"] = "changed"
    assert result.protocol["extractor"] == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 2.0  # type: ignore[misc]

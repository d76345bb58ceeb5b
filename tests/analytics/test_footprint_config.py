"""A symbol's footprint parameters: defaults in one place, bad values refused by name."""

from __future__ import annotations

import math

import pytest

from analytics.footprint_config import DEFAULT_CONFIG, FIELD_NAMES, FootprintConfig


def test_defaults() -> None:
    assert (
        FootprintConfig(
            imbalance_ratio=3.0,
            imbalance_min_volume=0.0,
            big_print_sd=3.0,
            big_print_minutes=30,
            node_count=5,
            node_prominence=0.1,
            node_separation=0.05,
        )
        == DEFAULT_CONFIG
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("imbalance_ratio", 0.0, "imbalance_ratio must be > 0, got 0.0"),
        ("imbalance_ratio", -3.0, "imbalance_ratio must be > 0"),
        ("imbalance_ratio", math.nan, "imbalance_ratio must be > 0, got nan"),
        ("imbalance_min_volume", -0.5, "imbalance_min_volume must be >= 0"),
        ("big_print_sd", 0.0, "big_print_sd must be > 0"),
        ("big_print_sd", -1.0, "big_print_sd must be > 0"),
        ("big_print_sd", math.inf, "big_print_sd must be > 0"),
        ("big_print_minutes", 0, "big_print_minutes must be a whole number >= 1"),
        ("big_print_minutes", 2.5, "big_print_minutes must be a whole number >= 1"),
        ("node_count", 0, "node_count must be a whole number >= 1"),
        ("node_prominence", 0.0, "node_prominence must be in (0, 1]"),
        ("node_prominence", 1.5, "node_prominence must be in (0, 1]"),
        ("node_separation", 1.0, "node_separation must be in [0, 1)"),
        ("imbalance_ratio", "3", "imbalance_ratio must be > 0, got '3'"),
        ("node_count", True, "node_count must be a whole number >= 1, got True"),
    ],
)
def test_bad_values_are_refused_with_the_parameters_name(field, value, message) -> None:
    with pytest.raises(
        ValueError,
        match="footprint config: "
        + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
    ):
        FootprintConfig(**{field: value})


def test_a_row_with_nulls_reads_the_defaults() -> None:
    row = dict.fromkeys(FIELD_NAMES)
    assert FootprintConfig.from_row(row) == DEFAULT_CONFIG
    row.update(imbalance_ratio=2.5, big_print_minutes=15.0)  # a driver may give a float
    config = FootprintConfig.from_row(row)
    assert (config.imbalance_ratio, config.big_print_minutes) == (2.5, 15)
    assert config.node_count == DEFAULT_CONFIG.node_count
    with pytest.raises(ValueError, match="unknown parameters"):
        FootprintConfig.from_row({"imbalance": 3.0})
    with pytest.raises(ValueError, match="imbalance_ratio must be > 0"):
        FootprintConfig.from_row({"imbalance_ratio": 0.0})

"""Checks for user-supplied settings (config fields and notebook parameters given with ``papermill -p``).

Each check returns the value (converted where harmless, e.g. int -> float) or raises ``ValueError`` naming
the setting, the bad value and what is allowed, so that ``-p epochs -5`` stops in the first cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    allowed = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must lie in {allowed}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must lie in {allowed}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_str(name: str, value: Any, *, allow_empty: bool = True) -> str:
    """A string (optionally non-empty)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__} {value!r}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _parse_list(name: str, value: Any, convert, kind: str) -> list:
    """A non-empty list, given as a list or as a comma-separated string ('50,100' or '0.02, 0.04')."""
    if isinstance(value, str):
        try:
            value = [convert(part) for part in value.replace(" ", "").split(",") if part]
        except ValueError:
            raise ValueError(f"{name} must be a comma-separated list of {kind}, got {value!r}") from None
    if not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty list of {kind}, got {value!r}")
    return list(value)


def check_int_list(name: str, value: Any, *, minimum: int | None = None) -> tuple[int, ...]:
    """A non-empty list of integers, given as a list or a comma-separated string ('50,100,150')."""
    values = _parse_list(name, value, int, "integers")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values))


def check_float_list(name: str, value: Any, *, low: float | None = None, high: float | None = None, **bounds) -> tuple[float, ...]:
    """A non-empty list of numbers, given as a list or a comma-separated string ('0.02,0.04')."""
    values = _parse_list(name, value, float, "numbers")
    return tuple(check_float(f"{name}[{i}]", v, low=low, high=high, **bounds) for i, v in enumerate(values))

"""Checks for user-supplied settings (config fields and notebook parameters given with ``papermill -p``).

Each check returns the value (converted where harmless, e.g. int -> float) or raises ``ValueError`` naming
the setting, the bad value and what is allowed, so that ``-p epochs -5`` stops in the first cell.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any


MAX_SEED: int = 2**63 - 1
"""Largest seed: torch's ``manual_seed`` takes a signed 64-bit integer (numpy's generators any non-negative one)."""


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for a message, shortened: a huge integer by its size, a long text by an ellipsis."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**30:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits} digits"
    text = repr(value)
    if len(text) <= limit:
        return text
    quote = text[-1] if text[-1] in "'\"" else ""
    return text[: limit - 3 - len(quote)] + "..." + quote


def _integer_kind(value: Any) -> bool:
    """A Python int or a numpy integer; never a bool (``True`` is an int to Python, not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # np.bool_ is no Integral


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer within [minimum, maximum], returned as a Python ``int``.

    The one policy for every integer setting of matvae: Python ints and numpy integers are accepted; floats
    (even whole ones such as ``10.0`` or ``1e4``), bools, strings and anything else are refused, so that a
    typo never becomes a silently truncated or rounded number.
    """
    if not _integer_kind(value):
        bounds = [f">= {minimum}"] if minimum is not None else []
        bounds += [f"<= {maximum}"] if maximum is not None else []
        allowed = " ".join(["an integer", " and ".join(bounds)]).strip()
        raise ValueError(f"{name} must be {allowed}, got {show(value)} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {show(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {show(value)}")
    return value


def check_seed(name: str, value: Any) -> int:
    """A seed: an integer in [0, :data:`MAX_SEED`]."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED)


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
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers are Real, np.bool_ is not
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be finite, got {show(value)}") from None
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


def check_int_list(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> tuple[int, ...]:
    """A non-empty list of integers, given as a list or a comma-separated string ('50,100,150')."""
    values = _parse_list(name, value, int, "integers")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum, maximum=maximum) for i, v in enumerate(values))


def check_float_list(name: str, value: Any, *, low: float | None = None, high: float | None = None, **bounds) -> tuple[float, ...]:
    """A non-empty list of numbers, given as a list or a comma-separated string ('0.02,0.04')."""
    values = _parse_list(name, value, float, "numbers")
    return tuple(check_float(f"{name}[{i}]", v, low=low, high=high, **bounds) for i, v in enumerate(values))


def store_checked(instance: Any, **values: Any) -> None:
    """Write checked values onto a frozen dataclass from its ``__post_init__`` (so a numpy integer is kept
    as the Python ``int`` the check returned, and configs save and compare as plain numbers)."""
    for name, value in values.items():
        object.__setattr__(instance, name, value)


def argument_type(check):
    """An ``argparse`` type from a check taking the command-line text: its ValueError becomes the usage error
    (exit 2, the message on stderr), as the package's command lines report a bad value."""

    def convert(text: str):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert

"""Argument checks shared by every layer: each raises a ValueError that names the parameter, before heavy work."""
from __future__ import annotations

import math
from numbers import Integral, Real


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool (YAML's `true` is no count)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number (Python or numpy; NaN and inf included), not a bool; text and None are no numbers."""
    return isinstance(value, Real) and not isinstance(value, bool)


def positive_int(value, name: str, optional: bool = False) -> int | None:
    """value as an int > 0 (None passes through when optional)."""
    if value is None and optional:
        return None
    if not is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive int{' or None' if optional else ''}, got {value!r}")
    return int(value)


def finite_number(value, name: str, minimum: float | None = None) -> float:
    """value as a finite float (>= minimum when given); bools, text and NaN are refused."""
    if is_number(value):
        try:
            number = float(value)
        except OverflowError:   # an int too large for a float (10**400) is no finite number either
            number = math.inf
        if math.isfinite(number) and (minimum is None or number >= minimum):
            return number
    bound = f" >= {minimum:g}" if minimum is not None else ""
    raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")

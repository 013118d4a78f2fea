"""Strict parsing and formatting of the physical quantities an experiment spec uses.

Every quantity in a spec carries its unit, so that ``10`` can never silently mean
10 bit/s, 10 Mbit/s or 10 bytes. The only bare number accepted is zero, which is
the same in every unit. Parsers raise :class:`ValueError` with a message that says
what was expected, with an example; the spec loader puts file, line and field in
front of it.

==============  ===================  =====================================================
quantity        result               accepted units
==============  ===================  =====================================================
bandwidth       Mbit/s (float)       ``bit kbit Mbit Gbit`` (any case; k = 1000, like tc).
                                     ``Mbps``-style units are refused as ambiguous (tc reads
                                     ``mbps`` as megaBYTES per second, most people as
                                     megabits); byte units such as ``MB`` are refused.
duration        seconds (float)      ``us µs ms s min h`` (µ: micro sign or Greek mu)
percent         percent (float)      ``%`` only: write ``1%``, not ``1``; 0% to 100%
size            bytes (int)          ``B K M G T``, optionally followed by ``B`` or ``iB``:
                                     ``256M``, ``256MB`` and ``256MiB`` all mean 256 × 2**20
                                     bytes, as in Docker's ``--memory``
rate            per second (float)   ``/s /min /h``: ``40/s``, ``120/min``
==============  ===================  =====================================================

Arithmetic is exact (``fractions.Fraction``) until the final conversion to ``float``,
so ``70ms`` is exactly ``70.0`` when asked for in milliseconds, and the ``format_*``
functions return text that parses back to exactly the value given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Mapping

__all__ = [
    "parse_bandwidth", "parse_duration", "parse_percent", "parse_size", "parse_rate",
    "format_bandwidth", "format_duration", "format_percent", "format_size", "format_rate",
    "quote", "number_text",
]

# A decimal number without thousands separators; bounded so no input can build a huge integer.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d{1,20}(?:\.\d{1,20})?|\.\d{1,20})(?:[eE][+-]?\d{1,2})?)\s*(?P<unit>.*)")


@dataclass(frozen=True)
class _Kind:
    """One kind of quantity: its units, how to explain it, and how to display it."""

    noun: str                       # "a bandwidth": completes "'x' is not ..."
    expected: str                   # completes "expected ..."
    units: Mapping[str, Fraction]   # canonical spelling -> size in the base unit
    display: tuple[str, ...]        # spellings tried, in order, when formatting
    suggest: tuple[str, ...]        # units proposed when a number has none
    hint: Callable[[str], str] = lambda unit: ""   # why an unknown unit is wrong

    def factor(self, unit: str) -> Fraction | None:
        """Size of ``unit`` (any case, spaces ignored) in the base unit, or None."""
        return _folded(self.units).get(unit.replace(" ", "").lower())


def _folded(units: Mapping[str, Fraction]) -> dict[str, Fraction]:
    return {name.lower(): factor for name, factor in units.items()}


def _bandwidth_hint(unit: str) -> str:
    if unit.lower().endswith("bps"):
        return f" ({unit} is ambiguous: tc reads it as bytes per second, most people as bits)"
    if "B" in unit or "byte" in unit.lower():
        return f" ({unit} would be bytes)"
    if unit.lower().endswith("b"):
        return f" (write {unit}it)"
    return ""


def _duration_hint(unit: str) -> str:
    return " (m is ambiguous: write 2min or 20ms)" if unit.lower() == "m" else ""


def _size_hint(unit: str) -> str:
    return " (a size is in bytes, not bits)" if unit.lower().endswith("bit") else ""


_BANDWIDTH = _Kind(
    noun="a bandwidth", expected="bits per second like 10Mbit",
    units={"bit": Fraction(1, 10**6), "kbit": Fraction(1, 1000), "Mbit": Fraction(1),
           "Gbit": Fraction(1000)},
    display=("Gbit", "Mbit", "kbit", "bit"), suggest=("Mbit",), hint=_bandwidth_hint)

_DURATION = _Kind(
    noun="a duration", expected="a duration like 20ms or 1.5s",
    units={"us": Fraction(1, 10**6), "µs": Fraction(1, 10**6), "μs": Fraction(1, 10**6),
           "ms": Fraction(1, 1000),
           "s": Fraction(1), "min": Fraction(60), "h": Fraction(3600)},
    display=("h", "min", "s", "ms", "us"), suggest=("ms", "s"), hint=_duration_hint)

_PERCENT = _Kind(
    noun="a percentage", expected="a percentage like 1% or 0.5%",
    units={"%": Fraction(1)}, display=("%",), suggest=("%",))

_SIZE = _Kind(
    noun="a size", expected="bytes like 256M or 1G",
    units={prefix + suffix: Fraction(1024 ** power)
           for power, prefix in enumerate(("", "K", "M", "G", "T"))
           for suffix in (("B",) if not prefix else ("", "B", "iB"))},
    display=("T", "G", "M", "K", "B"), suggest=("M",), hint=_size_hint)

_RATE = _Kind(
    noun="a rate", expected="a rate like 40/s or 120/min",
    units={"/s": Fraction(1), "/min": Fraction(1, 60), "/h": Fraction(1, 3600)},
    display=("/s", "/min", "/h"), suggest=("/s",))


def quote(value: object, limit: int = 40) -> str:
    """Show a YAML value in a message as YAML would (null, true), strings quoted, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number_text(value: float) -> str:
    """The shortest text for a number: ``10`` rather than ``10.0``, ``2.5`` as is."""
    if abs(value) < 1e15 and value == int(value):
        return str(int(value))
    return repr(value)


def _parse(kind: _Kind, value: object) -> Fraction:
    """The quantity in ``kind``'s base unit, exactly; ValueError saying what was expected."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{quote(value)} is not {kind.noun}; expected {kind.expected}")
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"{quote(value)} is not {kind.noun}; expected {kind.expected}")
    number, unit = Fraction(match["number"]), match["unit"]
    if not unit:
        if number == 0:
            return number
        written = " or ".join(match["number"] + suffix for suffix in kind.suggest)
        raise ValueError(f"{quote(value)} has no unit; expected {kind.expected} "
                         f"(write {written}, not {match['number']})")
    factor = kind.factor(unit)
    if factor is None:
        raise ValueError(f"{quote(value)} is not {kind.noun}; expected {kind.expected}{kind.hint(unit)}")
    return number * factor


def _format(kind: _Kind, value: float, unit: str) -> str:
    """Text for ``value`` (given in ``unit``) that reads well and parses back exactly."""
    base = kind.units[unit]
    exact = Fraction(value) * base
    for display in kind.display:
        number = float(exact / kind.units[display])
        digits = number_text(number)
        short = "e" not in digits and len(digits.partition(".")[2]) <= 3
        if number >= 1 and short and float(_parse(kind, digits + display) / base) == value:
            return digits + display
    return number_text(value) + unit


def parse_bandwidth(text: str | float) -> float:
    """Bits per second in Mbit/s: ``10Mbit`` -> 10.0, ``500kbit`` -> 0.5, ``1Gbit`` -> 1000.0."""
    return float(_parse(_BANDWIDTH, text))


def parse_duration(text: str | float, *, unit: str = "s") -> float:
    """A duration in seconds (or in ``unit``, e.g. ``"ms"``): ``20ms`` -> 0.02, ``2min`` -> 120.0."""
    return float(_parse(_DURATION, text) / _DURATION.units[unit])


def parse_percent(text: str | float) -> float:
    """A percentage from 0 to 100: ``1%`` -> 1.0, ``0.5%`` -> 0.5. ``1`` is refused: write ``1%``."""
    percent = _parse(_PERCENT, text)
    if not 0 <= percent <= 100:
        raise ValueError(f"{quote(text)} is not a percentage from 0% to 100%; "
                         f"expected {_PERCENT.expected}")
    return float(percent)


def parse_size(text: str | int) -> int:
    """Bytes, binary multiples like Docker: ``256M`` = ``256MB`` = ``256MiB`` = 268435456."""
    size = _parse(_SIZE, text)
    if size.denominator != 1:
        raise ValueError(f"{quote(text)} is not a whole number of bytes; expected {_SIZE.expected}")
    return int(size)


def parse_rate(text: str | float) -> float:
    """Events per second: ``40/s`` -> 40.0, ``120/min`` -> 2.0."""
    return float(_parse(_RATE, text))


def format_bandwidth(mbit: float) -> str:
    """Mbit/s as text: 10.0 -> ``10Mbit``, 0.5 -> ``500kbit``, 1000.0 -> ``1Gbit``."""
    return _format(_BANDWIDTH, mbit, "Mbit")


def format_duration(value: float, *, unit: str = "s") -> str:
    """A duration given in seconds (or ``unit``) as text: 0.02 -> ``20ms``, 90.0 -> ``1.5min``."""
    return _format(_DURATION, value, unit)


def format_percent(percent: float) -> str:
    """A percentage as text: 0.5 -> ``0.5%``."""
    return _format(_PERCENT, percent, "%")


def format_size(size: int) -> str:
    """Bytes as text in the largest binary unit that keeps it short: 268435456 -> ``256M``."""
    return _format(_SIZE, size, "B")


def format_rate(per_second: float) -> str:
    """Events per second as text: 40.0 -> ``40/s``, 0.5 -> ``30/min``."""
    return _format(_RATE, per_second, "/s")

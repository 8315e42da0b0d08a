"""Bar charts drawn as SVG geometry on the server, so the admin's usage page needs no JavaScript."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

WIDTH = 900
HEIGHT = 220
AXIS = 40  # room for the scale on the left and the dates below


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # which stacked part (0: the first value)
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    ticks: list[tuple[float, str]]  # (x, date label) under every fifth bar


def usage_chart(days: Sequence[T], values: Callable[[T], list[int]]) -> Chart:
    """Stacked bars, one per day; `values(day)` gives the stacked parts, bottom first."""
    plot_height = HEIGHT - AXIS
    peak = max((sum(values(day)) for day in days), default=0)
    slot = (WIDTH - AXIS) / max(1, len(days))
    bars: list[Bar] = []
    ticks: list[tuple[float, str]] = []
    for index, day in enumerate(days):
        x = AXIS + index * slot + slot * 0.15
        base = float(plot_height)
        for series, value in enumerate(values(day)):
            height = plot_height * value / peak if peak else 0.0
            base -= height
            label = f"{day.day.isoformat()}: {value}"
            bars.append(
                Bar(
                    x=round(x, 1),
                    y=round(base, 1),
                    width=round(slot * 0.7, 1),
                    height=round(height, 1),
                    series=series,
                    label=label,
                )
            )
        if index % 5 == 0 or index == len(days) - 1:
            ticks.append((round(x, 1), day.day.strftime("%m-%d")))
    return Chart(width=WIDTH, height=HEIGHT, bars=bars, peak=peak, ticks=ticks)

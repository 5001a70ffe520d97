"""Decisions per hour as a stacked bar chart, laid out here and drawn as inline SVG by the template.

Drawing on the server needs no JavaScript and no chart library, and the chart is in the page the
moment it loads (and in a screenshot, and with scripts blocked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dedup.hourly import KINDS, HourCounts

WIDTH = 960
HEIGHT = 240
LEFT = 44
"""Room for the value axis labels."""
BOTTOM = 22
"""Room for the time axis labels."""
TOP = 8
KIND_LABELS = {"canonical": "new story", "exact": "exact copy", "near": "near copy", "excerpt": "excerpt",
               "thin": "thin page"}


@dataclass(frozen=True)
class Segment:
    """One kind's part of one hour's bar."""

    kind: str
    y: float
    height: float
    value: int


@dataclass(frozen=True)
class Bar:
    """One hour: its segments bottom-up, and the text of its tooltip."""

    x: float
    width: float
    segments: tuple[Segment, ...]
    title: str


@dataclass(frozen=True)
class Tick:
    """An axis label and where it goes."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """A laid-out chart: bars, both axes' ticks, and the totals by kind for the legend."""

    width: int
    height: int
    left: int
    plot_bottom: float
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    totals: dict[str, int]
    peak: int

    @property
    def empty(self) -> bool:
        return self.peak == 0


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least `value` (a round top for the value axis)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _hour_label(start: int, with_day: bool) -> str:
    moment = datetime.fromtimestamp(start, UTC)
    return moment.strftime("%a %d" if with_day else "%H:%M")


def layout(hours: list[HourCounts]) -> Chart:
    """Stacked bars, one per hour (oldest left), kinds stacked in KINDS order from the bottom."""
    totals = {kind: sum(hour.kinds.get(kind, 0) for hour in hours) for kind in KINDS}
    peak = max((sum(hour.kinds.get(kind, 0) for kind in KINDS) for hour in hours), default=0)
    top = nice_ceiling(max(peak, 1))
    plot_height = HEIGHT - TOP - BOTTOM
    plot_bottom = float(HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT) / max(len(hours), 1)
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, hour in enumerate(hours):
        y = plot_bottom
        segments = []
        for kind in KINDS:
            value = hour.kinds.get(kind, 0)
            if not value:
                continue
            height = value / top * plot_height
            y -= height
            segments.append(Segment(kind, round(y, 2), round(height, 2), value))
        start = datetime.fromtimestamp(hour.start, UTC).strftime("%Y-%m-%d %H:00")
        parts = [f"{hour.kinds.get(kind, 0)} {KIND_LABELS[kind]}" for kind in KINDS if hour.kinds.get(kind, 0)]
        title = f"{start} UTC: " + (", ".join(parts) if parts else "no decisions")
        bars.append(Bar(round(LEFT + index * slot + gap / 2, 2), round(slot - gap, 2), tuple(segments), title))
    y_ticks = tuple(Tick(round(plot_bottom - fraction * plot_height, 2), str(int(top * fraction)))
                    for fraction in (0.0, 0.5, 1.0) if fraction == 0 or top * fraction == int(top * fraction))
    with_day = len(hours) > 48
    every = 24 if with_day else max(1, len(hours) // 8)
    x_ticks = tuple(Tick(round(LEFT + index * slot, 2), _hour_label(hour.start, with_day))
                    for index, hour in enumerate(hours)
                    if (hour.hour % every == 0))
    return Chart(WIDTH, HEIGHT, LEFT, plot_bottom, tuple(bars), y_ticks, x_ticks, totals, peak)

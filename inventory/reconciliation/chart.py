"""Progress over time as the geometry of a small line chart, drawn by the report template.

The lines are an SVG that stretches to its box (its strokes do not scale), and the axis
labels are HTML laid over it, so they keep their size on a phone as on a desktop. Every
coordinate is a string with a decimal point: a template never localises it (the Spanish
decimal comma breaks SVG).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.dateparse import parse_datetime

# The plot's own coordinates; the SVG is drawn with preserveAspectRatio="none".
WIDTH, HEIGHT = 960, 240


@dataclass(frozen=True)
class Tick:
    position: str  # y in the plot's coordinates, for a grid line
    offset: str  # the same, as a percentage of the plot's height from its top, for the label
    label: str


@dataclass(frozen=True)
class ProgressChart:
    counted_points: str
    found_points: str
    found_area: str
    expected_y: str | None
    y_ticks: list[Tick] = field(default_factory=list)
    start_label: str = ""
    end_label: str = ""
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def widest_label(self) -> str:
        """The longest y label: it sizes the labels' column."""
        return max((tick.label for tick in self.y_ticks), key=len, default="")


def _number(value: float) -> str:
    return f"{value:.1f}"


def progress_chart(timeline: list[dict], *, expected: int) -> ProgressChart | None:
    """Lines for vehicles counted and found, and the expected total as a level; None without scans."""
    if len(timeline) < 2:
        return None
    moments = [parse_datetime(point["time"]) for point in timeline]
    start, end = moments[0], moments[-1]
    span = (end - start).total_seconds()
    top_value = max(expected, max(point["counted"] for point in timeline), 1)
    y_max = _nice_ceiling(top_value)

    def x(index: int) -> float:
        if span <= 0:  # every scan at the same instant: spread them evenly
            return WIDTH * index / (len(timeline) - 1)
        return WIDTH * (moments[index] - start).total_seconds() / span

    def y(value: float) -> float:
        return HEIGHT * (1 - value / y_max)

    def point(index: int, value: float) -> str:
        return f"{_number(x(index))},{_number(y(value))}"

    def line(key: str) -> str:
        return " ".join(point(i, entry[key]) for i, entry in enumerate(timeline))

    return ProgressChart(
        counted_points=line("counted"),
        found_points=line("found") if expected else "",
        # The found line closed down to the axis: the area under it.
        found_area=f"{point(0, 0)} {line('found')} {point(len(timeline) - 1, 0)}" if expected else "",
        expected_y=_number(y(expected)) if expected else None,
        y_ticks=[
            Tick(_number(y(value)), _number(100 * y(value) / HEIGHT), str(value))
            for value in (0, y_max // 2, y_max)
        ],
        start_label=_clock(start, end),
        end_label=_clock(end, start),
    )


def _nice_ceiling(value: int) -> int:
    """The next round number at or above value: 1, 2, 5 times a power of ten (and even, for a half tick)."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value and (step * magnitude) % 2 == 0:
                return step * magnitude
        magnitude *= 10


def _clock(moment, other) -> str:
    local = timezone.localtime(moment)
    if timezone.localtime(other).date() == local.date():
        return local.strftime("%H:%M")
    return local.strftime("%d/%m %H:%M")

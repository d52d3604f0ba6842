"""Progress over time as the geometry of a small SVG line chart, drawn by the report template."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.dateparse import parse_datetime

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class ProgressChart:
    width: int
    height: int
    counted_points: str
    found_points: str
    found_area: str
    expected_y: float | None
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def progress_chart(timeline: list[dict], *, expected: int) -> ProgressChart | None:
    """Lines for vehicles counted and found, and the expected total as a level; None without scans."""
    if len(timeline) < 2:
        return None
    moments = [parse_datetime(point["time"]) for point in timeline]
    start, end = moments[0], moments[-1]
    span = (end - start).total_seconds()
    top_value = max(expected, max(point["counted"] for point in timeline), 1)
    y_max = _nice_ceiling(top_value)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        if span <= 0:  # every scan at the same instant: spread them evenly
            return LEFT + plot_width * index / (len(timeline) - 1)
        return LEFT + plot_width * (moments[index] - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / y_max)

    def line(key: str) -> str:
        return " ".join(f"{x(i):.1f},{y(point[key]):.1f}" for i, point in enumerate(timeline))

    return ProgressChart(
        width=WIDTH,
        height=HEIGHT,
        counted_points=line("counted"),
        found_points=line("found") if expected else "",
        # The found line closed down to the axis: the area under it.
        found_area=f"{x(0):.1f},{y(0):.1f} {line('found')} {x(len(timeline) - 1):.1f},{y(0):.1f}"
        if expected
        else "",
        expected_y=round(y(expected), 1) if expected else None,
        y_ticks=[Tick(round(y(value), 1), str(value)) for value in (0, y_max // 2, y_max)],
        x_ticks=[Tick(LEFT, _clock(start, end)), Tick(WIDTH - RIGHT, _clock(end, start))],
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

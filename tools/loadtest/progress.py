"""The progress bar the load test shows while it runs, and a silent stand-in for `--json`."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class NoProgress:
    """Shows nothing."""

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def update(self, phase: str, counts: dict[str, int], elapsed: float = 0.0) -> None:
        return None


class LiveProgress:
    """One bar for connecting (clients done of all), one for publishing (seconds of the duration)."""

    def __init__(self, console: Console, *, connections: int, duration: float):
        self.connections = connections
        self.duration = duration
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._connect: TaskID | None = None
        self._publish: TaskID | None = None

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        self._connect = self.progress.add_task("Connecting", total=self.connections, detail="")
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def update(self, phase: str, counts: dict[str, int], elapsed: float = 0.0) -> None:
        accepted, refused = counts.get("accepted", 0), counts.get("refused", 0)
        if phase == "connect" or self._publish is None:
            self.progress.update(
                self._connect,
                completed=accepted + refused,
                detail=f"{accepted} accepted, {refused} refused",
            )
        if phase == "connect":
            return
        if self._publish is None:
            self.progress.update(self._connect, completed=self.connections)
            self._publish = self.progress.add_task("Publishing", total=self.duration, detail="")
        draining = elapsed >= self.duration
        self.progress.update(
            self._publish,
            description="Draining" if draining else "Publishing",
            completed=min(elapsed, self.duration),
            detail=(
                f"{counts.get('sent', 0)} sent, {counts.get('stored', 0)} stored, "
                f"{counts.get('received', 0)} delivered"
            ),
        )

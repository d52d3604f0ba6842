"""The chaos run's report: one row per phase (a fault and its recovery), as JSON and as a rich table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from realtime.stats import percentile
from tools.tracking import Tally

from .phases import PhaseLog
from .run import ChaosRun


def seconds(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50, presorted=True), 2),
        "p99": round(percentile(ordered, 99, presorted=True), 2),
        "max": round(ordered[-1], 2),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def phase_report(run: ChaosRun, phase: PhaseLog, stored: Mapping[str, set[str]]) -> dict[str, Any]:
    """One phase's figures; `stored` maps a room key to the ids of the run's scans the database holds."""
    sent = stored_count = acked = refused = scans_lost = unconfirmed = 0
    tally = Tally()
    for room in run.rooms:
        ids = {scan_id for scan_id, pending in room.scans.items() if pending.phase == phase.index}
        in_db = ids & stored.get(room.plan.key, set())
        sent += len(ids)
        stored_count += len(in_db)
        acked += len(ids & room.acked.keys())
        refused += len(ids & room.refused.keys())
        # Confirmed to its sender, yet not in the database: a scan the server lost.
        scans_lost += len((ids & room.acked.keys()) - in_db)
        # Neither stored nor refused: still in an outbox at the end (its phone never got back in).
        unconfirmed += len(ids - in_db - room.refused.keys())
        for client in room.clients:
            held = in_db & client.tracker.received
            tally.expected += len(in_db)
            tally.received += len(held)
            # A scan missing below the seq the client holds was skipped: lost. Above it (or never
            # seen by anyone), the client had not caught up when the run ended: missing.
            last = client.tracker.last_seq or 0
            for scan_id in in_db - held:
                if room.seqs.get(scan_id, last + 1) <= last:
                    tally.lost += 1
                else:
                    tally.late += 1
    errors = Counter({kind: count for kind, count in phase.errors.items()})
    return {
        "name": phase.name,
        "title": phase.title,
        "started": phase.wall_started,
        "fault_seconds": _round(phase.fault_seconds),
        "scans": {
            "sent": sent,
            "stored": stored_count,
            "acknowledged": acked,
            "refused": refused,
            "lost": scans_lost,
            "unconfirmed": unconfirmed,
        },
        "deliveries": {
            "expected": tally.expected,
            "received": tally.received,
            "lost": tally.lost,
            "missing": tally.late,
            "duplicated": phase.counter("duplicated"),
            "out_of_order": phase.counter("out_of_order"),
            "gaps": phase.counter("gaps"),
            "resumes": phase.counter("resumes"),
        },
        "snapshot_clients": len(phase.snapshot_clients),
        "drops": phase.drops,
        "live_again_seconds": seconds(phase.downtimes),
        "all_live_after": _round(phase.all_live_after),
        "acknowledged_after": _round(phase.acked_after),
        "presence_after": _round(phase.presence_after),
        "presence_wrong": phase.presence_wrong,
        "errors": dict(sorted(errors.items())),
        "notes": phase.notes,
    }


def summarize(run: ChaosRun, stored: Mapping[str, set[str]], info: dict[str, Any]) -> dict[str, Any]:
    phases = [phase_report(run, phase, stored) for phase in run.phases]
    failures = []
    for row in phases:
        bad = {
            "scans lost": row["scans"]["lost"],
            "scans unconfirmed at the end": row["scans"]["unconfirmed"],
            "deliveries lost": row["deliveries"]["lost"],
            "deliveries missing at the end": row["deliveries"]["missing"],
            "duplicated": row["deliveries"]["duplicated"],
            "out of order": row["deliveries"]["out_of_order"],
        }
        failures += [f"{row['name']}: {count} {what}" for what, count in bad.items() if count]
        if row["name"] != "steady" and row["presence_after"] is None:
            failures.append(f"{row['name']}: not recovered ({'; '.join(row['notes']) or 'presence'})")
    still_down = len(run.down_at_end)
    if still_down:
        failures.append(f"{still_down} clients not joined at the end")
    return {
        "run": info | {"connect_seconds": _round(run.connect_seconds)},
        "phases": phases,
        "failures": failures,
        "ok": not failures,
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") + unit
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _times(summary: dict[str, Any]) -> str:
    if not summary["count"]:
        return "-"
    return f"{_fmt(summary['p50'])} / {_fmt(summary['p99'])} / {_fmt(summary['max'])} ({summary['count']})"


def render(console: Console, report: dict[str, Any]) -> None:
    run = report["run"]
    table = Table(
        title=(
            f"chaos run {run['id']}: {run['rooms']} rooms x {run['clients']} clients, {run['rate']} scans/s "
            f"per room, 2 instances behind a round-robin proxy, heartbeat {run['heartbeat_ms']} ms"
        ),
        title_justify="left",
    )
    columns = [
        ("Fault", "left"),
        ("Scans sent / stored / acked", "right"),
        ("Deliveries expected / received", "right"),
        ("Lost / dup / out of order", "right"),
        ("Snapshots", "right"),
        ("Live again p50 / p99 / max s (drops)", "right"),
        ("All live / presence right after", "right"),
        ("Errors seen by clients", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for row in report["phases"]:
        scans, deliveries = row["scans"], row["deliveries"]
        bad = scans["lost"] + deliveries["lost"] + deliveries["duplicated"] + deliveries["out_of_order"]
        losses = f"{deliveries['lost']} / {deliveries['duplicated']} / {deliveries['out_of_order']}"
        if scans["lost"]:
            losses += f" ({scans['lost']} scans)"
        if deliveries["missing"] or scans["unconfirmed"]:
            losses += f"; missing {deliveries['missing']}, unconfirmed scans {scans['unconfirmed']}"
            bad = True
        table.add_row(
            row["title"],
            f"{_fmt(scans['sent'])} / {_fmt(scans['stored'])} / {_fmt(scans['acknowledged'])}",
            f"{_fmt(deliveries['expected'])} / {_fmt(deliveries['received'])}",
            f"[bold red]{losses}[/]" if bad else losses,
            _fmt(row["snapshot_clients"]),
            _times(row["live_again_seconds"]),
            f"{_fmt(row['all_live_after'], ' s')} / {_fmt(row['presence_after'], ' s')}",
            ", ".join(f"{kind} x{count}" for kind, count in row["errors"].items()) or "none",
        )
    console.print(table)
    for row in report["phases"]:
        for note in row["notes"]:
            console.print(f"{row['name']}: {note}", markup=False)
    if report["ok"]:
        console.print("[bold green]OK[/]: nothing lost, duplicated or out of order; every client live again.")
    else:
        console.print(
            "[bold red]FAILED[/]:", "; ".join(report["failures"]) + ".", markup=True, highlight=False
        )

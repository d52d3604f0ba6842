"""Render the load-test report as a rich table for people (the JSON form is the report itself)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from realtime.wire import CLOSE_ROOM_FULL


def _value(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:,.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _phases(cpu: dict[str, float | None]) -> str:
    return f"{_value(cpu.get('connect'), '%')} / {_value(cpu.get('publish'), '%')}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "none"


def render(console: Console, report: dict[str, Any]) -> None:
    run = report["run"]
    conn, scans, deliveries = report["connections"], report["scans"], report["deliveries"]
    latency, server, client = report["latency_ms"], report["server"], report["client"]
    join = report.get("join") or {}
    requests_per_s = (report.get("requests") or {}).get("per_second")
    pace = (
        f"back to back for {run['duration']} s"
        if run.get("closed_loop")
        else f"{run['rate']} scans/s per room for {run['duration']} s"
    )
    prefill = (report.get("prefill") or {}).get("scans_per_room")
    filled = f", {prefill:,} scans already in each inventory" if prefill else ""

    table = Table(
        title=(
            f"ws_loadtest {run['id']}: {run['rooms']} rooms x {run['clients']} clients, "
            f"{pace} via {run['via']}{filled}"
        ),
        title_justify="left",
    )
    table.add_column("", style="bold")
    table.add_column("Metric")
    table.add_column("Value", justify="right")

    def section(name: str, rows: list[tuple[str, str, str | None]]) -> None:
        for position, (metric, value, style) in enumerate(rows):
            table.add_row(
                name if position == 0 else "",
                metric,
                f"[{style}]{value}[/]" if style else value,
                end_section=position == len(rows) - 1,
            )

    def bad(count: int) -> str | None:
        return "bold red" if count else None

    section(
        "Connections",
        [
            ("attempted", _value(conn["attempted"]), None),
            ("accepted", _value(conn["accepted"]), None),
            (f"refused by room limit {CLOSE_ROOM_FULL}", _value(conn["refused_room_full"]), None),
            ("refused otherwise", _counts(conn["refused_other"]), bad(sum(conn["refused_other"].values()))),
            ("dropped during the run", _counts(conn["dropped"]), bad(sum(conn["dropped"].values()))),
            ("handshakes tried again", _value(join.get("retries")), None),
            ("time to connect (and settle)", _value(conn["seconds"], " s"), None),
            (
                "first handshake to last client in / to join chatter over",
                f"{_value(join.get('joined_seconds'), ' s')} / {_value(join.get('settled_seconds'), ' s')}"
                + ("" if join.get("chatter_over", True) else " (still receiving)"),
                None,
            ),
            (
                "messages while joining",
                f"{_value(join.get('messages_total'))} ({_counts(join.get('messages') or {})})",
                None,
            ),
        ],
    )
    section(
        "Scans",
        [
            ("sent", _value(scans["sent"]), None),
            ("stored", _value(scans["stored"]), None),
            ("refused by the server", _value(scans["rejected"]), None),
            ("neither stored nor refused", _value(scans["unconfirmed"]), bad(scans["unconfirmed"])),
            *(
                [("answered per second (REST)", _value(requests_per_s), None)]
                if run.get("via") == "rest"
                else []
            ),
        ],
    )
    section(
        "Deliveries",
        [
            ("expected", _value(deliveries["expected"]), None),
            ("received", _value(deliveries["received"]), None),
            ("lost (a later scan arrived)", _value(deliveries["lost"]), bad(deliveries["lost"])),
            ("late (missing at the drain timeout)", _value(deliveries["late"]), bad(deliveries["late"])),
            ("duplicated", _value(deliveries["duplicated"]), bad(deliveries["duplicated"])),
            ("out of order", _value(deliveries["out_of_order"]), bad(deliveries["out_of_order"])),
            ("seq gaps seen / resumes", f"{deliveries['gaps']} / {deliveries['resumes']}", None),
            ("per second", _value(deliveries["per_second"]), None),
        ],
    )
    section(
        "Fan-out latency",
        [(name, _value(latency[name], " ms"), None) for name in ("p50", "p95", "p99", "max")],
    )
    section("Errors", [("by code", _counts(report["errors"]), None)])

    if server.get("available"):
        cpu = server["cpu_percent"]
        server_rows = [
            ("pid", str(server["pid"]), None),
            (
                "CPU connect / publish",
                _phases(cpu),
                None,
            ),
            (
                "memory now / peak",
                f"{_value(server['rss_mb'], ' MB')} / {_value(server['peak_rss_mb'], ' MB')}",
                None,
            ),
        ]
    else:
        server_rows = [("CPU and memory", f"not available: {server.get('reason', '')}", None)]
    section("Server", server_rows)
    worker_rows = [
        (
            f"worker {w['worker']} CPU connect / publish",
            _phases(w["cpu_percent"]),
            "bold yellow" if w["saturated"] else None,
        )
        for w in client["workers"]
    ]
    worker_rows.append(("command process CPU, whole run", _value(client["main_cpu_percent"], "%"), None))
    section("Load generator", worker_rows)
    console.print(table)

    if client["saturated"]:
        console.print(
            "[bold yellow]The load generator saturated a core (worker "
            f"{', '.join(map(str, client['saturated_workers']))}): latencies include its own queueing; "
            "use more --procs or another machine.[/]"
        )
    for line in report.get("notes", []):
        console.print(line)
    if report["ok"]:
        console.print(
            "[bold green]OK[/]: every stored scan reached every connected client, once and in order."
        )
    else:
        console.print(f"[bold red]FAILED[/]: {'; '.join(report['failures'])}.")

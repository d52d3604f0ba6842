"""Combine the workers' results into the run's report: counts, latency percentiles, CPU use.

The report is a plain JSON-safe dict: `--json` prints it as it is, the table renders it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from realtime.stats import percentile
from tools.tracking import Tally

# A worker above this share of one core was probably slowing its own clients down.
SATURATED_PERCENT = 90.0


def latency_summary(seconds: Iterable[float]) -> dict[str, Any]:
    """p50, p95, p99, max and mean of latencies given in seconds, reported in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "count": len(ordered),
        "p50": ms(percentile(ordered, 50, presorted=True)),
        "p95": ms(percentile(ordered, 95, presorted=True)),
        "p99": ms(percentile(ordered, 99, presorted=True)),
        "max": ms(ordered[-1]),
        "mean": ms(sum(ordered) / len(ordered)),
    }


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float | None:
    """CPU time as a share of one core over a wall-clock interval."""
    if wall_seconds <= 0:
        return None
    return round(100 * cpu_seconds / wall_seconds, 1)


def add_counts(total: Counter, counts: Mapping[str, int]) -> Counter:
    total.update({str(key): value for key, value in counts.items()})
    return total


def summarize(
    results: list[dict[str, Any]],
    *,
    run: dict[str, Any],
    stored_in_db: Mapping[str, set[str]] | None = None,
    server: dict[str, Any] | None = None,
    main_cpu: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The run's report from the workers' results.

    `stored_in_db` maps a room key to the scan ids the database holds for it (when the command
    can see the server's database). A stored scan that no client saw is expected by every client
    connected to the end: lost for a client that received a scan published after it, late for
    one that did not (its delivery may still have been on the way).
    """
    connections = {"attempted": 0, "accepted": 0, "refused_room_full": 0}
    refused, dropped, errors = Counter(), Counter(), Counter()
    tally = Tally()
    sent = stored = rejected = 0
    latencies: list[float] = []
    first_send = last_receipt = None
    workers = []

    for result in results:
        conn = result["connections"]
        for name in connections:
            connections[name] += conn[name]
        add_counts(refused, conn["refused"])
        add_counts(dropped, conn["dropped"])
        add_counts(errors, result["errors"])
        tally.add(Tally(**result["tally"]))
        latencies.extend(result["latencies"])
        for room in result["rooms"]:
            seen = set(room["stored_ids"])
            unseen = [
                room["orders"][scan_id]
                for scan_id in (stored_in_db or {}).get(room["key"], set())
                if scan_id not in seen and scan_id in room["orders"]
            ]
            for order in unseen:
                lost = sum(1 for horizon in room["horizons"] if horizon > order)
                tally.add(Tally(expected=len(room["horizons"]), lost=lost, late=len(room["horizons"]) - lost))
            sent += room["sent"]
            stored += len(seen) + len(unseen)
            rejected += sum(room["rejected"].values())
        if result["first_send"] is not None:
            first_send = min(first_send or result["first_send"], result["first_send"])
        if result["last_receipt"] is not None:
            last_receipt = max(last_receipt or result["last_receipt"], result["last_receipt"])
        workers.append(_worker_cpu(result))

    window = (last_receipt - first_send) if first_send is not None and last_receipt is not None else 0
    unconfirmed = max(0, sent - stored - rejected)
    saturated = [w["worker"] for w in workers if w["saturated"]]
    failures = []
    if tally.lost:
        failures.append(f"{tally.lost} deliveries lost")
    if tally.duplicated:
        failures.append(f"{tally.duplicated} deliveries duplicated")
    if tally.out_of_order:
        failures.append(f"{tally.out_of_order} deliveries out of order")
    if tally.late:
        failures.append(f"{tally.late} deliveries still missing when the drain timeout passed")
    if unconfirmed:
        failures.append(f"{unconfirmed} scans neither stored nor refused")
    if connections["attempted"] and not connections["accepted"]:
        failures.append("no connection was accepted")
    connect_seconds = max((r["cpu"]["connect"]["wall"] for r in results if "connect" in r["cpu"]), default=0)
    answered = sum(result.get("answered", 0) for result in results)
    last_answer = max((r["last_answer"] for r in results if r.get("last_answer") is not None), default=None)
    answer_window = last_answer - first_send if last_answer is not None and first_send is not None else 0
    return {
        "run": run,
        "connections": {
            **connections,
            "refused_other": dict(refused),
            "dropped": dict(dropped),
            "seconds": round(connect_seconds, 2),
        },
        "scans": {"sent": sent, "stored": stored, "rejected": rejected, "unconfirmed": unconfirmed},
        "deliveries": {
            **tally.as_dict(),
            "per_second": round(tally.received / window, 1) if window > 0 else None,
            "window_seconds": round(window, 3),
        },
        "latency_ms": latency_summary(latencies),
        "join": join_summary([r["join"] for r in results if r.get("join")], connections["accepted"]),
        "requests": {
            "answered": answered,
            "per_second": round(answered / answer_window, 1) if answered and answer_window > 0 else None,
            "window_seconds": round(answer_window, 3),
        },
        "errors": dict(errors),
        "server": server or {"available": False, "reason": "not measured"},
        "client": {
            "workers": workers,
            "main_cpu_percent": (
                cpu_percent(main_cpu["cpu"], main_cpu["wall"]) if main_cpu and main_cpu.get("wall") else None
            ),
            "saturated": bool(saturated),
            "saturated_workers": saturated,
        },
        "failures": failures,
        "ok": not failures,
    }


def join_summary(joins: list[dict[str, Any]], accepted: int) -> dict[str, Any]:
    """The workers' joins as one: seconds from the first handshake to the last client in and to the
    last message before publishing (the join chatter over), and the messages received meanwhile.
    """
    started = min((j["started"] for j in joins if j.get("started") is not None), default=None)

    def seconds_to(name: str) -> float | None:
        moments = [j[name] for j in joins if j.get(name) is not None]
        return round(max(moments) - started, 3) if moments and started is not None else None

    joined = seconds_to("last_joined")
    last_message = seconds_to("last_message")
    messages: Counter = Counter()
    for join in joins:
        add_counts(messages, join.get("messages", {}))
    total = sum(messages.values())
    return {
        "retries": sum(j.get("retries", 0) for j in joins),
        "joined_seconds": joined,
        "settled_seconds": max((s for s in (joined, last_message) if s is not None), default=None),
        "chatter_over": all(j.get("chatter_over", True) for j in joins),
        "messages": dict(sorted(messages.items())),
        "messages_total": total,
        "messages_per_client": round(total / accepted, 1) if accepted else None,
    }


def _worker_cpu(result: dict[str, Any]) -> dict[str, Any]:
    phases = {name: cpu_percent(phase["cpu"], phase["wall"]) for name, phase in result.get("cpu", {}).items()}
    busiest = max((p for p in phases.values() if p is not None), default=None)
    return {
        "worker": result["worker"],
        "rooms": len(result["rooms"]),
        "cpu_percent": phases,
        "saturated": busiest is not None and busiest > SATURATED_PERCENT,
    }

"""The benchmark's results as Markdown tables: what tools/bench/run.py prints at the end and with --report."""

from __future__ import annotations

from realtime.wire import PRESENCE_CHATTER


def _n(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text}{unit}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ramp(results: dict) -> str:
    rows = []
    for name, variant in results.get("variants", {}).items():
        for s in variant.get("steps", []):
            lat, d, sc = s["latency_ms"], s["deliveries"], s["scans"]
            rows.append(
                [
                    name,
                    _n(s["rate"], digits=2),
                    _n(s["offered_per_s"], digits=0),
                    _n(s["achieved_per_s"], digits=0),
                    _n(lat["p50"], digits=0),
                    _n(lat["p95"], digits=0),
                    _n(lat["p99"], digits=0),
                    f"{d['lost']} / {d['late']} / {sc['unconfirmed']}",
                    _n((s.get("server_cpu_percent") or {}).get("publish"), " %", 0),
                    _n(s["connections"]["seconds"], " s", 0),
                    _n(s["load_average"][0], digits=2),
                    "ok" if s["ok"] else "saturated",
                ]
            )
    if not rows:
        return ""
    header = ["variant", "rate/room", "offered/s", "delivered/s", "p50 ms", "p95 ms", "p99 ms"]
    header += ["lost / late / unconfirmed", "server CPU (publish)", "connect 1,000", "load", ""]
    return "Ramp (20 rooms x 50 sockets, every scan written and relayed)\n\n" + _table(header, rows)


def _storm(results: dict) -> str:
    storm = results.get("storm")
    if not storm:
        return ""
    rows = []
    for name, s in storm["variants"].items():
        messages = s["messages"]
        other = s["messages_total"] - sum(messages.get(k, 0) for k in PRESENCE_CHATTER)
        rows.append(
            [
                name,
                f"{s['accepted']} / {s['attempted']}",
                _n(s.get("retries")),
                _n(s["joined_seconds"], " s", 2),
                _n(s["settled_seconds"], " s", 2) + ("" if s["chatter_over"] else " (still receiving)"),
                _n(messages.get("user_joined", 0)),
                _n(messages.get("presence", 0)),
                _n(messages.get("user_left", 0) + other),
                _n(s["messages_per_client"]),
                _n(s["server_cpu_percent"], " %", 0),
                "yes" if s["scan_after_delivered"] else "NO",
            ]
        )
    header = ["variant", "in / sockets", "handshakes retried", "last socket in", "join chatter over"]
    header += ["user_joined", "presence"]
    header += ["other", "messages per socket", "server CPU", "a scan after: all delivered"]
    ratio = storm.get("product_vs_baseline_seconds")
    note = f"\n\nProduct / baseline, time to chatter over: {_n(ratio, 'x', 2)}" if ratio else ""
    for name, s in storm["variants"].items():
        if s["refused"]:
            reasons = ", ".join(f"{count} {reason}" for reason, count in s["refused"].items())
            note += f"\n\nNot in on {name}: {reasons}"
    return (
        f"Connect storm: {storm['connections']:,} sockets handshaking at once "
        "(times from the first handshake)\n\n" + _table(header, rows) + note
    )


def _rest5(results: dict) -> str:
    rest5 = results.get("rest5")
    if not rest5:
        return ""
    rows = []
    for key in ("empty", "full"):
        s = rest5.get(key)
        if not s:
            continue
        d = s["deliveries"]
        rows.append(
            [
                f"{s['prefill']:,} scans",
                _n(s["requests_per_s"]),
                _n(s["answered"]),
                _n(s["latency_ms"]["p50"], digits=0),
                _n(s["latency_ms"]["p99"], digits=0),
                f"{d['lost']} / {d['late']} / {s['scans']['unconfirmed']}",
                _n((s.get("server_cpu_percent") or {}).get("publish"), " %", 0),
                _n(s["load_average"][0], digits=2),
            ]
        )
    header = ["inventory before", "requests/s", "answered", "p50 to sockets ms", "p99 ms"]
    header += ["lost / late / unconfirmed", "server CPU", "load"]
    ratio = rest5.get("full_vs_empty")
    return (
        f"REST save-scan, {rest5['variant']}: 20 rooms x {rest5['watchers']} watching sockets, "
        "one keep-alive client per room posting back to back\n\n"
        + _table(header, rows)
        + f"\n\nFull / empty: {_n(ratio, 'x', 3)}"
    )


def _write(results: dict) -> str:
    write = results.get("write")
    if not write:
        return ""
    rows = []
    for case in write.get("cases", []):
        st, per = case["statements"], case["per_add_ms"]
        alone, relayed = per.get("without_relay", {}), per.get("with_relay", {})
        rows.append(
            [
                f"{case['scans_before']:,} scans",
                f"{st['add']} / {st['remove']} / {st['complete']}",
                _n(alone.get("python_cpu"), " ms", 2),
                _n(alone.get("postgres_cpu"), " ms", 2),
                _n(alone.get("wall"), " ms", 2),
                _n(relayed.get("python_cpu"), " ms", 2),
            ]
        )
    if not rows:
        return f"One scan's write: write_path.py gave no figures (exit {write.get('exit')})"
    header = ["inventory", "statements add / remove / complete", "python CPU per add", "PostgreSQL CPU"]
    header += ["wall", "python CPU with the relay"]
    return f"One scan's write (`{write['command']}`)\n\n" + _table(header, rows)


def _targets(results: dict, target: dict) -> str:
    met = results.get("targets") or {}
    figures = {
        "12000_per_s_p99_50ms_no_loss": (
            f">= {target['deliveries_per_s']:,} deliveries/s at p99 <= {target['p99_ms']:g} ms"
        ),
        "4x_baseline_at_saturation": f">= {target['vs_baseline']:g}x the baseline at saturation",
        "4x_baseline_peak_delivered": f">= {target['vs_baseline']:g}x the baseline's peak",
        "idle_kb_per_connection_le_30": f"<= {target['idle_kb']:g} KB per idle socket",
        "two_instances_ge_1_8x": f"two instances >= {target['scaling']:g}x one",
        "no_silent_loss": "nothing lost past saturation",
        "connect_storm_le_3s": f"1,000 sockets in and join chatter over <= {target['storm_seconds']:g} s",
        "rest_5_watchers_ge_400_per_s": f"REST, 5 watchers: >= {target['rest5_per_s']:g} requests/s",
        "rest_5_watchers_full_within_10_percent": "the same with 5,000 scans: within 10 % of empty",
        "write_le_3_statements": f"one scan's write: <= {target['write_statements']} statements",
        "write_le_1_ms_cpu": f"one scan's write: <= {target['write_cpu_ms']:g} ms Python CPU",
    }
    rows = [
        [figures.get(key, key), "yes" if value else "no"] for key, value in met.items() if key != "variant"
    ]
    return _table(["target", "met"], rows) if rows else ""


def render(results: dict, target: dict) -> str:
    meta = results.get("meta", {})
    head = (
        f"bench {meta.get('started', '?')} UTC, parts {','.join(meta.get('parts', []) or ['all'])}"
        f"{' (quick: smoke figures)' if meta.get('quick') else ''}, load average "
        f"{meta.get('load_before')} -> {meta.get('load_after')}"
    )
    sections = [_ramp(results), _storm(results), _rest5(results), _write(results), _targets(results, target)]
    return "\n\n".join([head, *filter(None, sections)]) + "\n"

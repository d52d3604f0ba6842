"""The realtime figures in Prometheus text format: totals across every instance, and each one's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from . import metrics

QUANTILES = [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]

# (metric name, key in the figures, help): counted by every instance, summed in the totals.
COUNTERS = [
    ("inventory_ws_messages_sent", "messagesSent", "Messages sent to clients."),
    ("inventory_ws_messages_received", "messagesReceived", "Messages received from clients."),
    ("inventory_ws_deliveries", "deliveries", "Room broadcasts handed to sockets."),
    ("inventory_ws_broadcast_failures", "broadcastFailures", "Room events the channel layer refused."),
    ("inventory_ws_gaps_filled", "gapsFilled", "Sequence gaps filled from the event log."),
]


def _add_latency(family: SummaryMetricFamily, labels: dict[str, str], summary: dict) -> None:
    """One series of a latency summary: its count, sum and the quantiles of recent samples."""
    family.add_metric(list(labels.values()), count_value=summary["count"], sum_value=summary["sum"])
    for quantile, key in QUANTILES:
        if summary[key] is not None:
            family.add_sample(family.name, labels | {"quantile": quantile}, summary[key])


class RealtimeCollector:
    def collect(self):
        figures = metrics.aggregate()
        instances = figures["instances"]
        yield GaugeMetricFamily(
            "inventory_ws_connections", "Open WebSocket connections.", value=figures["activeConnections"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_rooms", "Rooms with someone in them.", value=figures["activeRooms"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_user_sessions", "Distinct users connected.", value=figures["userSessions"]
        )
        for name, key, doc in COUNTERS:
            yield CounterMetricFamily(name, doc, value=figures[key])
            per_instance = CounterMetricFamily(
                f"{name}_by_instance", f"{doc} Per instance.", labels=["instance"]
            )
            for instance in instances:
                per_instance.add_metric([instance["instance"]], instance.get(key, 0))
            yield per_instance
        errors = CounterMetricFamily("inventory_ws_errors", "Error messages sent, by code.", labels=["code"])
        for code, count in sorted(figures["errorsByCode"].items()):
            errors.add_metric([code], count)
        yield errors
        rejections = CounterMetricFamily(
            "inventory_ws_rejections", "Connections refused, by reason.", labels=["reason"]
        )
        for reason, count in sorted(figures["rejections"].items()):
            rejections.add_metric([reason], count)
        yield rejections
        latency = SummaryMetricFamily(
            "inventory_ws_delivery_latency_ms",
            "Delivery latency from commit to socket hand-off, in ms (quantiles of recent samples).",
        )
        _add_latency(latency, {}, figures["deliveryLatencyMs"])
        yield latency
        yield GaugeMetricFamily(
            "inventory_ws_delivery_latency_max_ms",
            "Slowest delivery seen, in ms.",
            value=figures["deliveryLatencyMs"]["max"] or 0,
        )
        connections = GaugeMetricFamily(
            "inventory_ws_instance_connections", "Open connections per server instance.", labels=["instance"]
        )
        errors_by_instance = CounterMetricFamily(
            "inventory_ws_errors_by_instance", "Error messages sent, per instance.", labels=["instance"]
        )
        for instance in instances:
            connections.add_metric([instance["instance"]], instance["activeConnections"])
            errors_by_instance.add_metric([instance["instance"]], instance["errors"])
        yield connections
        yield errors_by_instance
        latency_by_instance = SummaryMetricFamily(
            "inventory_ws_instance_delivery_latency_ms",
            "Delivery latency per instance, in ms.",
            labels=["instance"],
        )
        for instance in instances:
            _add_latency(
                latency_by_instance, {"instance": instance["instance"]}, instance["deliveryLatencyMs"]
            )
        yield latency_by_instance


registry = CollectorRegistry(auto_describe=False)
registry.register(RealtimeCollector())


def exposition() -> bytes:
    return generate_latest(registry)

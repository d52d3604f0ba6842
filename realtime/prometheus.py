"""The realtime figures in Prometheus text format.

Every counter is exported per instance (`instance` label), never as a total summed over live
instances: that total would fall when an instance dies, which Prometheus reads as a reset. A dead
instance's last figures stay exported (with `inventory_ws_instance_up` 0) for
METRICS_GONE_RETENTION_SECONDS; sum them in the query: `sum(rate(inventory_ws_messages_sent_total[5m]))`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from . import metrics

QUANTILES = [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]

# (metric name, key in each instance's figures, help): counters of every instance.
COUNTERS = [
    ("inventory_ws_messages_sent", "messagesSent", "Messages sent to clients."),
    ("inventory_ws_messages_received", "messagesReceived", "Messages received from clients."),
    ("inventory_ws_deliveries", "deliveries", "Room broadcasts handed to sockets."),
    ("inventory_ws_broadcast_failures", "broadcastFailures", "Room events the channel layer refused."),
    ("inventory_ws_gaps_filled", "gapsFilled", "Sequence gaps filled from the event log."),
]


def _add_summary(family: SummaryMetricFamily, labels: dict[str, str], summary: dict) -> None:
    """One series of a latency summary: its count, sum and the quantiles of recent samples."""
    family.add_metric(list(labels.values()), count_value=summary["count"], sum_value=summary["sum"])
    for quantile, key in QUANTILES:
        if summary.get(key) is not None:
            family.add_sample(family.name, labels | {"quantile": quantile}, summary[key])


class RealtimeCollector:
    def collect(self):
        figures = metrics.aggregate()
        live = figures["instances"]
        every = live + figures["goneInstances"]
        yield GaugeMetricFamily(
            "inventory_ws_connections", "Open WebSocket connections.", value=figures["activeConnections"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_rooms", "Rooms with someone in them.", value=figures["activeRooms"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_user_sessions", "Distinct users connected.", value=figures["userSessions"]
        )
        up = GaugeMetricFamily(
            "inventory_ws_instance_up", "1 for a live server instance, 0 for one gone.", labels=["instance"]
        )
        connections = GaugeMetricFamily(
            "inventory_ws_instance_connections", "Open connections per server instance.", labels=["instance"]
        )
        for instance in every:
            up.add_metric([instance["instance"]], 0 if instance.get("gone") else 1)
        for instance in live:
            connections.add_metric([instance["instance"]], instance["activeConnections"])
        yield up
        yield connections

        for name, key, doc in COUNTERS:
            family = CounterMetricFamily(name, f"{doc} Per instance.", labels=["instance"])
            for instance in every:
                family.add_metric([instance["instance"]], instance.get(key, 0))
            yield family
        errors = CounterMetricFamily(
            "inventory_ws_errors", "Error messages sent, per instance and code.", labels=["instance", "code"]
        )
        rejections = CounterMetricFamily(
            "inventory_ws_rejections",
            "Connections refused, per instance and reason.",
            labels=["instance", "reason"],
        )
        for instance in every:
            for code, count in sorted(instance["errorsByCode"].items()):
                errors.add_metric([instance["instance"], code], count)
            for reason, count in sorted(instance["rejections"].items()):
                rejections.add_metric([instance["instance"], reason], count)
        yield errors
        yield rejections

        delivery = SummaryMetricFamily(
            "inventory_ws_delivery_latency_ms",
            "Delivery latency from commit to socket hand-off, in ms, per instance "
            "(quantiles of recent samples).",
            labels=["instance"],
        )
        ping = SummaryMetricFamily(
            "inventory_ws_ping_rtt_ms",
            "WebSocket ping round trip (heartbeat ping to pong), in ms, per instance "
            "(quantiles of recent samples).",
            labels=["instance"],
        )
        for instance in every:
            labels = {"instance": instance["instance"]}
            if instance.get("gone"):  # a gone instance's counts stay; its quantiles are stale
                delivery.add_metric(
                    [instance["instance"]],
                    count_value=instance["deliveryLatencyMs"]["count"],
                    sum_value=instance["deliveryLatencyMs"]["sum"],
                )
                ping.add_metric(
                    [instance["instance"]],
                    count_value=instance["pingLatencyMs"]["count"],
                    sum_value=instance["pingLatencyMs"]["sum"],
                )
                continue
            _add_summary(delivery, labels, instance["deliveryLatencyMs"])
            _add_summary(ping, labels, instance["pingLatencyMs"])
        yield delivery
        yield ping
        room_ping = GaugeMetricFamily(
            "inventory_ws_room_ping_rtt_ms",
            "WebSocket ping round trip per room and instance, in ms: quantiles of recent samples.",
            labels=["instance", "room", "quantile"],
        )
        for instance in live:
            for room, summary in instance["roomPingLatencyMs"].items():
                for quantile, key in QUANTILES:
                    if summary[key] is not None:
                        room_ping.add_metric([instance["instance"], room, quantile], summary[key])
        yield room_ping
        yield GaugeMetricFamily(
            "inventory_ws_delivery_latency_max_ms",
            "Slowest delivery seen, in ms.",
            value=figures["deliveryLatencyMs"]["max"] or 0,
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(RealtimeCollector())


def exposition() -> bytes:
    return generate_latest(registry)

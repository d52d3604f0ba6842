"""The realtime figures in Prometheus text format, aggregated across every instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import metrics


class RealtimeCollector:
    def collect(self):
        figures = metrics.aggregate()
        yield GaugeMetricFamily(
            "inventory_ws_connections", "Open WebSocket connections.", value=figures["activeConnections"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_rooms", "Rooms with someone in them.", value=figures["activeRooms"]
        )
        yield GaugeMetricFamily(
            "inventory_ws_user_sessions", "Distinct users connected.", value=figures["userSessions"]
        )
        for name, key, doc in [
            ("inventory_ws_messages_sent", "messagesSent", "Messages sent to clients."),
            ("inventory_ws_messages_received", "messagesReceived", "Messages received from clients."),
            ("inventory_ws_deliveries", "deliveries", "Room broadcasts handed to sockets."),
        ]:
            yield CounterMetricFamily(name, doc, value=figures[key])
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
        latency = GaugeMetricFamily(
            "inventory_ws_delivery_latency_ms",
            "Delivery latency from commit to socket hand-off (recent samples).",
            labels=["quantile"],
        )
        summary = figures["deliveryLatencyMs"]
        for label, key in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"), ("1", "max")]:
            if summary[key] is not None:
                latency.add_metric([label], summary[key])
        yield latency
        per_instance = GaugeMetricFamily(
            "inventory_ws_instance_connections", "Open connections per server instance.", labels=["instance"]
        )
        for instance in figures["instances"]:
            per_instance.add_metric([instance["instance"]], instance["activeConnections"])
        yield per_instance


registry = CollectorRegistry(auto_describe=False)
registry.register(RealtimeCollector())


def exposition() -> bytes:
    return generate_latest(registry)

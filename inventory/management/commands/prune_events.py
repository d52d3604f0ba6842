"""Trim the event log: clients resuming from before the oldest kept event get a snapshot."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from inventory.models import InventoryEvent


class Command(BaseCommand):
    help = "Delete inventory events older than --days (default 30); resumes from before get a snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=30, help="Keep events newer than this many days.")

    def handle(self, *args, days: float, **options):
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = InventoryEvent.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} events older than {cutoff:%Y-%m-%d %H:%M} UTC.")

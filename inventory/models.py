"""Agencies, their monthly inventories, and the scans counted in them."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

CODE_MAX_LENGTH = 64


class Agency(models.Model):
    """A dealership whose stock is counted, e.g. "Alfa Romeo"."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=140, unique=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="agencies", verbose_name=_("members")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="agency_name_unique_ci"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:140]
        super().save(*args, **kwargs)


class Inventory(models.Model):
    """One month's count of one agency's stock: the room `{agency}/{month}/{year}`."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        COMPLETED = "completed", _("completed")

    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, related_name="inventories", verbose_name=_("agency")
    )
    month = models.PositiveSmallIntegerField(
        _("month"), validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    year = models.PositiveSmallIntegerField(
        _("year"), validators=[MinValueValidator(2000), MaxValueValidator(2100)]
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OPEN)
    created_at = models.DateTimeField(_("opened"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("completed by"),
    )
    completed_by_name = models.CharField(_("completed by (name)"), max_length=150, blank=True)
    # The last event sequence number handed out in this inventory's event log.
    last_seq = models.PositiveBigIntegerField(_("last event"), default=0, editable=False)

    class Meta:
        verbose_name = _("inventory")
        verbose_name_plural = _("inventories")
        ordering = ["-year", "-month", "agency__name"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "month", "year"], name="inventory_one_per_month"),
            models.CheckConstraint(
                condition=models.Q(month__gte=1, month__lte=12), name="inventory_month_range"
            ),
        ]

    def __str__(self):
        return self.room_key

    @property
    def room_key(self) -> str:
        return f"{self.agency.name}/{self.month}/{self.year}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Scan(models.Model):
    """One vehicle counted once in one inventory."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="scans", verbose_name=_("inventory")
    )
    # The client's id for this scan: retrying a scan with the same id never counts it twice.
    uid = models.UUIDField(_("scan id"), default=uuid.uuid4, unique=True, editable=False)
    code = models.CharField(_("code"), max_length=CODE_MAX_LENGTH)
    scanned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="scans",
        verbose_name=_("scanned by"),
    )
    scanned_by_name = models.CharField(_("scanned by (name)"), max_length=150)
    scanned_at = models.DateTimeField(_("scanned at"))
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("scan")
        verbose_name_plural = _("scans")
        ordering = ["-scanned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["inventory", "code"], name="scan_code_once_per_inventory"),
        ]

    def __str__(self):
        return self.code


class InventoryEvent(models.Model):
    """The inventory's change log: one row per broadcast change, numbered without gaps."""

    class Type(models.TextChoices):
        SCAN_ADDED = "scan_added"
        SCAN_REMOVED = "scan_removed"
        INVENTORY_COMPLETED = "inventory_completed"

    inventory = models.ForeignKey(Inventory, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32, choices=Type)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["inventory", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["inventory", "seq"], name="event_seq_once_per_inventory"),
        ]

    def __str__(self):
        return f"{self.inventory_id}#{self.seq} {self.type}"

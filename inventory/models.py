"""Agencies, their monthly inventories, and the scans counted in them."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

CODE_MAX_LENGTH = 64
# A code's compared form (its upper case, see reconciliation.matching.code_key) may be longer than
# the code: "ß" is "SS". Unicode's full case mapping turns one character into at most three
# ("ΐ", "ﬃ"), so a key column this wide holds the key of every valid code on every database.
CODE_KEY_MAX_LENGTH = 3 * CODE_MAX_LENGTH


def validate_agency_name(value: str) -> None:
    """A name that can stand in a room URL `{agency}/{month}/{year}`: no slash, some letter or digit."""
    if "/" in value:
        raise ValidationError(_("El nombre de la agencia no puede llevar «/»."), code="slash")
    if not any(character.isalnum() for character in value):
        raise ValidationError(
            _("El nombre de la agencia necesita al menos una letra o un número."), code="no_alnum"
        )


class Agency(models.Model):
    """A dealership whose stock is counted, e.g. "Alfa Romeo"."""

    name = models.CharField(_("nombre"), max_length=120, validators=[validate_agency_name])
    slug = models.SlugField(_("slug"), max_length=140, unique=True, blank=True)
    is_active = models.BooleanField(_("activa"), default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="agencies", verbose_name=_("miembros")
    )
    # Managers explain variances and always see the expected list; staff are managers everywhere.
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="managed_agencies", verbose_name=_("gerentes")
    )
    blind_count = models.BooleanField(
        _("conteo a ciegas"),
        default=False,
        help_text=_("Quien cuenta no ve la lista esperada, solo el avance; los gerentes ven todo."),
    )
    created_at = models.DateTimeField(_("creada"), auto_now_add=True)

    class Meta:
        verbose_name = _("agencia")
        verbose_name_plural = _("agencias")
        ordering = ["name"]
        # What staff may do beyond the agencies they belong to (docs/reliability.md, item 8).
        permissions = [
            ("access_every_agency", _("Puede entrar, contar y completar en todas las agencias")),
            ("manage_every_agency", _("Es gerente en todas las agencias")),
            ("view_realtime_metrics", _("Puede ver las métricas en vivo de todas las salas")),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="agency_name_unique_ci",
                violation_error_message=_("Ya existe una agencia con ese nombre."),
            ),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._free_slug()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self.validate_unambiguous()

    def _others(self) -> models.QuerySet:
        return Agency.objects.exclude(pk=self.pk) if self.pk else Agency.objects.all()

    def validate_unambiguous(self) -> None:
        """A room names its agency by name or slug: no name may be another agency's slug, or the reverse."""
        name = (self.name or "").strip().lower()
        if name and self._others().filter(slug=name).exists():
            raise ValidationError(
                {
                    "name": ValidationError(
                        _("«%(name)s» es el slug de otra agencia; elige otro nombre."),
                        code="name_is_a_slug",
                        params={"name": self.name.strip()},
                    )
                }
            )
        if self.slug and self._names_taken(self.slug):
            raise ValidationError(
                {
                    "slug": ValidationError(
                        _("«%(slug)s» es el nombre de otra agencia; elige otro slug."),
                        code="slug_is_a_name",
                        params={"slug": self.slug},
                    )
                }
            )

    def _names_taken(self, slug: str) -> bool:
        return self._others().annotate(lower_name=Lower("name")).filter(lower_name=slug).exists()

    def _free_slug(self) -> str:
        """The name's slug, numbered (`fiat-centro-2`) when another agency has it as slug or name."""
        base = slugify(self.name)[:130] or "agencia"
        slug, number = base, 2
        while self._others().filter(slug=slug).exists() or self._names_taken(slug):
            slug, number = f"{base}-{number}", number + 1
        return slug


class Inventory(models.Model):
    """One month's count of one agency's stock: the room `{agency}/{month}/{year}`."""

    class Status(models.TextChoices):
        OPEN = "open", _("abierto")
        COMPLETED = "completed", _("completado")

    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, related_name="inventories", verbose_name=_("agencia")
    )
    month = models.PositiveSmallIntegerField(
        _("mes"), validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    year = models.PositiveSmallIntegerField(
        _("año"), validators=[MinValueValidator(2000), MaxValueValidator(2100)]
    )
    status = models.CharField(_("estado"), max_length=10, choices=Status, default=Status.OPEN)
    created_at = models.DateTimeField(_("abierto el"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completado el"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("completado por"),
    )
    completed_by_name = models.CharField(_("completado por (nombre)"), max_length=150, blank=True)
    # The last event sequence number handed out in this inventory's event log.
    last_seq = models.PositiveBigIntegerField(_("último evento"), default=0, editable=False)
    # The room's progress, kept by the services in the transaction of every change to the scans or the
    # expected list, so that a write costs the same in an empty and in a full inventory. `found` counts
    # the distinct expected codes scanned. reconciliation.selectors.progress_recount counts them again
    # from the rows (the data migration and the tests compare the two).
    progress_expected = models.PositiveIntegerField(_("esperados"), default=0, editable=False)
    progress_counted = models.PositiveIntegerField(_("contados"), default=0, editable=False)
    progress_found = models.PositiveIntegerField(_("encontrados"), default=0, editable=False)
    progress_unexpected = models.PositiveIntegerField(_("no esperados"), default=0, editable=False)
    progress_flagged = models.PositiveIntegerField(_("VIN dudosos"), default=0, editable=False)

    class Meta:
        verbose_name = _("inventario")
        verbose_name_plural = _("inventarios")
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


class ScanMatch(models.TextChoices):
    """How a scan compares with the inventory's expected list (blank: there is no list)."""

    EXPECTED = "expected", _("esperado")
    UNEXPECTED = "unexpected", _("no esperado")
    FLAGGED = "flagged", _("VIN dudoso")


class Scan(models.Model):
    """One vehicle counted once in one inventory."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="scans", verbose_name=_("inventario")
    )
    # The client's id for this scan: retrying a scan with the same id never counts it twice.
    uid = models.UUIDField(_("id del escaneo"), default=uuid.uuid4, unique=True, editable=False)
    code = models.CharField(_("código"), max_length=CODE_MAX_LENGTH)
    scanned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="scans",
        verbose_name=_("escaneado por"),
    )
    scanned_by_name = models.CharField(_("escaneado por (nombre)"), max_length=150)
    scanned_at = models.DateTimeField(_("escaneado el"))
    created_at = models.DateTimeField(_("registrado el"), auto_now_add=True)
    # The code as compared with the expected list: trimmed and upper-cased.
    code_key = models.CharField(
        _("código normalizado"), max_length=CODE_KEY_MAX_LENGTH, default="", editable=False
    )
    match = models.CharField(_("coincidencia"), max_length=12, choices=ScanMatch, blank=True, default="")

    class Meta:
        verbose_name = _("escaneo")
        verbose_name_plural = _("escaneos")
        ordering = ["-scanned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["inventory", "code"], name="scan_code_once_per_inventory"),
        ]
        indexes = [models.Index(fields=["inventory", "code_key"], name="scan_code_key_idx")]

    def __str__(self):
        return self.code


class RemovedScan(models.Model):
    """A scan removed from its inventory: its id stays taken, so a late retry of its add is refused."""

    # What a removed scan keeps of its scan (and its inventory), under the scan's names.
    SCAN_FIELDS = ("uid", "code", "code_key", "scanned_by_id", "scanned_by_name", "scanned_at", "match")

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="removed_scans", verbose_name=_("inventario")
    )
    uid = models.UUIDField(_("id del escaneo"), unique=True, editable=False)
    code = models.CharField(_("código"), max_length=CODE_MAX_LENGTH)
    code_key = models.CharField(_("código normalizado"), max_length=CODE_KEY_MAX_LENGTH, editable=False)
    scanned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("escaneado por"),
    )
    scanned_by_name = models.CharField(_("escaneado por (nombre)"), max_length=150)
    scanned_at = models.DateTimeField(_("escaneado el"))
    match = models.CharField(_("coincidencia"), max_length=12, choices=ScanMatch, blank=True, default="")
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("eliminado por"),
    )
    removed_by_name = models.CharField(_("eliminado por (nombre)"), max_length=150, blank=True)
    removed_at = models.DateTimeField(_("eliminado el"), default=timezone.now)

    class Meta:
        verbose_name = _("escaneo eliminado")
        verbose_name_plural = _("escaneos eliminados")
        ordering = ["inventory", "-removed_at"]

    def __str__(self):
        return f"{self.code} ({self.uid})"

    @classmethod
    def of(cls, scan: Scan, *, removed_by, removed_by_name: str) -> "RemovedScan":
        """The scan's tombstone (unsaved): the scan as it was, who removed it, and when (now)."""
        return cls(
            inventory=scan.inventory,
            **{name: getattr(scan, name) for name in cls.SCAN_FIELDS},
            removed_by=removed_by,
            removed_by_name=removed_by_name,
            removed_at=timezone.now(),
        )

    def as_scan(self) -> Scan:
        """The scan as it was before its removal (unsaved), to answer a retry with."""
        return Scan(inventory=self.inventory, **{name: getattr(self, name) for name in self.SCAN_FIELDS})


class InventoryEvent(models.Model):
    """The inventory's change log: one row per announced change, numbered without gaps.

    `facts` are the domain's facts of the change (inventory.events), not a message of the live
    protocol: realtime renders them when it publishes the change and when it replays the log.
    """

    class Type(models.TextChoices):
        SCAN_ADDED = "scan_added"
        SCAN_REMOVED = "scan_removed"
        INVENTORY_COMPLETED = "inventory_completed"

    inventory = models.ForeignKey(Inventory, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32, choices=Type)
    facts = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["inventory", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["inventory", "seq"], name="event_seq_once_per_inventory"),
        ]

    def __str__(self):
        return f"{self.inventory_id}#{self.seq} {self.type}"

    @property
    def kind(self) -> str:
        """The event's kind, named as on `inventory.events.Event`."""
        return self.type


class ExpectedVehicle(models.Model):
    """A vehicle the agency's books say it holds: one line of the imported expected list."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="expected_vehicles", verbose_name=_("inventario")
    )
    code = models.CharField(_("VIN o código"), max_length=CODE_MAX_LENGTH)
    code_key = models.CharField(_("código normalizado"), max_length=CODE_KEY_MAX_LENGTH, editable=False)
    stock_number = models.CharField(_("número de stock"), max_length=64, blank=True)
    description = models.CharField(_("descripción"), max_length=255, blank=True)
    make = models.CharField(_("marca"), max_length=80, blank=True)
    model = models.CharField(_("modelo"), max_length=80, blank=True)
    year = models.PositiveSmallIntegerField(_("año"), null=True, blank=True)
    color = models.CharField(_("color"), max_length=60, blank=True)
    location = models.CharField(_("ubicación"), max_length=120, blank=True)
    line = models.PositiveIntegerField(_("línea del archivo"), default=0)
    created_at = models.DateTimeField(_("importado"), auto_now_add=True)

    class Meta:
        verbose_name = _("vehículo esperado")
        verbose_name_plural = _("vehículos esperados")
        ordering = ["inventory", "line", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["inventory", "code_key"], name="expected_code_once_per_inventory"
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def label(self) -> str:
        """The description, or make, model, year and colour when the books give no description."""
        if self.description:
            return self.description
        parts = [self.make, self.model, str(self.year or ""), self.color]
        return " ".join(part for part in parts if part)


class VarianceReason(models.TextChoices):
    SOLD_NOT_DELIVERED = "sold_not_delivered", _("Vendido no entregado")
    IN_TRANSIT = "in_transit", _("En tránsito")
    OTHER_BRANCH = "other_branch", _("En otra sucursal")
    DEMO_OR_LOANER = "demo_or_loaner", _("Demo o préstamo")
    MISREAD = "misread", _("Error de lectura")
    OTHER = "other", _("Otro")


class VarianceExplanation(models.Model):
    """A manager's reason for a variance: a missing or unexpected code in one inventory."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="explanations", verbose_name=_("inventario")
    )
    code = models.CharField(_("código"), max_length=CODE_MAX_LENGTH)
    # Keyed like the matching, so a reason outlives a re-import or a rescan in another case.
    code_key = models.CharField(_("código normalizado"), max_length=CODE_KEY_MAX_LENGTH, editable=False)
    reason = models.CharField(_("motivo"), max_length=32, choices=VarianceReason)
    note = models.TextField(_("nota"), max_length=500, blank=True)
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("explicado por"),
    )
    explained_by_name = models.CharField(_("explicado por (nombre)"), max_length=150, blank=True)
    explained_at = models.DateTimeField(_("explicado el"))

    class Meta:
        verbose_name = _("explicación de diferencia")
        verbose_name_plural = _("explicaciones de diferencias")
        ordering = ["inventory", "code_key"]
        constraints = [
            models.UniqueConstraint(fields=["inventory", "code_key"], name="explanation_once_per_code"),
        ]

    def __str__(self):
        return f"{self.code}: {self.get_reason_display()}"


class DuplicateScanAttempt(models.Model):
    """A scan refused because its code was already counted: kept for the variance report."""

    inventory = models.ForeignKey(
        Inventory, on_delete=models.CASCADE, related_name="duplicate_attempts", verbose_name=_("inventario")
    )
    code = models.CharField(_("código"), max_length=CODE_MAX_LENGTH)
    attempted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("intentado por"),
    )
    attempted_by_name = models.CharField(_("intentado por (nombre)"), max_length=150, blank=True)
    first_scanned_by_name = models.CharField(_("escaneado antes por"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("fecha"), auto_now_add=True)

    class Meta:
        verbose_name = _("escaneo duplicado rechazado")
        verbose_name_plural = _("escaneos duplicados rechazados")
        ordering = ["inventory", "created_at"]

    def __str__(self):
        return f"{self.code} ({self.attempted_by_name})"

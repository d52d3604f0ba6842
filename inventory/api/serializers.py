"""Input validation and output shapes for the REST API."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inventory import periods, selectors
from inventory.exceptions import InvalidInput
from inventory.formats import timestamp
from inventory.models import CODE_MAX_LENGTH, Agency, Inventory, ScanMatch

# An agency is named by its name or its slug: the longer of the two.
AGENCY_MAX_LENGTH = max(Agency._meta.get_field(name).max_length for name in ("name", "slug"))


@extend_schema_field(OpenApiTypes.STR)
class MonthField(serializers.Field):
    """A month as 10, "10" or "03"."""

    def to_internal_value(self, data):
        try:
            return periods.parse_month(data)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return str(value)


@extend_schema_field(OpenApiTypes.INT)
class YearField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return periods.parse_year(data)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.Field):
    """A moment as the socket writes it: ISO 8601 UTC with milliseconds and `Z` (null for none)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return timestamp(value) if value is not None else None


class CodeField(serializers.CharField):
    """A scanned code: at most the model's CODE_MAX_LENGTH characters once trimmed, as the services say."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)  # the services trim and check it
        super().__init__(**kwargs)
        self.max_length = CODE_MAX_LENGTH  # documented; checked below on the trimmed code

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value.strip()) > CODE_MAX_LENGTH:
            raise serializers.ValidationError(
                _("El código no puede tener más de %(max)s caracteres.") % {"max": CODE_MAX_LENGTH}
            )
        return value


class RoomInput(serializers.Serializer):
    agency = serializers.CharField(max_length=AGENCY_MAX_LENGTH, help_text=_("Nombre o slug de la agencia."))
    month = MonthField()
    year = YearField()


class ScanDataInput(serializers.Serializer):
    code = CodeField(required=False)
    timestamp = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    id = serializers.UUIDField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True, help_text=_("Se ignora."))


class SaveScanInput(RoomInput):
    """Protocol v1's `scan_added` data; `code` may also be given at the top level."""

    scanData = ScanDataInput(required=False)  # noqa: N815 - protocol v1's name
    code = CodeField(required=False)
    id = serializers.UUIDField(required=False, allow_null=True)
    userId = serializers.CharField(
        required=False, help_text=_("Se ignora: la identidad viene de la autenticación.")
    )  # noqa: N815
    userName = serializers.CharField(
        required=False, help_text=_("Se ignora: la identidad viene de la autenticación.")
    )  # noqa: N815

    def validate(self, attrs):
        scan_data = attrs.get("scanData") or {}
        code = scan_data.get("code", attrs.get("code"))
        if code is None:
            raise serializers.ValidationError({"code": [_("Indica el código escaneado.")]})
        attrs["code"] = code
        attrs["scan_id"] = scan_data.get("id") or attrs.get("id")
        attrs["scanned_at"] = scan_data.get("timestamp")
        return attrs


class DeleteScanQuery(serializers.Serializer):
    """A removal in flat form (query string or body): the agency, the code or the scan's id."""

    agency = serializers.CharField(max_length=AGENCY_MAX_LENGTH, help_text=_("Nombre o slug de la agencia."))
    month = MonthField(required=False)
    year = YearField(required=False)
    code = CodeField(required=False)
    id = serializers.UUIDField(
        required=False, allow_null=True, help_text=_("El id del escaneo: solo se quita ese escaneo.")
    )

    def validate(self, attrs):
        if ("month" in attrs) != ("year" in attrs):
            raise serializers.ValidationError(_("Indica el mes y el año juntos, o ninguno."))
        scan_data = attrs.pop("scanData", None) or {}
        attrs["code"] = scan_data.get("code", attrs.get("code"))
        attrs["scan_id"] = scan_data.get("id") or attrs.get("id")
        if attrs["code"] is None and attrs["scan_id"] is None:
            raise serializers.ValidationError(
                {"code": [_("Indica el código escaneado o el id del escaneo.")]}
            )
        return attrs


class DeleteScanInput(DeleteScanQuery):
    """Protocol v1's `scan_removed` data (or the whole message); `code` and `id` may also be top-level."""

    scanData = ScanDataInput(required=False)  # noqa: N815 - protocol v1's name
    userId = serializers.CharField(
        required=False, help_text=_("Se ignora: la identidad viene de la autenticación.")
    )  # noqa: N815
    userName = serializers.CharField(
        required=False, help_text=_("Se ignora: la identidad viene de la autenticación.")
    )  # noqa: N815


class MatchField(serializers.ChoiceField):
    """How a scan compares with the expected list; null while the inventory has none (as on the socket)."""

    def __init__(self, **kwargs):
        super().__init__(choices=ScanMatch.choices, allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return value or None


class ScanSerializer(serializers.Serializer):
    """A scan in the one shape REST and the socket share (selectors.scan_data), and its inventory."""

    code = serializers.CharField(read_only=True)
    user = serializers.CharField(read_only=True, help_text=_("Quién lo escaneó (nombre visible)."))
    timestamp = TimestampField(help_text=_("Cuándo se escaneó."))
    id = serializers.UUIDField(
        read_only=True, help_text=_("El id del escaneo (la clave de idempotencia del cliente).")
    )
    userId = serializers.CharField(read_only=True, allow_null=True)  # noqa: N815
    match = MatchField()
    # A string, as the protocol carries `inventoryId` (and `userId`).
    inventoryId = serializers.CharField(read_only=True)  # noqa: N815

    def to_representation(self, scan):
        return {**selectors.scan_data(scan), "inventoryId": str(scan.inventory_id)}


class AgencySerializer(serializers.ModelSerializer):
    members = serializers.SlugRelatedField(
        many=True,
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
    )

    isActive = serializers.BooleanField(source="is_active", required=False)  # noqa: N815
    createdAt = TimestampField(source="created_at")  # noqa: N815

    class Meta:
        model = Agency
        fields = ["id", "name", "slug", "isActive", "members", "createdAt"]
        extra_kwargs = {"slug": {"required": False}}

    def validate_name(self, value):
        name = value.strip()
        if not name:
            raise serializers.ValidationError(_("El nombre no puede estar vacío."))
        taken = Agency.objects.annotate(lname=Lower("name")).filter(lname=name.lower())
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(_("Ya existe una agencia con ese nombre."))
        return name

    def validate(self, attrs):
        """No name may be another agency's slug, nor a slug another's name (the model's own rule)."""
        agency = Agency(pk=self.instance.pk if self.instance else None)
        agency.name = attrs.get("name", self.instance.name if self.instance else "")
        agency.slug = attrs.get("slug", self.instance.slug if self.instance else "")
        try:
            agency.validate_unambiguous()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class InventorySerializer(serializers.ModelSerializer):
    agency = serializers.CharField(source="agency.name", read_only=True)
    agencySlug = serializers.CharField(source="agency.slug", read_only=True)  # noqa: N815
    month = MonthField(read_only=True)
    room = serializers.CharField(source="room_key", read_only=True)
    scanCount = serializers.IntegerField(source="scan_count", read_only=True)  # noqa: N815
    createdAt = TimestampField(source="created_at")  # noqa: N815
    completedAt = TimestampField(source="completed_at", allow_null=True)  # noqa: N815
    completedBy = serializers.CharField(source="completed_by_name", read_only=True)  # noqa: N815
    lastSeq = serializers.IntegerField(source="last_seq", read_only=True)  # noqa: N815

    class Meta:
        model = Inventory
        fields = [
            "id",
            "agency",
            "agencySlug",
            "month",
            "year",
            "room",
            "status",
            "scanCount",
            "createdAt",
            "completedAt",
            "completedBy",
            "lastSeq",
        ]
        read_only_fields = fields


class TokenInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()

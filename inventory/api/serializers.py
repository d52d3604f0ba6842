"""Input validation and output shapes for the REST API."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inventory import rooms
from inventory.exceptions import InvalidInput
from inventory.models import Agency, Inventory, Scan, ScanMatch
from realtime import protocol


@extend_schema_field(OpenApiTypes.STR)
class MonthField(serializers.Field):
    """A month as 10, "10" or "03"."""

    def to_internal_value(self, data):
        try:
            return rooms.parse_month(data)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return str(value)


@extend_schema_field(OpenApiTypes.INT)
class YearField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return rooms.parse_year(data)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value):
        return value


class RoomInput(serializers.Serializer):
    agency = serializers.CharField(max_length=140, help_text=_("Nombre o slug de la agencia."))
    month = MonthField()
    year = YearField()


class ScanDataInput(serializers.Serializer):
    code = serializers.CharField(max_length=200, trim_whitespace=False, required=False)
    timestamp = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    id = serializers.UUIDField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True, help_text=_("Se ignora."))


class SaveScanInput(RoomInput):
    """The seed's `scan_added` data; `code` may also be given at the top level."""

    scanData = ScanDataInput(required=False)  # noqa: N815 - the seed's name
    code = serializers.CharField(max_length=200, trim_whitespace=False, required=False)
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

    agency = serializers.CharField(max_length=140, help_text=_("Nombre o slug de la agencia."))
    month = MonthField(required=False)
    year = YearField(required=False)
    code = serializers.CharField(max_length=200, trim_whitespace=False, required=False)
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
    """The seed's `scan_removed` data (or the whole message); `code` and `id` may also be top-level."""

    scanData = ScanDataInput(required=False)  # noqa: N815 - the seed's name
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


class ScanSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uid", read_only=True)
    user = serializers.CharField(source="scanned_by_name", read_only=True)
    userId = serializers.SerializerMethodField()  # noqa: N815
    timestamp = serializers.SerializerMethodField()
    # A string, as the protocol carries `inventoryId` (and `userId`).
    inventoryId = serializers.CharField(source="inventory_id", read_only=True)  # noqa: N815
    match = MatchField()

    class Meta:
        model = Scan
        fields = ["id", "code", "user", "userId", "timestamp", "inventoryId", "match"]

    def get_userId(self, scan) -> str | None:  # noqa: N802
        return str(scan.scanned_by_id) if scan.scanned_by_id else None

    def get_timestamp(self, scan) -> str:
        return protocol.timestamp(scan.scanned_at)


class AgencySerializer(serializers.ModelSerializer):
    members = serializers.SlugRelatedField(
        many=True,
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
    )

    class Meta:
        model = Agency
        fields = ["id", "name", "slug", "is_active", "members", "created_at"]
        read_only_fields = ["created_at"]
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
    agency_slug = serializers.CharField(source="agency.slug", read_only=True)
    room = serializers.CharField(source="room_key", read_only=True)
    scan_count = serializers.IntegerField(read_only=True)
    completed_by = serializers.CharField(source="completed_by_name", read_only=True)

    class Meta:
        model = Inventory
        fields = [
            "id",
            "agency",
            "agency_slug",
            "month",
            "year",
            "room",
            "status",
            "scan_count",
            "created_at",
            "completed_at",
            "completed_by",
            "last_seq",
        ]
        read_only_fields = fields


class TokenInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()

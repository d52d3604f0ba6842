"""Input and output shapes of the reconciliation endpoints (inventory.api.reconciliation)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from inventory.models import Inventory, VarianceReason
from inventory.reconciliation import selectors
from inventory.reconciliation.services import NOTE_MAX_LENGTH

from .serializers import CodeField, MonthField, ScanSerializer, TimestampField


class ExpectedVehicleDataOutput(serializers.Serializer):
    """An expected vehicle as the selectors' dicts hold it (variances, the report)."""

    code = serializers.CharField()
    stockNumber = serializers.CharField()  # noqa: N815
    description = serializers.CharField()
    make = serializers.CharField()
    model = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    color = serializers.CharField()
    location = serializers.CharField()
    line = serializers.IntegerField()


class ExpectedVehicleOutput(ExpectedVehicleDataOutput):
    """The same vehicle read from its model row, with whether and by whom it was found."""

    stockNumber = serializers.CharField(source="stock_number")  # noqa: N815
    description = serializers.CharField(source="label")
    state = serializers.SerializerMethodField()
    foundBy = serializers.CharField(source="found_by", allow_null=True)  # noqa: N815
    foundAt = TimestampField(source="found_at", allow_null=True)  # noqa: N815
    reason = serializers.CharField(allow_null=True)
    reasonLabel = serializers.SerializerMethodField()  # noqa: N815
    note = serializers.CharField(allow_null=True)

    def get_state(self, vehicle) -> str:
        return selectors.FOUND if vehicle.found else selectors.MISSING

    def get_reasonLabel(self, vehicle) -> str | None:  # noqa: N802
        return str(VarianceReason(vehicle.reason).label) if vehicle.reason else None


PAGINATED_EXPECTED_LIST = inline_serializer(
    "PaginatedExpectedVehicleList",
    fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": ExpectedVehicleOutput(many=True),
    },
)


class FiguresOutput(serializers.Serializer):
    """The room's figures, as the socket's `progress` carries them."""

    expected = serializers.IntegerField()
    found = serializers.IntegerField()
    missing = serializers.IntegerField()
    unexpected = serializers.IntegerField()
    flagged = serializers.IntegerField()
    counted = serializers.IntegerField()


class ColumnsOutput(serializers.Serializer):
    """Each field read from the file, with the header it was read from (named as the list names it)."""

    code = serializers.CharField(required=False)
    stockNumber = serializers.CharField(source="stock_number", required=False)  # noqa: N815
    description = serializers.CharField(required=False)
    make = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    year = serializers.CharField(required=False)
    color = serializers.CharField(required=False)
    location = serializers.CharField(required=False)


class ImportOutput(serializers.Serializer):
    imported = serializers.IntegerField()
    replaced = serializers.IntegerField()
    rematched = serializers.IntegerField()
    progress = FiguresOutput()
    columns = ColumnsOutput()
    ignored = serializers.ListField(child=serializers.CharField())


class ImportInput(serializers.Serializer):
    file = serializers.FileField(help_text=gettext_lazy("CSV o XLSX con una fila de encabezado."))


class ExpectedClearedOutput(serializers.Serializer):
    removed = serializers.IntegerField(help_text=gettext_lazy("Cuántos vehículos tenía la lista."))
    progress = FiguresOutput()


class LocationOutput(serializers.Serializer):
    location = serializers.CharField()
    expected = serializers.IntegerField()
    missing = serializers.IntegerField()


class ReasonOutput(serializers.Serializer):
    value = serializers.CharField(help_text=gettext_lazy("Un motivo de diferencia."))
    label = serializers.CharField()


class ProgressOutput(serializers.Serializer):
    inventoryId = serializers.CharField()  # noqa: N815
    status = serializers.ChoiceField(Inventory.Status.choices)
    progress = FiguresOutput()
    blindCount = serializers.BooleanField()  # noqa: N815
    canSeeExpected = serializers.BooleanField()  # noqa: N815
    locations = LocationOutput(
        many=True, allow_null=True, help_text=gettext_lazy("Null con conteo a ciegas.")
    )
    duplicatesRefused = serializers.IntegerField()  # noqa: N815
    isManager = serializers.BooleanField()  # noqa: N815
    reasons = ReasonOutput(many=True)


class ExplanationOutput(serializers.Serializer):
    reason = serializers.ChoiceField(VarianceReason.choices, allow_null=True)
    reasonLabel = serializers.CharField(allow_null=True)  # noqa: N815
    note = serializers.CharField(allow_blank=True)
    explainedBy = serializers.CharField(allow_null=True)  # noqa: N815


class MissingVarianceOutput(ExpectedVehicleDataOutput, ExplanationOutput):
    """A vehicle of the expected list never scanned, with its explanation."""

    kind = serializers.CharField()  # missing
    explainedAt = serializers.CharField(allow_null=True, required=False)  # noqa: N815


class ScanVarianceOutput(ScanSerializer, ExplanationOutput):
    """An unexpected or flagged scan (the one scan shape), with its explanation."""

    inventoryId = None  # noqa: N815
    kind = serializers.CharField()  # unexpected or flagged
    explainedAt = serializers.CharField(allow_null=True, required=False)  # noqa: N815


class VariancesOutput(serializers.Serializer):
    reasons = ReasonOutput(many=True)
    expectedHidden = serializers.BooleanField()  # noqa: N815
    missing = MissingVarianceOutput(
        many=True, allow_null=True, help_text=gettext_lazy("Null con conteo a ciegas.")
    )
    unexpected = ScanVarianceOutput(many=True)


class VarianceInput(serializers.Serializer):
    code = CodeField()
    reason = serializers.ChoiceField(
        choices=VarianceReason.choices,
        allow_null=True,
        allow_blank=True,
        help_text=gettext_lazy("Vacío o null borra la explicación."),
    )
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, allow_blank=True, required=False, default="")


class ExplainedOutput(ExplanationOutput):
    code = serializers.CharField()
    explainedAt = serializers.CharField(allow_null=True)  # noqa: N815


class VarianceExplainedOutput(serializers.Serializer):
    results = ExplainedOutput(many=True)


class ReportInventoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    agency = serializers.CharField()
    month = MonthField()
    year = serializers.IntegerField()
    room = serializers.CharField()
    status = serializers.ChoiceField(Inventory.Status.choices)
    openedAt = serializers.CharField()  # noqa: N815
    completedAt = serializers.CharField(allow_null=True)  # noqa: N815
    completedBy = serializers.CharField(allow_null=True)  # noqa: N815


class ReportFiguresOutput(FiguresOutput):
    duplicatesRefused = serializers.IntegerField()  # noqa: N815
    explained = serializers.IntegerField()
    unexplained = serializers.IntegerField()


class CounterOutput(serializers.Serializer):
    """Who counted how many."""

    userId = serializers.CharField(allow_null=True)  # noqa: N815
    userName = serializers.CharField()  # noqa: N815
    scans = serializers.IntegerField()
    found = serializers.IntegerField()
    unexpected = serializers.IntegerField()
    flagged = serializers.IntegerField()
    duplicatesRefused = serializers.IntegerField()  # noqa: N815


class ReasonCountOutput(ReasonOutput):
    count = serializers.IntegerField()


class TimelinePointOutput(serializers.Serializer):
    time = serializers.CharField()
    counted = serializers.IntegerField()
    found = serializers.IntegerField()


class FoundVehicleOutput(ExpectedVehicleDataOutput):
    """A vehicle of the expected list that was scanned: who scanned it first and when."""

    kind = serializers.CharField()  # found
    user = serializers.CharField(allow_null=True)
    timestamp = serializers.CharField(allow_null=True)


class ReportOutput(serializers.Serializer):
    inventory = ReportInventoryOutput()
    startedAt = serializers.CharField(allow_null=True)  # noqa: N815
    lastScanAt = serializers.CharField(allow_null=True)  # noqa: N815
    endedAt = serializers.CharField(allow_null=True)  # noqa: N815
    durationSeconds = serializers.IntegerField(allow_null=True)  # noqa: N815
    figures = ReportFiguresOutput()
    hasExpectedList = serializers.BooleanField()  # noqa: N815
    blindCount = serializers.BooleanField()  # noqa: N815
    expectedHidden = serializers.BooleanField()  # noqa: N815
    counters = CounterOutput(many=True)
    reasons = ReasonCountOutput(many=True)
    timeline = TimelinePointOutput(many=True)
    missing = MissingVarianceOutput(
        many=True, allow_null=True, help_text=gettext_lazy("Null con conteo a ciegas.")
    )
    unexpected = ScanVarianceOutput(many=True)
    found = FoundVehicleOutput(
        many=True, allow_null=True, help_text=gettext_lazy("Null con conteo a ciegas.")
    )
    generatedAt = serializers.CharField()  # noqa: N815

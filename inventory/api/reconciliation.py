"""Reconciliation endpoints: the expected list, live progress, variance reasons and the report."""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from inventory.exceptions import InventoryError, InventoryNotFound
from inventory.models import Inventory
from inventory.reconciliation import access, exports, selectors, services
from inventory.reconciliation.errors import ExpectedListHidden, ImportRejected, NotAManager, RowError
from inventory.reconciliation.report import detail_items, report_of, report_summary

from . import reconciliation_serializers as s
from .exceptions import ResilientScopedRateThrottle as ScopedRateThrottle
from .parsers import JSONParser


def inventory_for(request, pk) -> Inventory:
    """The inventory, if the user may see its reconciliation: else 404, as if it did not exist."""
    inventory = Inventory.objects.select_related("agency").filter(pk=pk).first()
    if inventory is None or not access.can_view(request.user, inventory.agency):
        raise InventoryNotFound(_("No existe el inventario %(id)s.") % {"id": pk})
    return inventory


class ExpectedListView(APIView):
    """The expected list: GET lists it with found/missing state; POST replaces it; DELETE clears it."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    def get_throttles(self):
        return super().get_throttles() if self.request.method != "GET" else []

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["found", "missing"]),
            OpenApiParameter("location", str, description="Exact location, any case."),
            OpenApiParameter("search", str, description="Part of the code, stock number or description."),
            OpenApiParameter("limit", int, description="How many vehicles per page (default 100)."),
            OpenApiParameter("offset", int, description="Where the page starts."),
        ],
        responses={200: s.PAGINATED_EXPECTED_LIST},
    )
    def get(self, request, pk):
        inventory = inventory_for(request, pk)
        if not access.can_see_expected(request.user, inventory.agency):
            raise ExpectedListHidden(inventory.agency)
        params = request.query_params
        vehicles = selectors.expected_list(
            inventory,
            state=params.get("state") or None,
            location=params.get("location"),
            search=params.get("search"),
        )
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(vehicles, request, view=self)
        return paginator.get_paginated_response(s.ExpectedVehicleOutput(page, many=True).data)

    @extend_schema(request={"multipart/form-data": s.ImportInput}, responses={201: s.ImportOutput})
    def post(self, request, pk):
        inventory = inventory_for(request, pk)
        upload = request.FILES.get("file")
        if upload is None:
            raise ImportRejected([RowError(None, _("Adjunta el archivo CSV o XLSX en el campo «file»."))])
        result = services.expected_import_file(
            inventory=inventory, upload=upload, filename=upload.name or "", user=request.user
        )
        return Response(s.ImportOutput(result.as_data()).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.ExpectedClearedOutput})
    def delete(self, request, pk):
        inventory = inventory_for(request, pk)
        removed = services.expected_clear(inventory=inventory, user=request.user)
        return Response({"removed": removed, "progress": selectors.progress_of(inventory)})


class ProgressView(APIView):
    """The room's figures now, and what this user may see and do (the live page's initial state)."""

    @extend_schema(responses={200: s.ProgressOutput})
    def get(self, request, pk):
        inventory = inventory_for(request, pk)
        agency = inventory.agency
        can_see = access.can_see_expected(request.user, agency)
        return Response(
            {
                "inventoryId": str(inventory.pk),
                "status": inventory.status,
                **selectors.progress_state(inventory, can_see_expected=can_see),
                "duplicatesRefused": selectors.duplicates_refused(inventory),
                "isManager": access.is_manager(request.user, agency),
                "reasons": selectors.reasons(),
            }
        )


class VarianceView(APIView):
    """Variances (missing and unexpected codes) with their reasons; PUT explains them (managers)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    def get_throttles(self):
        return super().get_throttles() if self.request.method != "GET" else []

    @extend_schema(responses={200: s.VariancesOutput})
    def get(self, request, pk):
        inventory = inventory_for(request, pk)
        can_see = access.can_see_expected(request.user, inventory.agency)
        variances = selectors.variances_of(inventory, include_missing=can_see)
        return Response({"reasons": selectors.reasons(), "expectedHidden": not can_see, **variances})

    @extend_schema(request=s.VarianceInput(many=True), responses={200: s.VarianceExplainedOutput})
    def put(self, request, pk):
        """One `{code, reason, note}` or a list of them: all are saved, or none."""
        inventory = inventory_for(request, pk)
        if not access.is_manager(request.user, inventory.agency):
            raise NotAManager(inventory.agency)
        many = isinstance(request.data, list)
        serializer = s.VarianceInput(data=request.data, many=many)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data if many else [serializer.validated_data]
        results = []
        with transaction.atomic():
            for index, item in enumerate(items):
                try:
                    explanation = services.variance_explain(
                        inventory=inventory,
                        user=request.user,
                        code=item["code"],
                        reason=item["reason"],
                        note=item.get("note", ""),
                    )
                except InventoryError as exc:
                    transaction.set_rollback(True)
                    return Response(
                        {
                            "detail": exc.message,
                            "code": exc.code,
                            **exc.details,
                            "item": index,
                            "itemCode": item["code"],
                        },
                        status=exc.status,
                    )
                results.append(
                    {"code": item["code"].strip(), **selectors.explanation_data(explanation)},
                )
        return Response({"results": results})


class DownloadRenderer(BaseRenderer):
    """Chosen by content negotiation (`.csv`, `?format=`, Accept); the view streams the body itself."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        raise NotImplementedError("ReportView streams downloads")


class CSVRenderer(DownloadRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class XLSXRenderer(DownloadRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"
    charset = None
    render_style = "binary"


class ReportView(APIView):
    """The variance report as JSON, or a CSV / XLSX download (`report.csv`, `report.xlsx` or `?format=`)."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer, XLSXRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv", "xlsx"])],
        responses={
            (200, "application/json"): s.ReportOutput,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSXRenderer.media_type): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, pk, format=None):  # noqa: A002 - DRF's name for the suffix
        inventory = inventory_for(request, pk)
        kind = request.accepted_renderer.format
        if kind not in ("csv", "xlsx"):
            return Response(report_of(inventory, user=request.user))
        summary = report_summary(inventory, user=request.user)
        items = detail_items(inventory, show_expected=not summary["expectedHidden"])
        if kind == "csv":
            chunks = exports.report_csv(summary, items)
        else:
            chunks = exports.file_chunks(exports.report_xlsx(summary, items))
        renderer = request.accepted_renderer
        response = StreamingHttpResponse(
            exports.streamed(chunks, request),
            content_type=f"{renderer.media_type}; charset={renderer.charset}"
            if renderer.charset
            else renderer.media_type,
        )
        name = f"diferencias-{inventory.agency.slug}-{inventory.year}-{inventory.month:02d}.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def options(self, request, *args, **kwargs):
        # The description of the endpoint is JSON whatever download was asked for.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
        return super().options(request, *args, **kwargs)

    def handle_exception(self, exc):
        # Errors are JSON whatever download was asked for.
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

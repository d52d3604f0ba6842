"""REST endpoints: validate the input, call one service or selector, serialize the output."""

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import rooms, selectors, services
from inventory.accounts import lockout, tokens
from inventory.exceptions import InventoryNotFound
from inventory.models import Agency, Inventory
from realtime import metrics, presence

from . import serializers as s
from .exceptions import ResilientScopedRateThrottle as ScopedRateThrottle


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


class ObtainTokenView(APIView):
    """Exchange a username and password for an API token; DELETE revokes the token used."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=s.TokenInput, responses={200: s.TokenOutput})
    def post(self, request):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            if lockout.is_locked_out(request):
                raise lockout.LoginLockedOut(request)
            raise serializers.ValidationError(serializer.errors)
        token = tokens.token_issue(user=serializer.validated_data["user"])
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        """Revoke the token used to authenticate this request (and any other of its user)."""
        tokens.token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_authenticators(self):
        if self.request is not None and self.request.method == "DELETE":
            return [tokens.ExpiringTokenAuthentication()]
        return super().get_authenticators()

    def get_permissions(self):
        if self.request is not None and self.request.method == "DELETE":
            return [permissions.IsAuthenticated()]
        return super().get_permissions()


class SaveScanView(APIView):
    """Count a scan in a room (seed: POST /api/inventory/save-scan); broadcasts `scan_added`."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    @extend_schema(
        request=s.SaveScanInput,
        responses={201: s.ScanSerializer, 200: s.ScanSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="A UUID naming this scan; retries with the same key store it once.",
            )
        ],
    )
    def post(self, request):
        data = request.data.get("data", request.data) if isinstance(request.data, dict) else request.data
        serializer = s.SaveScanInput(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        room = rooms.room_resolve(
            request.user, agency=values["agency"], month=values["month"], year=values["year"]
        )
        inventory = services.inventory_get_or_open(room=room)
        result = services.scan_record(
            inventory=inventory,
            user=request.user,
            code=values["code"],
            scanned_at=values["scanned_at"],
            scan_id=values["scan_id"] or request.headers.get("Idempotency-Key"),
        )
        return Response(
            s.ScanSerializer(result.scan).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class FinishSessionView(APIView):
    """Complete a room's inventory (seed: POST /api/inventory/finish-session)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    @extend_schema(request=s.RoomInput, responses={200: s.InventorySerializer})
    def post(self, request):
        serializer = s.RoomInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = rooms.room_resolve(request.user, **serializer.validated_data)
        inventory = selectors.inventory_find(room)
        if inventory is None:
            raise InventoryNotFound(_("No hay inventario para %(room)s.") % {"room": room.key})
        inventory = services.inventory_complete(inventory=inventory, user=request.user)
        return Response(s.InventorySerializer(selectors.inventory_with_count(inventory)).data)


class DeleteScannedEntryView(APIView):
    """Remove a scan (seed: DELETE /api/inventory/delete-scanned-entry); broadcasts `scan_removed`.

    Without month and year it acts on the agency's open inventory that counted the code.
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    @extend_schema(
        request=s.OptionalRoomInput,
        parameters=[s.OptionalRoomInput],
        responses={200: s.ScanSerializer},
    )
    def delete(self, request):
        data = request.data if request.data else request.query_params
        serializer = s.OptionalRoomInput(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        agency = rooms.agency_for_user(request.user, values["agency"])
        if "month" in values:
            room = rooms.Room(agency=agency, month=values["month"], year=values["year"])
            inventory = selectors.inventory_find(room)
            if inventory is None:
                raise InventoryNotFound(_("No hay inventario para %(room)s.") % {"room": room.key})
        else:
            code = services.clean_code(values["code"])
            inventory = selectors.open_inventory_holding(agency, code)
        scan = services.scan_remove(inventory=inventory, user=request.user, code=values["code"])
        return Response(s.ScanSerializer(scan).data)


class RoomInfoView(APIView):
    """Who is in a room right now, across every server instance."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, agency, month, year):
        room = rooms.room_resolve(request.user, agency=agency, month=month, year=year)
        inventory = selectors.inventory_find(room)
        return Response(presence.room_info(room, inventory))


class MetricsView(APIView):
    """Realtime metrics aggregated across every server instance (staff only)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(metrics.aggregate())


class InventoryFilter(filters.FilterSet):
    agency = filters.CharFilter(method="filter_agency", help_text="Agency name or slug.")

    class Meta:
        model = Inventory
        fields = ["agency", "month", "year", "status"]

    def filter_agency(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(Q(agency__name__iexact=value) | Q(agency__slug=value))


class AgencyViewSet(viewsets.ModelViewSet):
    """Agencies: members read theirs; staff create and edit them and their members."""

    serializer_class = s.AgencySerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffOrReadOnly]
    lookup_field = "slug"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Agency.objects.none()
        return selectors.agencies_visible_to(self.request.user).prefetch_related("members")

    def perform_destroy(self, instance: Agency):
        if instance.inventories.exists():
            raise serializers.ValidationError(
                {"detail": _("La agencia tiene inventarios; desactívala en lugar de borrarla.")}
            )
        instance.delete()


class InventoryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Inventories the user may see; POST opens (or returns) a room's inventory."""

    serializer_class = s.InventorySerializer
    filterset_class = InventoryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Inventory.objects.none()
        return selectors.inventories_visible_to(self.request.user)

    @extend_schema(request=s.RoomInput, responses={201: s.InventorySerializer, 200: s.InventorySerializer})
    def create(self, request):
        serializer = s.RoomInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = rooms.room_resolve(request.user, **serializer.validated_data)
        existed = selectors.inventory_find(room) is not None
        inventory = services.inventory_get_or_open(room=room)
        return Response(
            s.InventorySerializer(selectors.inventory_with_count(inventory)).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(responses={200: s.ScanSerializer(many=True)})
    @action(detail=True)
    def scans(self, request, pk=None):
        inventory = self.get_object()
        page = self.paginate_queryset(selectors.scans_of(inventory))
        return self.get_paginated_response(s.ScanSerializer(page, many=True).data)


class PrometheusMetricsView(APIView):
    """The realtime metrics in Prometheus text format (staff; scrape with a token)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        from prometheus_client import CONTENT_TYPE_LATEST

        from realtime.prometheus import exposition

        return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)

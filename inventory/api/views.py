"""REST endpoints: validate the input, call one service or selector, serialize the output."""

from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import access, selectors, services
from inventory.accounts import lockout, tokens
from inventory.exceptions import InventoryError, InventoryNotFound
from inventory.models import Agency, Inventory

from . import serializers as s
from .exceptions import ResilientScopedRateThrottle as ScopedRateThrottle


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
    """Count a scan in a room (protocol v1: POST /api/inventory/save-scan); broadcasts `scan_added`."""

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
        room = access.room_resolve(
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
    """Complete a room's inventory (protocol v1: POST /api/inventory/finish-session)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"

    @extend_schema(request=s.RoomInput, responses={200: s.InventorySerializer})
    def post(self, request):
        serializer = s.RoomInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = access.room_resolve(request.user, **serializer.validated_data)
        inventory = selectors.inventory_find(room)
        if inventory is None:
            raise InventoryNotFound(_("No hay inventario para %(room)s.") % {"room": room.key})
        inventory = services.inventory_complete(inventory=inventory, user=request.user)
        return Response(s.InventorySerializer(selectors.inventory_with_count(inventory)).data)


class BodyOnDeleteSchema(AutoSchema):
    """Document a DELETE's JSON body, which protocol v1's delete-scanned-entry takes.

    drf-spectacular documents bodies only for POST, PUT and PATCH.
    """

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


class DeleteScannedEntryView(APIView):
    """Remove a scan (protocol v1: DELETE /api/inventory/delete-scanned-entry); broadcasts `scan_removed`.

    The body is protocol v1's `scan_removed` data (`scanData.code`, `scanData.id`), as save-scan takes
    it, or flat fields in the body or the query string. With an id only that scan is removed; a
    retry of a removal already done answers the same 200 and changes nothing. Without month and
    year it acts on the agency's open inventory that counted the code (or the scan).
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scan_write"
    schema = BodyOnDeleteSchema()

    @extend_schema(
        request=s.DeleteScanInput,
        parameters=[s.DeleteScanQuery],
        responses={200: s.ScanSerializer},
    )
    def delete(self, request):
        data = request.data if request.data else request.query_params
        if isinstance(data, dict):
            data = data.get("data", data)
        serializer = s.DeleteScanInput(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        agency = access.agency_for_user(request.user, values["agency"])
        if "month" in values:
            room = access.Room(agency=agency, month=values["month"], year=values["year"])
            inventory = selectors.inventory_find(room)
            if inventory is None:
                raise InventoryNotFound(_("No hay inventario para %(room)s.") % {"room": room.key})
        else:
            code = services.clean_code(values["code"]) if values["code"] is not None else None
            inventory = selectors.open_inventory_holding(agency, code, scan_id=values["scan_id"])
        result = services.scan_remove(
            inventory=inventory, user=request.user, code=values["code"], scan_id=values["scan_id"]
        )
        return Response(s.ScanSerializer(result.scan).data)


class InventoryFilter(filters.FilterSet):
    agency = filters.CharFilter(method="filter_agency", help_text="Agency name or slug.")

    class Meta:
        model = Inventory
        fields = ["agency", "month", "year", "status"]

    def filter_agency(self, queryset, name, value):
        """The agency as a room names it (access.agency_find): name in any case, slug, or without accents."""
        try:
            return queryset.filter(agency=access.agency_find(value))
        except InventoryError:
            return queryset.none()


class AgencyViewSet(viewsets.ModelViewSet):
    """Agencies: members read theirs; who holds Django's add/change/delete_agency permission writes.

    The same permissions as the admin's (DRF's DjangoModelPermissions), so its screens mean what they say.
    """

    serializer_class = s.AgencySerializer
    permission_classes = [permissions.IsAuthenticated, permissions.DjangoModelPermissions]
    lookup_field = "slug"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Agency.objects.none()
        return selectors.agencies_listed_for(self.request.user).prefetch_related("members")

    def perform_destroy(self, instance: Agency):
        if instance.inventories.exists():
            raise serializers.ValidationError(
                {"detail": _("La agencia tiene inventarios; desactívala en lugar de borrarla.")}
            )
        instance.delete()


class DeleteNeedsPermission(permissions.BasePermission):
    """DELETE takes the model's Django `delete_*` permission, as in the admin; the rest is for members."""

    def has_permission(self, request, view):
        if request.method != "DELETE":
            return True
        model = view.get_queryset().model
        return request.user.has_perm(f"{model._meta.app_label}.delete_{model._meta.model_name}")


class InventoryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Inventories the user may see; POST opens (or returns) a room's inventory; DELETE an empty one."""

    serializer_class = s.InventorySerializer
    filterset_class = InventoryFilter
    permission_classes = [permissions.IsAuthenticated, DeleteNeedsPermission]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Inventory.objects.none()
        return selectors.inventories_visible_to(self.request.user)

    def perform_destroy(self, instance: Inventory):
        # As the admin: a count with scans is a record, kept. The smoke check deletes the room it opened.
        if instance.scans.exists():
            raise serializers.ValidationError(
                {"detail": _("El inventario tiene escaneos; no se puede borrar.")}
            )
        instance.delete()

    @extend_schema(request=s.RoomInput, responses={201: s.InventorySerializer, 200: s.InventorySerializer})
    def create(self, request):
        serializer = s.RoomInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = access.room_resolve(request.user, **serializer.validated_data)
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

from django.contrib import admin, messages
from django.db.models import Count, F
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .exceptions import InventoryError
from .models import Agency, Inventory, Scan
from .reconciliation.admin import InventoryReconciliationMixin


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "blind_count", "member_count", "created_at"]
    list_filter = ["is_active", "blind_count"]
    search_fields = ["name", "slug", "members__username"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members", "managers"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members", distinct=True))

    @admin.display(description=_("miembros"), ordering="member_count")
    def member_count(self, agency):
        return agency.member_count


class ScanInline(admin.TabularInline):
    model = Scan
    fields = ["code", "scanned_by_name", "scanned_at", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Inventory)
class InventoryAdmin(InventoryReconciliationMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "agency",
        "month",
        "year",
        "status",
        "scan_count",
        "reconciliation_links",
        "completed_by_name",
        "completed_at",
    ]
    list_filter = ["agency", "status", "year", "month"]
    search_fields = ["agency__name"]
    readonly_fields = [
        "status",
        "completed_at",
        "completed_by",
        "completed_by_name",
        "last_seq",
        "created_at",
        "reconciliation_links",
    ]
    inlines = [ScanInline]
    actions = ["complete_inventories", "clear_expected_lists"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("agency").annotate(scan_count=F("progress_counted"))
        )

    def get_readonly_fields(self, request, obj=None):
        # Moving an inventory to another room would pull it from under its open sockets.
        fields = super().get_readonly_fields(request, obj)
        return [*fields, "agency", "month", "year"] if obj is not None else fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a count is a record: delete one by one, and only if empty
        return actions

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not obj.scans.exists())

    @admin.display(description=_("escaneos"), ordering="scan_count")
    def scan_count(self, inventory):
        return inventory.scan_count

    # Without `permissions` an action is open to anyone who may view the list.
    @admin.action(
        description=_("Completar los inventarios seleccionados (se avisa a las sesiones abiertas)"),
        permissions=["change"],
    )
    def complete_inventories(self, request, queryset):
        done = 0
        for inventory in queryset:
            try:
                services.inventory_complete(inventory=inventory, user=request.user)
                done += 1
            except InventoryError as exc:
                self.message_user(request, f"{inventory}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(
                request,
                ngettext("%d inventario completado.", "%d inventarios completados.", done) % done,
                messages.SUCCESS,
            )


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["code", "inventory", "scanned_by_name", "scanned_at", "match"]
    list_filter = ["inventory__agency", "inventory__year", "inventory__month", "match"]
    search_fields = ["code", "scanned_by_name"]
    list_select_related = ["inventory__agency"]
    readonly_fields = [
        "inventory",
        "uid",
        "code",
        "scanned_by",
        "scanned_by_name",
        "scanned_at",
        "created_at",
        "match",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.inventory.is_open)

    def delete_model(self, request, obj):
        """Remove through the service, so the room is told (`scan_removed`) and the log keeps it."""
        self._remove(request, obj)

    def delete_queryset(self, request, queryset):
        for scan in queryset.select_related("inventory__agency"):
            self._remove(request, scan)

    def _remove(self, request, scan):
        try:
            services.scan_remove(inventory=scan.inventory, user=request.user, code=scan.code)
        except InventoryError as exc:
            self.message_user(request, f"{scan.code}: {exc.message}", messages.WARNING)

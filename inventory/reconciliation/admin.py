"""Admin for reconciliation: import the expected list, links to the report, explain variances.

Another interface to the same services: no write here bypasses `reconciliation.services`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from inventory.exceptions import InvalidInput, InventoryError
from inventory.models import (
    DuplicateScanAttempt,
    ExpectedVehicle,
    Inventory,
    Scan,
    VarianceExplanation,
)

from . import selectors, services
from .errors import ImportRejected
from .matching import code_key


class ExpectedImportForm(forms.Form):
    file = forms.FileField(
        label=_("Archivo"),
        help_text=_(
            "CSV o XLSX con encabezados como VIN / Serie, Stock, Descripción, Marca, Modelo, Año, Color, "
            "Ubicación. Reemplaza la lista actual; si alguna fila tiene errores, no se importa nada."
        ),
    )


class InventoryReconciliationMixin:
    """Adds to the Inventory admin: an import page, report links, and clearing the expected list."""

    def get_queryset(self, request):
        expected = (
            ExpectedVehicle.objects.filter(inventory=OuterRef("pk"))
            .order_by()
            .values("inventory")
            .annotate(total=Count("pk"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(expected_count=Coalesce(Subquery(expected, output_field=IntegerField()), 0))
        )

    def get_urls(self):
        extra = [
            path(
                "<int:inventory_id>/import-expected/",
                self.admin_site.admin_view(self.import_expected_view),
                name="inventory_inventory_import_expected",
            ),
        ]
        return extra + super().get_urls()

    @admin.display(description=_("conciliación"))
    def reconciliation_links(self, inventory):
        if inventory.pk is None:
            return "-"
        agency = inventory.agency
        expected = getattr(inventory, "expected_count", None)
        if expected is None:
            expected = ExpectedVehicle.objects.filter(inventory=inventory).count()
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">CSV</a> · <a href="{}">Excel</a> · <a href="{}">{}</a>',
            reverse("inventory-report", args=[agency.slug or agency.name, inventory.month, inventory.year]),
            _("Informe"),
            reverse("inventory-report-download", args=[inventory.pk, "csv"]),
            reverse("inventory-report-download", args=[inventory.pk, "xlsx"]),
            reverse("admin:inventory_inventory_import_expected", args=[inventory.pk]),
            ngettext("Importar lista (%d esperado)", "Importar lista (%d esperados)", expected) % expected,
        )

    def import_expected_view(self, request, inventory_id):
        inventory = get_object_or_404(Inventory.objects.select_related("agency"), pk=inventory_id)
        if not self.has_change_permission(request, inventory):
            return HttpResponseRedirect(reverse("admin:index"))
        errors = []
        form = ExpectedImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = services.expected_import_file(
                    inventory=inventory, upload=upload, filename=upload.name or "", user=request.user
                )
            except ImportRejected as exc:
                errors = exc.errors
                self.message_user(request, exc.message, messages.ERROR)
            except InventoryError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(count)s vehículos esperados importados en %(room)s (%(replaced)s reemplazados).")
                    % {"count": result.imported, "room": inventory.room_key, "replaced": result.replaced},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:inventory_inventory_change", args=[inventory.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Importar lista esperada: %(room)s") % {"room": inventory.room_key},
            "opts": self.model._meta,
            "original": inventory,
            "form": form,
            "errors": errors,
            "expected_count": ExpectedVehicle.objects.filter(inventory=inventory).count(),
        }
        return TemplateResponse(request, "admin/inventory/inventory/import_expected.html", context)

    @admin.action(description=_("Vaciar la lista esperada de los inventarios seleccionados"))
    def clear_expected_lists(self, request, queryset):
        removed = 0
        for inventory in queryset:
            try:
                removed += services.expected_clear(inventory=inventory, user=request.user)
            except InventoryError as exc:
                self.message_user(request, f"{inventory}: {exc.message}", messages.WARNING)
        self.message_user(
            request, _("%(count)s vehículos esperados eliminados.") % {"count": removed}, messages.SUCCESS
        )


@admin.register(ExpectedVehicle)
class ExpectedVehicleAdmin(admin.ModelAdmin):
    """Read-only: the list changes only by importing a file."""

    list_display = ["code", "stock_number", "label", "location", "inventory", "is_found", "line"]
    list_filter = ["inventory__agency", "inventory__year", "inventory__month", "location"]
    search_fields = ["code", "stock_number", "description", "make", "model"]
    list_select_related = ["inventory__agency"]

    def get_queryset(self, request):
        found = Exists(Scan.objects.filter(inventory=OuterRef("inventory"), code_key=OuterRef("code_key")))
        return super().get_queryset(request).annotate(found=found)

    @admin.display(description=_("encontrado"), boolean=True, ordering="found")
    def is_found(self, vehicle):
        return vehicle.found

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class VarianceExplanationForm(forms.ModelForm):
    class Meta:
        model = VarianceExplanation
        fields = ["inventory", "code", "reason", "note"]

    def clean(self):
        """The service's rules, as field errors: a code that is a variance, a note with «Otro»."""
        data = super().clean()
        inventory = data.get("inventory") or getattr(self.instance, "inventory", None)
        code = data.get("code")
        if inventory is not None and code and selectors.variance_kind(inventory, code_key(code)) is None:
            self.add_error(
                "code", _("Este código no es una diferencia del inventario (ni faltante ni no esperado).")
            )
        try:
            services.clean_explanation(reason=data.get("reason"), note=data.get("note"))
        except InvalidInput as exc:
            self.add_error(exc.details.get("field"), exc.message)
        return data


@admin.register(VarianceExplanation)
class VarianceExplanationAdmin(admin.ModelAdmin):
    form = VarianceExplanationForm
    list_display = ["code", "inventory", "reason", "note", "explained_by_name", "explained_at"]
    list_filter = ["reason", "inventory__agency", "inventory__year", "inventory__month"]
    search_fields = ["code", "note"]
    list_select_related = ["inventory__agency"]

    def get_readonly_fields(self, request, obj=None):
        return ["inventory", "code"] if obj is not None else []

    # The form checks the service's rules; what changes between the check and the save (a scan
    # turns a missing code into a found one) comes back as a message, never as a server error.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except InventoryError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except InventoryError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:inventory_varianceexplanation_changelist"))

    def save_model(self, request, obj, form, change):
        explanation = services.variance_explain(
            inventory=obj.inventory, user=request.user, code=obj.code, reason=obj.reason, note=obj.note
        )
        obj.pk = explanation.pk

    def delete_model(self, request, obj):
        services.variance_explain(inventory=obj.inventory, user=request.user, code=obj.code, reason=None)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("inventory__agency"):
            try:
                self.delete_model(request, obj)
            except InventoryError as exc:
                self.message_user(request, f"{obj.code}: {exc.message}", messages.ERROR)


@admin.register(DuplicateScanAttempt)
class DuplicateScanAttemptAdmin(admin.ModelAdmin):
    list_display = ["code", "inventory", "attempted_by_name", "first_scanned_by_name", "created_at"]
    list_filter = ["inventory__agency", "inventory__year", "inventory__month"]
    search_fields = ["code", "attempted_by_name"]
    list_select_related = ["inventory__agency"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

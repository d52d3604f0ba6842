"""Who may see and do what in an inventory's reconciliation."""

from __future__ import annotations

from inventory.models import Agency


def is_manager(user, agency: Agency) -> bool:
    """Staff, or a user named among the agency's managers."""
    if not user or not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return agency.managers.filter(pk=user.pk).exists()


def can_view(user, agency: Agency) -> bool:
    """Members of an active agency and its managers see its inventories' reconciliation."""
    if is_manager(user, agency):
        return True
    return agency.is_active and agency.members.filter(pk=user.pk).exists()


def can_see_expected(user, agency: Agency) -> bool:
    """With blind counting on, only managers see the expected list itself."""
    return not agency.blind_count or is_manager(user, agency)

"""Who may see and do what in an inventory's reconciliation."""

from __future__ import annotations

from inventory.models import Agency
from inventory.rooms import sees_every_agency


def is_manager(user, agency: Agency) -> bool:
    """Staff, or a user named among the agency's managers."""
    if sees_every_agency(user):
        return True
    return bool(user and user.is_authenticated) and agency.managers.filter(pk=user.pk).exists()


def can_view(user, agency: Agency) -> bool:
    """Members of an active agency and its managers see its inventories' reconciliation."""
    if is_manager(user, agency):
        return True
    return agency.is_active and agency.members.filter(pk=user.pk).exists()


def can_see_expected(user, agency: Agency) -> bool:
    """With blind counting on, only managers see the expected list itself."""
    return not agency.blind_count or is_manager(user, agency)

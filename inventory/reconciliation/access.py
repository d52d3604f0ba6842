"""Who may see and do what in an inventory's reconciliation."""

from __future__ import annotations

from inventory.access import manages_every_agency, sees_every_agency
from inventory.models import Agency


def is_manager(user, agency: Agency) -> bool:
    """A user named among the agency's managers, or one with the `manage_every_agency` permission."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if manages_every_agency(user):
        return True
    return agency.managers.filter(pk=user.pk).exists()


def can_view(user, agency: Agency) -> bool:
    """Members of an active agency, its managers and who may enter every agency see its reconciliation."""
    if is_manager(user, agency) or sees_every_agency(user):
        return True
    return bool(user and user.is_authenticated and user.is_active) and (
        agency.is_active and agency.members.filter(pk=user.pk).exists()
    )


def can_see_expected(user, agency: Agency) -> bool:
    """With blind counting on, only managers see the expected list itself."""
    return not agency.blind_count or is_manager(user, agency)

"""Access that is taken away reaches the sockets already open.

Removing a user from an agency, taking away a permission that let them in (directly or through a
group), deleting their token, logging a session out, changing their password, deactivating or
deleting them: each publishes, once the change commits, a
`user.revoked` event to the user's group (`user.<id>`, which every socket of the user joins, on
every instance). Each socket then checks its own access again, as it was opened (the same
token, the same session, the same password, the same agency), and closes if it lost it. Every
write on a socket runs the same check in its own database hop, so a lost event cannot let a
revoked user write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user, get_user_model, user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save
from django.utils.translation import gettext as _

from inventory.access import user_can_access

from . import protocol
from .auth import token_from_scope, user_for_token
from .fanout import get_fanout, user_stream
from .refusals import Refusal

logger = logging.getLogger("realtime.revocation")

# The layer message type; consumers handle it in `user_revoked`.
USER_REVOKED = "user.revoked"

# Why a socket lost its access (the reasons `access_lost` returns).
ACCOUNT_INACTIVE = "account_inactive"
TOKEN_INVALID = "token_invalid"
SESSION_ENDED = "session_ended"
PASSWORD_CHANGED = "password_changed"
MEMBERSHIP_REMOVED = "membership_removed"

# User fields whose change may take access away.
_WATCHED_FIELDS = ("password", "is_active", "is_staff", "is_superuser")


@dataclass(frozen=True, slots=True)
class SocketAccess:
    """What a socket was opened with: the user, the agency, and the credentials then valid."""

    user_id: int
    agency_id: int
    auth_hash: str
    token: str | None = None
    session_key: str | None = None

    @classmethod
    def of(cls, scope, user, agency) -> SocketAccess:
        token = token_from_scope(scope)
        session = scope.get("session") if not token else None
        return cls(
            user_id=user.pk,
            agency_id=agency.pk,
            auth_hash=user.get_session_auth_hash(),
            token=token,
            session_key=getattr(session, "session_key", None),
        )


class AccessRevoked(Exception):
    """A write found that its socket lost its access; the socket is to be closed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def access_lost(access: SocketAccess) -> str | None:
    """Why the socket's access is gone (one of the reasons above), or None if it still holds."""
    user = get_user_model().objects.filter(pk=access.user_id).first()
    if user is None or not user.is_active:
        return ACCOUNT_INACTIVE
    if user.get_session_auth_hash() != access.auth_hash:
        return PASSWORD_CHANGED
    if access.token is not None:
        if getattr(user_for_token.func(access.token), "pk", None) != user.pk:
            return TOKEN_INVALID
    elif access.session_key is not None and not _session_holds(access.session_key, user):
        return SESSION_ENDED
    from inventory.models import Agency

    agency = Agency.objects.filter(pk=access.agency_id).first()
    if agency is None or not user_can_access(user, agency):
        return MEMBERSHIP_REMOVED
    return None


def _session_holds(session_key: str, user) -> bool:
    """Whether the session still exists and still authenticates this user (Django's own check)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    return getattr(get_user(SimpleNamespace(session=store)), "pk", None) == user.pk


def refusal_for(reason: str, *, agency_name: str) -> Refusal:
    """The close code, error code and message for a reason (translated in the active language)."""
    if reason == MEMBERSHIP_REMOVED:
        return Refusal(
            protocol.CLOSE_FORBIDDEN,
            _("Ya no tienes acceso a la agencia «%(agency)s»; la conexión se cerró.")
            % {"agency": agency_name},
            "access_revoked",
        )
    messages = {
        ACCOUNT_INACTIVE: _("Tu cuenta ya no está activa; la conexión se cerró."),
        TOKEN_INVALID: _("Tu token ya no es válido; la conexión se cerró. Conecta con un token nuevo."),
        SESSION_ENDED: _("Tu sesión terminó; vuelve a iniciar sesión."),
        PASSWORD_CHANGED: _("Tu contraseña cambió; vuelve a iniciar sesión."),
    }
    return Refusal(protocol.CLOSE_UNAUTHENTICATED, messages[reason], "unauthenticated")


# Publishing.


def publish_revoked(user_id, reason: str, *, agency_id: int | None = None) -> None:
    """Tell every socket of the user, once the current transaction commits, to check its access.

    The events of one transaction are sent together, each once, so that deleting a thousand
    users costs one hop to the live relay, not a thousand.
    """
    event = (int(user_id), reason, agency_id)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _send_now([event])
        return
    batch = getattr(connection, "_revocation_batch", None)
    # A batch whose callback is no longer registered was committed or rolled back: start another.
    if batch is None or not any(entry[1] is batch.send for entry in connection.run_on_commit):
        batch = connection._revocation_batch = _Batch()
        transaction.on_commit(batch.send)
    batch.events[event] = None


class _Batch:
    def __init__(self):
        self.events: dict[tuple, None] = {}

    def send(self) -> None:
        _send_now(list(self.events))


def _send_now(events) -> None:
    try:
        async_to_sync(_send_all)(events)
    except Exception as exc:  # the change is committed; writes still check access themselves
        logger.error("Could not publish %s revocation(s): %r", len(events), exc)


async def _send_all(events) -> None:
    fanout = get_fanout()
    for user_id, reason, agency_id in events:
        await fanout.publish(
            user_stream(user_id), [{"type": USER_REVOKED, "reason": reason, "agency": agency_id}]
        )


# Signal receivers, connected in RealtimeConfig.ready.


def _membership_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """Agency.members lost someone: by remove or clear, from the agency or from the user's side."""
    if action == "pre_clear":
        # Who is about to go: the pk_set of a clear arrives empty.
        if reverse:
            instance._revocation_cleared = list(instance.agencies.values_list("pk", flat=True))
        else:
            instance._revocation_cleared = list(instance.members.values_list("pk", flat=True))
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_revocation_cleared", [])
    elif action != "post_remove":
        return
    for pk in pk_set or ():
        user_id, agency_id = (instance.pk, pk) if reverse else (pk, instance.pk)
        publish_revoked(user_id, MEMBERSHIP_REMOVED, agency_id=agency_id)


def _token_deleted(sender, instance, **kwargs) -> None:
    publish_revoked(instance.user_id, TOKEN_INVALID)


def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        # Django ends the session just after this signal; end it first, so that a socket that
        # re-checks its access at once (in another thread) already finds it gone.
        if getattr(request, "session", None) is not None:
            request.session.flush()
        publish_revoked(user.pk, SESSION_ENDED)


def _access_fields(instance) -> dict:
    # Read from the instance's own values: touching a deferred field would query the database.
    return {name: instance.__dict__[name] for name in _WATCHED_FIELDS if name in instance.__dict__}


def _user_loaded(sender, instance, **kwargs) -> None:
    """Remember the fields that grant access as loaded, to see a save change them."""
    instance._revocation_fields = _access_fields(instance)


def _user_saved(sender, instance, created, **kwargs) -> None:
    before = getattr(instance, "_revocation_fields", {})
    now = instance._revocation_fields = _access_fields(instance)
    changed = {name for name, value in before.items() if name in now and now[name] != value}
    if created or not changed:
        return
    if "password" in changed:
        reason = PASSWORD_CHANGED
    elif "is_active" in changed:
        reason = ACCOUNT_INACTIVE
    else:  # is_staff or is_superuser
        reason = MEMBERSHIP_REMOVED
    publish_revoked(instance.pk, reason)


def _user_deleted(sender, instance, **kwargs) -> None:
    publish_revoked(instance.pk, ACCOUNT_INACTIVE)


def _users_holding(sender, instance, reverse, pk_set) -> list:
    """The users a removal from user_permissions, groups or a group's permissions touches."""
    user_model = get_user_model()
    if sender in (user_model.user_permissions.through, user_model.groups.through):
        if not reverse:
            return [instance.pk]
        return list(pk_set) if pk_set else list(instance.user_set.values_list("pk", flat=True))
    groups_touched = (
        [instance.pk] if not reverse else (pk_set or instance.group_set.values_list("pk", flat=True))
    )
    return list(
        user_model.objects.filter(groups__in=list(groups_touched)).values_list("pk", flat=True).distinct()
    )


def _permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A permission (directly or through a group) was taken away: `access_every_agency` may be gone."""
    if action in ("pre_remove", "pre_clear"):
        # Read before the change: after a clear, neither the rows nor the pk_set say who held them.
        instance._revocation_permission_users = _users_holding(sender, instance, reverse, pk_set)
    elif action in ("post_remove", "post_clear"):
        for user_id in getattr(instance, "_revocation_permission_users", ()):
            publish_revoked(user_id, MEMBERSHIP_REMOVED)


def connect_signals() -> None:
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from inventory.models import Agency

    user_model = get_user_model()
    m2m_changed.connect(
        _membership_changed, sender=Agency.members.through, dispatch_uid="realtime-revoke-m2m"
    )
    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="realtime-revoke-token")
    user_logged_out.connect(_logged_out, dispatch_uid="realtime-revoke-logout")
    post_init.connect(_user_loaded, sender=user_model, dispatch_uid="realtime-revoke-user-init")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="realtime-revoke-user-save")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="realtime-revoke-user-delete")
    for through in (
        user_model.user_permissions.through,
        user_model.groups.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(
            _permissions_changed, sender=through, dispatch_uid=f"realtime-revoke-perm-{through.__name__}"
        )

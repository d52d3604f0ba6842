"""API tokens (DRF's authtoken rows) that expire after API_TOKEN_TTL and die with the password.

A token is invalidated only by deleting its row (`Token.objects.filter(...).delete()`), so that
Django's pre/post_delete signals for `rest_framework.authtoken.models.Token` see every revocation:
the owner's DELETE /api/auth/token/, a password change, a deactivation, and expiry.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_expired(token: Token, *, now=None) -> bool:
    """True once API_TOKEN_TTL seconds have passed since the token was issued (never when unset)."""
    ttl = settings.API_TOKEN_TTL
    if ttl is None:
        return False
    return (now or timezone.now()) >= token.created + timedelta(seconds=ttl)


def token_user(key: str):
    """The active user a valid, unexpired token belongs to, else None."""
    if not key or "\x00" in key:  # no token has one, and PostgreSQL refuses it in a query
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active or token_expired(token):
        return None
    return token.user


def token_issue(*, user) -> Token:
    """The user's token: the current one while it is valid, else a new one (an expired one is deleted)."""
    token, created = Token.objects.get_or_create(user=user)
    if created or not token_expired(token):
        return token
    Token.objects.filter(pk=token.pk).delete()
    return Token.objects.get_or_create(user=user)[0]


def token_revoke(*, user) -> int:
    """Delete every token of the user; the number deleted."""
    deleted, _by_model = Token.objects.filter(user=user).delete()
    return deleted


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing an expired token with a message that says so."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                _("El token expiró. Pide uno nuevo con tu usuario y contraseña."), code="token_expired"
            )
        return user, token


@receiver(post_save, sender=get_user_model(), dispatch_uid="accounts.tokens_die_with_the_password")
def _tokens_die_with_the_password(sender, instance, created, **kwargs):
    """Like Django's session hash: a new password or a deactivation ends every token of the user.

    Passwords change through Django's own code (admin, changepassword, PasswordChangeForm),
    not through a service of ours, so only the model's save sees every path. `_password` is
    Django's own mark of set_password() since the last save, the one it hands to password
    validators' password_changed(); a hash upgrade at login clears it, so it ends nothing.
    """
    if created:
        return
    if instance._password is not None or not instance.is_active:
        token_revoke(user=instance)

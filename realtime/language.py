"""The language a socket's answers speak: Django's language cookie, else Accept-Language, else the default."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import trans_real


def language_of(scope) -> str:
    """The client's language: Django's language cookie, else Accept-Language, else the default."""
    cookies = scope.get("cookies") or {}
    candidates = [cookies.get(settings.LANGUAGE_COOKIE_NAME)]
    for key, value in scope.get("headers", []):
        if key == b"accept-language":
            candidates += [lang for lang, _q in trans_real.parse_accept_lang_header(value.decode("latin-1"))]
    for candidate in candidates:
        if candidate:
            try:
                return translation.get_supported_language_variant(candidate)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE

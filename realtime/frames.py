"""A client's frame, decoded and checked: size, UTF-8, JSON, an object, an optional `ref`, a known type.

`decode` gives a `Frame` or raises `FrameError` with the `error` to answer. The `data` of a known
type is checked by its command (realtime.commands), after the rate limit has counted the frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from .conf import realtime_settings
from .wire import CLIENT_TYPES, PING, REF_MAX_CHARS


@dataclass(frozen=True)
class Frame:
    type: str
    data: Any
    ref: str | None = None


class FrameError(Exception):
    """A frame that is not a message of a known type: the error to answer with.

    `too_big` frames close the socket; the others count against the `invalid` rate-limit budget.
    """

    def __init__(self, message: str, code: str, *, too_big: bool = False, ref: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.too_big = too_big
        self.ref = ref


def valid_ref(ref: Any) -> bool:
    return isinstance(ref, str) and 0 < len(ref) <= REF_MAX_CHARS and ref.isprintable()


def decode(text_data: str | None = None, bytes_data: bytes | None = None) -> Frame:
    raw = text_data if text_data is not None else bytes_data or b""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > realtime_settings.MAX_FRAME_BYTES:
        raise FrameError(_("El mensaje supera el tamaño máximo de 64 KiB."), "message_too_big", too_big=True)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(_("El mensaje no es texto UTF-8."), "invalid_json") from None
    try:
        content = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError(_("El mensaje no es JSON válido."), "invalid_json") from None
    return check(content)


def check(content: Any) -> Frame:
    """A decoded JSON value as a frame: an object with a known `type` and, optionally, a valid `ref`."""
    if not isinstance(content, dict):
        raise FrameError(_("El mensaje debe ser un objeto JSON con type y data."), "invalid_message")
    ref = content.get("ref")
    if ref is not None and not valid_ref(ref):
        raise FrameError(
            _("ref debe ser texto imprimible de 1 a %(max)s caracteres.") % {"max": REF_MAX_CHARS},
            "invalid_message",
        )
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise FrameError(
            _("Tipo de mensaje desconocido. Tipos válidos: %(types)s.") % {"types": ", ".join(CLIENT_TYPES)},
            "unknown_type",
            ref=ref,
        )
    data = content.get("data")
    if data is None and kind == PING:
        data = {}
    return Frame(kind, data, ref)

"""Request parsers: DRF's, with every malformed body answered as a client error (400), never a 500."""

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser; JSON nested deeper than Python can decode is a 400, like any malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json raises RecursionError, not ValueError, past ~1,000 levels of [ or {.
            raise ParseError(_("JSON inválido: tiene demasiados niveles anidados.")) from None

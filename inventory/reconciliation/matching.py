"""How a scanned code compares with the books: the one normalization both sides share."""

from __future__ import annotations

from inventory import vin
from inventory.models import ScanMatch


def code_key(code: str) -> str:
    """The form in which codes are compared: trimmed, upper-cased."""
    return code.strip().upper()


def classify(key: str, *, in_list: bool, has_list: bool) -> str:
    """The match of a scan: in the books, a likely misread VIN, not in the books, or blank.

    A code found in the books is expected even if its check digit fails (many European VINs
    carry none); blank means the inventory has no expected list to compare with.
    """
    if in_list:
        return ScanMatch.EXPECTED
    if vin.is_suspect(key):
        return ScanMatch.FLAGGED
    return ScanMatch.UNEXPECTED if has_list else ""

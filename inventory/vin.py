"""Vehicle identification numbers: the ISO 3779 / North American check digit.

A 17-character code made of letters and digits is taken for a VIN. It is valid when it
avoids I, O and Q and its 9th character is the check digit computed from the other 16
(49 CFR 565.15: transliterate letters, weigh each position, sum modulo 11, 10 is "X").
Many European VINs carry no check digit, so a failed check is a flag, never a refusal.
"""

from __future__ import annotations

LENGTH = 17
CHECK_POSITION = 8  # zero-based: the 9th character

TRANSLITERATION = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
FORBIDDEN = frozenset("IOQ")


def looks_like_vin(code: str) -> bool:
    """Whether a code has a VIN's shape: exactly 17 ASCII letters and digits."""
    return len(code) == LENGTH and code.isascii() and code.isalnum()


def check_digit(vin: str) -> str | None:
    """The check digit a VIN should carry, or None if it has a character a VIN cannot have."""
    vin = vin.upper()
    if len(vin) != LENGTH or any(char not in TRANSLITERATION for char in vin):
        return None
    total = sum(TRANSLITERATION[char] * weight for char, weight in zip(vin, WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid(vin: str) -> bool:
    """Whether a VIN has 17 allowed characters and the right check digit (any case)."""
    expected = check_digit(vin)
    return expected is not None and vin[CHECK_POSITION].upper() == expected


def is_suspect(code: str) -> bool:
    """A code that looks like a VIN but fails the check: most likely a misread."""
    return looks_like_vin(code) and not is_valid(code)

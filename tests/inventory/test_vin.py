import pytest

from inventory import vin
from inventory.models import ScanMatch
from inventory.reconciliation.matching import classify, code_key


@pytest.mark.parametrize(
    "code", ["1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352", "JH4KA7561PC008269"]
)
def test_known_valid_vins_pass_the_check_digit(code):
    assert vin.looks_like_vin(code)
    assert vin.is_valid(code)
    assert not vin.is_suspect(code)


def test_the_check_is_case_insensitive():
    assert vin.is_valid("1hgcm82633a004352")


@pytest.mark.parametrize(
    "code",
    [
        "1M8GDM9AKKP042788",  # wrong check digit (X expected)
        "1HGCM82643A004352",  # one digit misread
        "11111111111111112",  # a changed character moves the check digit
        "1HGCM82633A00435I",  # I is never in a VIN
        "1HGCM82633O004352",  # nor O
        "1HGCM82633Q004352",  # nor Q
        "WVWZZZ1KZ6W000000",  # a European VIN without a check digit is flagged too
    ],
)
def test_known_invalid_vins_fail_and_are_suspect(code):
    assert vin.looks_like_vin(code)
    assert not vin.is_valid(code)
    assert vin.is_suspect(code)


def test_check_digit_ten_is_written_x():
    assert vin.check_digit("1M8GDM9AXKP042788") == "X"


@pytest.mark.parametrize(
    "code", ["BARCODE123", "1HGCM82633A00435", "1HGCM82633A0043521", "1HGCM-2633A004352", "ÁHGCM82633A004352"]
)
def test_codes_that_are_not_vin_shaped_are_never_suspect(code):
    assert not vin.looks_like_vin(code)
    assert not vin.is_suspect(code)


def test_classify_prefers_the_books_over_the_check_digit():
    assert code_key("  1hgcm82633a004352 ") == "1HGCM82633A004352"
    assert classify("WVWZZZ1KZ6W000000", in_list=True, has_list=True) == ScanMatch.EXPECTED
    assert classify("WVWZZZ1KZ6W000000", in_list=False, has_list=True) == ScanMatch.FLAGGED
    assert classify("WVWZZZ1KZ6W000000", in_list=False, has_list=False) == ScanMatch.FLAGGED
    assert classify("BARCODE", in_list=False, has_list=True) == ScanMatch.UNEXPECTED
    assert classify("BARCODE", in_list=False, has_list=False) == ""

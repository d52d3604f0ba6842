"""One error renderer for the socket and REST: inventory.exceptions.error_report."""

import pytest
import redis.exceptions
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from rest_framework.exceptions import ValidationError

from inventory.api.exceptions import exception_handler
from inventory.exceptions import InvalidInput, InventoryError, ScanNotFound, error_report


def test_a_domain_error_reports_its_message_code_status_and_details():
    report = error_report(InvalidInput("mal", code="wrong_room", field="month"))
    assert report == ("mal", "wrong_room", 400, {"field": "month"})
    assert error_report(ScanNotFound("A1")).status == 404
    assert error_report(ScanNotFound("A1")).code == "scan_not_found"
    assert error_report(InventoryError("x")).code == "invalid"


def test_a_refused_value_is_bad_input_and_an_unreachable_database_a_503():
    assert error_report(DataError("nul"))[1:3] == ("invalid", 400)
    for exc in (OperationalError("down"), InterfaceError("closed"), DatabaseError("down")):
        report = error_report(exc)
        assert (report.code, report.status) == ("database_unavailable", 503)
        assert report.message


@pytest.mark.parametrize(
    "exc", [redis.exceptions.ConnectionError("refused"), redis.exceptions.TimeoutError("no answer")]
)
def test_an_unreachable_redis_is_a_503_that_says_the_live_service_is_down(exc):
    report = error_report(exc)
    assert (report.code, report.status) == ("unavailable", 503)
    assert "Redis" in report.message
    response = exception_handler(exc, {})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.data == {"detail": report.message, "code": "unavailable"}


@pytest.mark.parametrize("exc", [ValueError("bug"), IntegrityError("dup"), ValidationError("x")])
def test_anything_else_is_not_reported(exc):
    assert error_report(exc) is None


def test_drf_answers_with_the_same_report_in_its_own_shape():
    exc = ScanNotFound("A1")
    response = exception_handler(exc, {})
    report = error_report(exc)
    assert response.status_code == report.status
    assert response.data == {"detail": report.message, "code": report.code}
    down = exception_handler(OperationalError("down"), {})
    assert down.status_code == 503 and down["Retry-After"] == "5"
    assert down.data == {"detail": error_report(OperationalError()).message, "code": "database_unavailable"}
    field = exception_handler(InvalidInput("mal", field="timestamp"), {})
    assert field.status_code == 400 and field.data == {"timestamp": ["mal"]}
    assert exception_handler(DataError("nul"), {}).data["code"] == "invalid"

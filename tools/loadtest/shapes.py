"""Protocol v1's broadcasts checked for one room, field by field, for the smoke check's report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class Room:
    agency: str
    month: int
    year: int

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.month}/{self.year}"


def room_problems(data: dict[str, Any], room: Room, *, code: str | None = None) -> list[str]:
    """What in a broadcast's `data` differs from protocol v1's shape for this room."""
    problems = []
    if data.get("agency") != room.agency:
        problems.append(f"agency {data.get('agency')!r} != {room.agency!r}")
    if data.get("month") != str(room.month):
        problems.append(f"month {data.get('month')!r} is not the string {str(room.month)!r}")
    if type(data.get("year")) is not int or data["year"] != room.year:
        problems.append(f"year {data.get('year')!r} is not the integer {room.year}")
    for name in ("userId", "userName"):
        if not isinstance(data.get(name), str) or not data[name]:
            problems.append(f"{name} {data.get(name)!r} is not a non-empty string")
    if not _is_timestamp(data.get("timestamp")):
        problems.append(f"timestamp {data.get('timestamp')!r} is not ISO 8601")
    if code is not None:
        scan = data.get("scanData")
        if not isinstance(scan, dict):
            return [*problems, "scanData is not an object"]
        if scan.get("code") != code:
            problems.append(f"scanData.code {scan.get('code')!r} != {code!r}")
        if not isinstance(scan.get("user"), str) or not scan["user"]:
            problems.append(f"scanData.user {scan.get('user')!r} is not a non-empty string")
        if not _is_timestamp(scan.get("timestamp")):
            problems.append(f"scanData.timestamp {scan.get('timestamp')!r} is not ISO 8601")
    return problems


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True

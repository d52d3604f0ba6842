"""Print the counts the fuzz tests wrote to test-results/fuzz/ (`make fuzz` runs this last)."""

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "test-results" / "fuzz"
# The counts that say how much ran, per test.
HEADLINES = {
    "room-machine": ["runs", "steps", "requests sent", "bad frames answered", "joins", "failures"],
    "api-operations": ["operations", "calls", "failures"],
    "api-links": ["scenarios", "calls", "calls via a link", "failures"],
}


def main() -> int:
    records = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
    if not records:
        print(f"no fuzz results under {RESULTS}")
        return 1
    totals: dict[str, dict[str, int]] = {}
    for record in records:
        counts = {**record["counts"], "failures": record.get("failures", record["counts"].get("failures", 0))}
        shown = ", ".join(f"{name} {counts.get(name, 0):,}" for name in HEADLINES.get(record["name"], counts))
        print(
            f"FUZZ {record['name']} [{record['configuration']}, {record['profile']}, {record['outcome']}, "
            f"{record['seconds']:.0f} s]: {shown}"
        )
        for name in ("steps", "calls", "failures"):
            totals.setdefault(record["configuration"], {}).setdefault(name, 0)
            totals[record["configuration"]][name] += counts.get(name, 0) or 0
    for configuration, total in totals.items():
        shown = ", ".join(f"{name} {value:,}" for name, value in total.items())
        print(f"FUZZ total [{configuration}]: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

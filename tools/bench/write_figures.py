"""`make bench`'s per-scan write figure: tools/bench/write_path.py run as it is, its printout read back.

write_path.py measures one scan's write in-process through `scan_record` (statements of one add,
remove and completion; CPU per add, Python and PostgreSQL backend, with and without the relay)
on an empty and on a full inventory. It is run here on the benchmark's PostgreSQL server, pinned
to the server's core, and once more with --profile for cProfile's top functions of `scan_record`.
Its printout is its interface: lines this module does not recognise are kept, not guessed at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]

CASE = re.compile(
    r"inventory of\s+(?P<scans>\d+) scans: statements add (?P<add>\d+)(?: \(\+\d+\))?, "
    r"remove (?P<remove>\d+)(?: \(\+\d+\))?, complete (?P<complete>\d+)"
)
PER_ADD = re.compile(
    r"per add\s+(?P<relay>with|without) the in-memory relay: python (?P<python>[\d.]+) ms CPU, "
    r"postgres backend (?P<backend>[\d.]+) ms CPU, wall (?P<wall>[\d.]+) ms"
)


def parse(text: str) -> list[dict]:
    """One entry per inventory size: statements per add, remove and completion, and CPU per add."""
    cases: list[dict] = []
    for line in text.splitlines():
        if match := CASE.search(line):
            cases.append(
                {
                    "scans_before": int(match["scans"]),
                    "statements": {k: int(match[k]) for k in ("add", "remove", "complete")},
                    "per_add_ms": {},
                }
            )
        elif (match := PER_ADD.search(line)) and cases:
            relay = "with_relay" if match["relay"] == "with" else "without_relay"
            cases[-1]["per_add_ms"][relay] = {
                "python_cpu": float(match["python"]),
                "postgres_cpu": float(match["backend"]),
                "wall": float(match["wall"]),
            }
    return cases


def run(
    *,
    database_url: str,
    writes: int,
    full: int,
    core: str | None,
    profile_writes: int = 0,
    profile_path: Path | None = None,
    python: str = sys.executable,
) -> dict:
    """Run write_path.py (and, with `profile_writes`, once more under cProfile); its figures."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env["DATABASE_URL"] = database_url

    def write_path(*args: str) -> tuple[list[str], subprocess.CompletedProcess]:
        argv = [python, str(BENCH / "write_path.py"), "--full", str(full), *args]
        pinned = ["taskset", "-c", core, *argv] if core is not None else argv
        done = subprocess.run(pinned, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        return argv, done

    argv, done = write_path("--writes", str(writes))
    out: dict = {
        "command": " ".join(argv).replace(python, "python").replace(str(ROOT) + "/", ""),
        "exit": done.returncode,
        "cases": parse(done.stdout),
        "output": done.stdout.splitlines()[:40],
    }
    if done.returncode != 0:
        out["error"] = done.stderr[-1500:]
    if profile_writes and profile_path is not None:
        _, profiled = write_path("--writes", str(profile_writes), "--profile")
        profile_path.write_text(profiled.stdout + profiled.stderr[-1500:])
        shown = profile_path.relative_to(ROOT) if profile_path.is_relative_to(ROOT) else profile_path
        out["profile_file"] = str(shown)
        out["profile_top"] = top_functions(profiled.stdout)
    return out


def top_functions(text: str, count: int = 8) -> list[str]:
    """The first rows of the first cProfile table (tottime order): `tottime  filename:lineno(function)`."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("ncalls"):
            if inside:
                break
            inside = True
            continue
        if inside and line.strip():
            parts = line.split(None, 5)
            if len(parts) == 6:
                where = re.sub(r"^.*/site-packages/", "", parts[5]).replace(str(ROOT) + "/", "")
                rows.append(f"{parts[1]} s  {where}")
            if len(rows) >= count:
                break
    return rows


def summary(write: dict) -> dict:
    """The figures the targets are about: statements per add and CPU per add without the relay."""
    out = {}
    for case in write.get("cases", []):
        alone = case["per_add_ms"].get("without_relay", {})
        relayed = case["per_add_ms"].get("with_relay", {})
        out[str(case["scans_before"])] = {
            "statements_add": case["statements"]["add"],
            "python_cpu_ms": alone.get("python_cpu"),
            "postgres_cpu_ms": alone.get("postgres_cpu"),
            "python_cpu_ms_with_relay": relayed.get("python_cpu"),
        }
    return out

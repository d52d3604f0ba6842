"""Rewrite references to inventory.rooms into inventory.access / inventory.periods (run from repo root)."""

import re
import subprocess
from pathlib import Path

PERIODS = {
    "parse_month", "parse_year", "_parse_int", "ascii_int", "_month_index", "openable_months",
    "room_openable", "require_openable", "openable_months_newest_first", "MIN_YEAR", "MAX_YEAR",
}


def module_of(name: str) -> str:
    return "periods" if name in PERIODS else "access"


files = subprocess.run(["git", "ls-files", "*.py", "*.md"], capture_output=True, text=True).stdout.split()
for f in files:
    p = Path(f)
    if not p.exists():
        continue
    s = p.read_text()
    orig = s

    # from inventory.rooms import a, b  /  from .rooms import a
    def repl_from(m):
        indent, prefix, names = m.group(1), m.group(2), m.group(3)
        items = [n.strip() for n in names.strip("()").split(",") if n.strip()]
        groups: dict[str, list[str]] = {}
        for it in items:
            groups.setdefault(module_of(it.split(" as ")[0]), []).append(it)
        base = prefix.replace("rooms", "")
        return "\n".join(
            f"{indent}from {base}{mod} import {', '.join(sorted(names_))}" for mod, names_ in sorted(groups.items())
        )

    s = re.sub(r"^([ \t]*)from ((?:inventory\.|\.)rooms) import ([^\n]+)$", repl_from, s, flags=re.M)

    # module-style references: rooms.X
    if re.search(r"^\s*from (inventory|\.) import [^\n]*\brooms\b", s, flags=re.M):
        used = set(re.findall(r"\brooms\.(\w+)", s))
        mods = sorted({module_of(n) for n in used}) or ["access"]
        s = re.sub(r"\brooms\.(\w+)", lambda m: f"{module_of(m.group(1))}.{m.group(1)}", s)

        def repl_imp(m):
            names = [n.strip() for n in m.group(3).split(",")]
            names = [n for n in names if n != "rooms"] + mods
            return f"{m.group(1)}from {m.group(2)} import {', '.join(sorted(set(names)))}"

        s = re.sub(r"^([ \t]*)from (inventory|\.) import ([^\n]*\brooms\b[^\n]*)$", repl_imp, s, flags=re.M)
    # patch targets and docs
    s = re.sub(r"inventory\.rooms\.(\w+)", lambda m: f"inventory.{module_of(m.group(1))}.{m.group(1)}", s)
    s = s.replace("inventory/access.py", "inventory/access.py")
    if s != orig:
        p.write_text(s)
        print("rewrote", f)

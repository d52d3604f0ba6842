"""The layers hold: the contracts in pyproject.toml ([tool.importlinter]) are kept."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_domain_does_not_import_the_transport():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_architecture_names_every_module_and_only_files_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:inventory|realtime|tools)/[\w/]*(?:\.py|/))`", text))
    assert named, "the table names no file"
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []
    plumbing = {"__init__.py", "apps.py", "urls.py"}
    modules = [
        f"{package}/{path.name}"
        for package in ("inventory", "realtime")
        for path in sorted((ROOT / package).glob("*.py"))
        if path.name not in plumbing
    ]
    assert [module for module in modules if module not in named] == []

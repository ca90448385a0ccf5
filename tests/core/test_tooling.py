"""The developer tooling: `make help` names every target with a line saying what it does."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _phony_targets():
    line = next(x for x in (ROOT / "Makefile").read_text().splitlines() if x.startswith(".PHONY:"))
    return line.split(":", 1)[1].split()


def test_make_help_lists_each_target_with_a_sentence():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    listed = dict(re.match(r"\s+make (\S+)\s+(.+)", line).groups() for line in result.stdout.splitlines())
    assert set(listed) == set(_phony_targets())
    assert listed["check"] == "ruff, Django's system checks (warnings fail) and a check that no migration is missing"
    assert all(len(text.split()) >= 2 for text in listed.values())


def test_every_phony_target_is_defined():
    text = (ROOT / "Makefile").read_text()
    for target in _phony_targets():
        assert re.search(rf"^{re.escape(target)}:", text, re.M), target

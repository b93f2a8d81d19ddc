"""libs/protos must be what `make proto` generates from proto/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_not_stale() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_proto_field_is_documented() -> None:
    # Protos are the contract: each field carries a comment on the line above it.
    missing = []
    for proto in (ROOT / "proto").rglob("*.proto"):
        lines = proto.read_text().splitlines()
        for number, line in enumerate(lines):
            stripped = line.strip()
            keyword = stripped.startswith(("option", "//", "syntax", "package", "import"))
            is_field = stripped.endswith(";") and "=" in stripped and not keyword
            if is_field and not lines[number - 1].strip().startswith("//"):
                missing.append(f"{proto.relative_to(ROOT)}:{number + 1}: {stripped}")
    assert not missing, "\n".join(missing)

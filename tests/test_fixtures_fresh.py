"""Every committed BPF object is what its committed C source builds into.

The suite runs from the committed `.o` files so that it needs no clang; this test keeps them
honest where clang is there: it rebuilds each source with the Makefile's flags (plus the
source's own `// build:` line) and compares the bytes.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p.relative_to(ROOT)
    for pattern in ("tests/fixtures/*.c", "tests/kernel/*.c", "tests/corpus/*.c", "examples/*.c")
    for p in ROOT.glob(pattern)
)

pytestmark = pytest.mark.skipif(
    shutil.which("clang-19") is None or shutil.which("make") is None,
    reason="clang-19 (Debian's clang-19 package) and make are needed to rebuild fixtures",
)


def _base_command() -> list[str]:
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "bpf-cflags"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return shlex.split(out.stdout)


def _extra_flags(source: Path) -> list[str]:
    found = re.findall(r"^// build: (.*)$", source.read_text(), flags=re.MULTILINE)
    return [flag for line in found for flag in shlex.split(line)]


def test_there_are_sources() -> None:
    assert len(SOURCES) >= 10


@pytest.mark.parametrize("source", SOURCES, ids=str)
def test_object_is_fresh(source: Path, tmp_path: Path) -> None:
    committed = ROOT / source.with_suffix(".o")
    assert committed.exists(), f"{source} has no committed object: run `make fixtures`"
    rebuilt = tmp_path / "out.o"
    command = [*_base_command(), *_extra_flags(ROOT / source), "-c", str(source), "-o"]
    subprocess.run([*command, str(rebuilt)], cwd=ROOT, check=True, capture_output=True)
    assert rebuilt.read_bytes() == committed.read_bytes(), (
        f"{committed.relative_to(ROOT)} is stale: run `make fixtures` and commit it"
    )

"""Every example in examples/ runs in the suite: each script (which asserts what it prints),
and each C source has its committed object (the README's own examples: test_readme.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
SOURCES = sorted(EXAMPLES.glob("*.c"))


def test_every_example_has_a_script_and_an_object() -> None:
    assert {p.stem for p in SOURCES} == {p.stem for p in SCRIPTS}
    assert len(SOURCES) >= 4
    for source in SOURCES:
        assert source.with_suffix(".o").is_file(), f"{source.name}: run make fixtures"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_script_runs(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()

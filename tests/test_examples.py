"""Every example in examples/ runs in the suite: each script (which asserts what it prints),
each C source has its committed object, and the README's command-line example works."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from pybpf.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
SOURCES = sorted(EXAMPLES.glob("*.c"))

# The packet xdp_count.py bounces: a UDP datagram to the echo port, TTL 64.
ECHO_PACKET = (
    "02000000000202000000000108004500002000010000401166ca0a0000010a0000029c400007000c000070696e67"
)


def test_every_example_has_a_script_and_an_object() -> None:
    assert {p.stem for p in SOURCES} == {p.stem for p in SCRIPTS}
    assert len(SOURCES) >= 4
    for source in SOURCES:
        assert source.with_suffix(".o").is_file(), f"{source.name}: run make fixtures"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_script_runs(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()


def test_readme_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    obj = str(EXAMPLES / "xdp_count.o")
    argv = ["run", obj, "--prog", "xdp_count", "--data-hex", ECHO_PACKET]
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["retval"] == 3  # XDP_TX
    assert record["data_out"][:24] == ECHO_PACKET[12:24] + ECHO_PACKET[:12]
    change = record["maps"]["proto_counts"]["changed"]
    assert change == [{"key": "11000000", "before": "0" * 16, "after": "01" + "0" * 14}]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "retval: 3" in text and "proto_counts (array):" in text

"""The README tells the truth: its Python blocks run as written, and its quick-start command
(the main job on a shipped example) does what the README says it does."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from pybpf.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)
RUN_LINES = re.findall(r"&& pybpf (run examples/\S+ .*)$", README, flags=re.MULTILINE)


def test_readme_has_the_examples() -> None:
    assert PYTHON_BLOCKS, "README has no ```python block"
    assert len(RUN_LINES) == 1, "README's quick start should run one shipped example"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0])
def test_python_block_runs(
    block: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    capsys.readouterr()


def test_quick_start_runs_the_main_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(RUN_LINES[0])
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "retval: 3" in text and "proto_counts (array):" in text
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["retval"] == 3  # XDP_TX, as the README's comment says
    packet = argv[argv.index("--data-hex") + 1]
    assert record["data_out"][:24] == packet[12:24] + packet[:12]  # MACs swapped
    change = record["maps"]["proto_counts"]["changed"]
    assert change == [{"key": "11000000", "before": "0" * 16, "after": "01" + "0" * 14}]

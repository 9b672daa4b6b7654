"""The `pybpf` command, run in-process through `main` (plus one real subprocess): outputs are
compared with golden files in tests/golden/ (rewrite them with UPDATE_GOLDEN=1), exit codes
with the documented ones (0 ok, 1 failed, 2 input error, 3 unsupported)."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pybpf.asm import assemble
from pybpf.cli import main
from pybpf.conformance import load_data, program_bytes

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# A small program touching the instruction kinds both disassembler dialects print
# differently: immediates and registers, 32-bit ALU, a 64-bit immediate, a jump, a call.
PROGRAM = """\
mov %r0, 0
ldxb %r2, [%r1+1]
add32 %r0, %r2
lddw %r3, 0x1122334455667788
jeq %r2, 0, +2
mov %r1, %r0
call 5
exit
"""

# What `run` tests execute: no helper calls (raw programs get no helpers yet).
RUN_PROGRAM = """\
mov %r0, 0
ldxb %r2, [%r1+1]
add32 %r0, %r2
lddw %r3, 0x1122334455667788
jeq %r2, 0, +1
stxb [%r1+2], %r0
exit
"""

PASSING = "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n"
FAILING = "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n"
BROKEN = "-- asm\nmov %r0, 1\nexit\n"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run ``main(argv)`` in tmp_path with the given stdin; paths under tmp_path are shown
    as <tmp> so that goldens do not depend on where the test runs."""
    monkeypatch.chdir(tmp_path)
    # argparse wraps its usage text to the terminal width.
    monkeypatch.setenv("COLUMNS", "80")

    def run(*argv: str, stdin: bytes = b"") -> Outcome:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv))
        captured = capsys.readouterr()
        tmp = str(tmp_path)
        return Outcome(code, captured.out.replace(tmp, "<tmp>"), captured.err.replace(tmp, "<tmp>"))

    return run


def check_golden(name: str, argv: list[str], outcome: Outcome) -> None:
    text = (
        f"$ pybpf {shlex.join(argv)}\nexit {outcome.code}\n"
        f"--- stdout\n{outcome.out}--- stderr\n{outcome.err}"
    )
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"golden file {path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text()


def golden(cli, name: str, *argv: str, stdin: bytes = b"") -> Outcome:
    outcome = cli(*argv, stdin=stdin)
    check_golden(name, list(argv), outcome)
    return outcome


@pytest.fixture
def program_bin(tmp_path: Path) -> Path:
    path = tmp_path / "prog.bin"
    path.write_bytes(assemble(PROGRAM, dialect="conformance"))
    return path


@pytest.fixture
def run_bin(tmp_path: Path) -> Path:
    path = tmp_path / "run.bin"
    path.write_bytes(assemble(RUN_PROGRAM, dialect="conformance"))
    return path


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "suite"
    directory.mkdir()
    for name, text in (("pass", PASSING), ("fail", FAILING), ("broken", BROKEN)):
        (directory / f"{name}.data").write_text(text)
    return directory


# ---- golden outputs ----


@pytest.mark.parametrize("dialect", ["llvm", "conformance"])
def test_disasm_golden(cli, program_bin: Path, dialect: str) -> None:
    outcome = golden(cli, f"disasm_{dialect}", "disasm", "prog.bin", "--dialect", dialect)
    assert outcome.code == 0
    assert assemble(outcome.out, dialect=dialect) == program_bin.read_bytes()


def test_run_json_golden(cli, run_bin: Path) -> None:
    outcome = golden(cli, "run_json", "run", "run.bin", "--mem-hex", "00 07 08", "--json")
    assert outcome.code == 0
    record = json.loads(outcome.out)
    assert list(record) == ["r0", "r0_int", "insns", "mem"]
    assert record["r0_int"] == 7 and record["r0"] == "0x7" and record["mem"] == "000707"
    assert record["insns"] == 7


def test_conformance_json_golden(cli, suite_dir: Path) -> None:
    outcome = golden(cli, "conformance_json", "conformance", "suite", "--json")
    assert outcome.code == 1
    record = json.loads(outcome.out)
    assert (record["passed"], record["failed"]) == (1, 2)
    assert [r["name"] for r in record["results"]] == ["broken", "fail", "pass"]


def test_conformance_text_golden(cli, suite_dir: Path) -> None:
    outcome = golden(cli, "conformance_text", "conformance", "suite")
    assert outcome.code == 1
    assert outcome.out.splitlines()[-1] == "1 passed, 2 failed"


@pytest.mark.parametrize(
    ("name", "argv", "code"),
    [
        ("error_missing_file", ["run", "missing.bin"], 2),
        ("error_bad_hex", ["run", "prog.bin", "--mem-hex", "0x12"], 2),
        ("error_jit_engine", ["conformance", "suite", "--engine", "jit"], 3),
        ("error_usage", ["run"], 2),
    ],
)
def test_error_goldens(
    cli, program_bin: Path, suite_dir: Path, name: str, argv: list[str], code: int
) -> None:
    outcome = golden(cli, name, *argv)
    assert outcome.code == code and outcome.out == ""


def test_decode_error_golden(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.bin").write_bytes(bytes.fromhex("b700000001000000 ff00000000000000"))
    outcome = golden(cli, "error_decode", "disasm", "bad.bin")
    assert outcome.code == 2 and outcome.err.startswith("pybpf: error: pc 1: ")


# ---- conformance ----


def test_conformance_all_pass(cli, suite_dir: Path) -> None:
    outcome = cli("conformance", "suite", "--filter", "pass")
    assert (outcome.code, outcome.out) == (0, "1 passed, 0 failed\n")
    outcome = cli("conformance", "suite", "--filter", "pass.data")
    assert (outcome.code, outcome.out) == (0, "1 passed, 0 failed\n")


def test_conformance_no_match(cli, suite_dir: Path) -> None:
    outcome = cli("conformance", "suite", "--filter", "zz*")
    assert outcome.code == 2
    assert outcome.err == "pybpf: error: suite: no test file matches 'zz*.data'\n"


def test_conformance_missing_dir(cli) -> None:
    outcome = cli("conformance", "nowhere")
    assert outcome.code == 2 and outcome.err.startswith("pybpf: error: nowhere: ")


# ---- conformance-plugin ----


def plugin_stdin(text: str) -> bytes:
    return assemble(text, dialect="conformance").hex(" ").encode() + b"\n"


def test_plugin_without_memory(cli) -> None:
    outcome = cli("conformance-plugin", stdin=plugin_stdin("lddw %r0, 0xdeadbeef00000001\nexit"))
    assert (outcome.code, outcome.out, outcome.err) == (0, "deadbeef00000001\n", "")


def test_plugin_with_memory(cli) -> None:
    program = plugin_stdin("ldxh %r0, [%r1+2]\nadd %r0, %r2\nexit")
    # The way the bpf_conformance runner calls it: memory with doubled spaces, then options.
    outcome = cli("conformance-plugin", "00  01  02  03  ", "", stdin=program)
    assert (outcome.code, outcome.out) == (0, f"{0x0302 + 4:x}\n")
    outcome = cli("conformance-plugin", "00", "01", "02", "03", stdin=program)
    assert (outcome.code, outcome.out) == (0, f"{0x0302 + 4:x}\n")


def test_plugin_multiline_stdin(cli) -> None:
    code = assemble("mov %r0, 9\nexit", dialect="conformance")
    stdin = b"\n".join(code[i : i + 8].hex(" ").encode() for i in range(0, len(code), 8))
    outcome = cli("conformance-plugin", stdin=stdin)
    assert (outcome.code, outcome.out) == (0, "9\n")


def test_plugin_runtime_error(cli) -> None:
    outcome = cli("conformance-plugin", stdin=plugin_stdin("ldxw %r0, [%r1+0]\nexit"))
    assert outcome.code == 1
    assert outcome.out.strip() and outcome.err == f"pybpf: error: {outcome.out}"


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        ([], b"b7 00 0", "program on stdin: hex token 3 '0' has an odd number"),
        ([], b"\xff\xfe", "program on stdin: not hex text (byte offset 0)"),
        (["zz"], b"95 00 00 00 00 00 00 00", "memory: hex token 1 'zz'"),
    ],
)
def test_plugin_input_errors(cli, argv: list[str], stdin: bytes, message: str) -> None:
    outcome = cli("conformance-plugin", *argv, stdin=stdin)
    assert outcome.code == 2 and outcome.err.startswith(f"pybpf: error: {message}")


def test_plugin_invalid_instruction(cli) -> None:
    outcome = cli("conformance-plugin", stdin=b"ff 00 00 00 00 00 00 00")
    assert outcome.code == 2 and "pc 0" in outcome.err


# ---- asm / disasm / run ----


def test_asm_default_output(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text(PROGRAM)
    outcome = cli("asm", "p.s")
    assert (outcome.code, outcome.out, outcome.err) == (0, "", "")
    assert (tmp_path / "p.bin").read_bytes() == assemble(PROGRAM, dialect="conformance")


def test_asm_output_and_dialect(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("r0 = 5\nexit\n")
    assert cli("asm", "p.s", "-o", "out.o", "--dialect", "llvm").code == 0
    assert (tmp_path / "out.o").read_bytes() == assemble("r0 = 5\nexit\n", dialect="llvm")


def test_asm_error(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("mov %r0, 1\nbogus\n")
    outcome = cli("asm", "p.s", "--dialect", "conformance")
    assert outcome.code == 2 and outcome.err.startswith("pybpf: error: line 2")
    assert not (tmp_path / "p.bin").exists()


def test_asm_not_utf8(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_bytes(b"exit\n\xff\n")
    outcome = cli("asm", "p.s")
    assert (outcome.code, outcome.err) == (2, "pybpf: error: p.s: not UTF-8 text (byte offset 5)\n")


def test_truncated_object_is_an_input_error(cli, tmp_path: Path) -> None:
    (tmp_path / "x.o").write_bytes(b"\x7fELF" + bytes(60))
    for command in (("disasm", "x.o"), ("inspect", "x.o"), ("btf", "dump", "x.o")):
        outcome = cli(*command)
        assert outcome.code == 2 and outcome.err.startswith("pybpf: error: ")


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def calls_object(tmp_path: Path) -> Path:
    target = tmp_path / "calls.o"
    target.write_bytes((FIXTURES / "loader_calls.o").read_bytes())
    return target


def test_inspect_json_golden(cli, calls_object: Path) -> None:
    outcome = golden(cli, "cli_inspect_json", "inspect", "calls.o", "--json")
    assert outcome.code == 0
    summary = json.loads(outcome.out)
    assert {p["name"] for p in summary["programs"]} >= {"xdp_calls", "xdp_tail"}


def test_inspect_text_golden(cli, calls_object: Path) -> None:
    assert golden(cli, "cli_inspect_text", "inspect", "calls.o").code == 0


@pytest.mark.parametrize("dialect", ["llvm", "conformance"])
def test_disasm_object_golden(cli, calls_object: Path, dialect: str) -> None:
    argv = ("disasm", "calls.o", "--prog", "xdp_tail", "--dialect", dialect)
    outcome = golden(cli, f"cli_disasm_object_{dialect}", *argv)
    assert outcome.code == 0 and outcome.out.startswith("xdp_tail (section xdp, xdp):")


def test_disasm_object_unknown_program(cli, calls_object: Path) -> None:
    outcome = cli("disasm", "calls.o", "--prog", "nope")
    assert outcome.code == 2 and "no program named 'nope'" in outcome.err


def test_btf_dump_golden(cli, calls_object: Path) -> None:
    outcome = golden(cli, "cli_btf_dump", "btf", "dump", "calls.o")
    assert outcome.code == 0 and "struct xdp_md {" in outcome.out
    raw = cli("btf", "dump", "calls.o", "--raw")
    assert raw.code == 0 and raw.out.startswith("[1] ")


# ---- run OBJ.o with --ksym / --kconfig ----

PACKET_HEX = bytes(range(64)).hex()


@pytest.fixture
def kfuncs_object(tmp_path: Path) -> Path:
    """tc_wq returns 1 when its strong typeless ksym bpf_prog_active has zero low 16 bits,
    2 otherwise; the object loads only with that ksym given."""
    target = tmp_path / "kfuncs.o"
    target.write_bytes((FIXTURES / "loader_kfuncs.o").read_bytes())
    return target


@pytest.fixture
def globals_object(tmp_path: Path) -> Path:
    """socket_version prints its LINUX_KERNEL_VERSION and CONFIG_HZ kconfig externs."""
    target = tmp_path / "globals.o"
    target.write_bytes((FIXTURES / "loader_globals.o").read_bytes())
    return target


def run_json(cli, *argv: str) -> dict:
    outcome = cli(*argv, "--json")
    assert (outcome.code, outcome.err) == (0, "")
    return json.loads(outcome.out)


def test_run_without_a_strong_ksym_names_it(cli, kfuncs_object: Path) -> None:
    outcome = cli("run", "kfuncs.o", "--prog", "tc_wq", "--data-hex", PACKET_HEX)
    assert outcome.code == 2 and "ksym 'bpf_prog_active' is unknown" in outcome.err


@pytest.mark.parametrize(
    ("ksyms", "retval"),
    [
        (["bpf_prog_active=0x10000"], 1),
        (["bpf_prog_active=65536"], 1),
        (["bpf_prog_active=0x10001"], 2),
        # The last of a repeated name wins; names the object lacks are ignored, as
        # load_object ignores them.
        (["bpf_prog_active=0x10001", "bpf_prog_active=0x20000", "unused_sym=7"], 1),
        (["bpf_prog_active=0x20000", "bpf_prog_active=0x20001"], 2),
        ([" bpf_prog_active = 0XFFFFFFFFFFFF0000 "], 1),
    ],
)
def test_run_with_ksyms(cli, kfuncs_object: Path, ksyms: list[str], retval: int) -> None:
    options = [arg for k in ksyms for arg in ("--ksym", k)]
    record = run_json(cli, "run", "kfuncs.o", "--prog", "tc_wq", "--data-hex", PACKET_HEX, *options)
    assert record["retval"] == retval
    assert [e["kind"] for e in record["async_ran"]] == ["wq"]


def test_run_with_kconfig(cli, globals_object: Path) -> None:
    argv = ("run", "globals.o", "--prog", "socket_version", "--data-hex", PACKET_HEX)
    options = ("--kconfig", "CONFIG_HZ=1000", "--kconfig", "LINUX_KERNEL_VERSION=0x60800")
    record = run_json(cli, *argv, *options)
    assert record["output"] == [f"kernel {0x60800} hz 1000 len 50"]
    # A negative value is stored in the extern's width (CONFIG_HZ is an int here).
    record = run_json(cli, *argv, "--kconfig", "CONFIG_HZ=-1", "--ksym", "unused_sym=1")
    assert record["output"][0].endswith(" hz -1 len 50")


def test_run_bad_ksym_golden(cli, kfuncs_object: Path) -> None:
    argv = ("run", "kfuncs.o", "--prog", "tc_wq", "--ksym", "bpf_prog_active=0x1000x")
    outcome = golden(cli, "error_bad_ksym", *argv)
    assert outcome.code == 2 and outcome.out == ""


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--ksym", "bpf_prog_active"], "--ksym 'bpf_prog_active': expected NAME=VALUE"),
        (["--ksym", "=5"], "--ksym '=5': expected NAME=VALUE"),
        (["--ksym", "x="], "--ksym 'x=': '' is not a decimal or 0x-hex integer"),
        (["--ksym", "x=ten"], "'ten' is not a decimal or 0x-hex integer"),
        (["--ksym", "x=-1"], "--ksym 'x=-1': -1 is out of range [0, 18446744073709551615]"),
        (["--ksym", f"x={1 << 64:#x}"], "is out of range [0, 18446744073709551615]"),
        (["--kconfig", "CONFIG_HZ"], "--kconfig 'CONFIG_HZ': expected NAME=VALUE"),
        (["--kconfig", "CONFIG_HZ=1.5"], "'1.5' is not a decimal or 0x-hex integer"),
        (["--kconfig", f"CONFIG_HZ={-(1 << 63) - 1}"], "out of range [-9223372036854775808, "),
    ],
)
def test_run_malformed_assignments(
    cli, kfuncs_object: Path, option: list[str], message: str
) -> None:
    # The good ksym comes first: a malformed option fails even when the load would succeed.
    argv = ("run", "kfuncs.o", "--prog", "tc_wq", "--ksym", "bpf_prog_active=0x10000", *option)
    outcome = cli(*argv)
    assert outcome.code == 2 and outcome.out == ""
    assert outcome.err.startswith(f"pybpf: error: {option[0]} ") and outcome.err.count("\n") == 1
    assert message in outcome.err


@pytest.mark.parametrize("option", ["--ksym", "--kconfig"])
def test_run_assignments_only_for_objects(cli, program_bin: Path, option: str) -> None:
    outcome = cli("run", "prog.bin", option, "x=1")
    assert outcome.code == 2 and f"{option}: only for object files (.o)" in outcome.err


def test_run_assembly_file(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("mov %r0, %r2\nexit\n")
    (tmp_path / "mem").write_bytes(bytes(5))
    assert cli("run", "p.s").out == "r0 = 0x0\n"
    assert cli("run", "p.s", "--mem", "mem").out == "r0 = 0x5\n"
    assert cli("run", "p.s", "--mem-hex", "000102").out == "r0 = 0x3\n"


def test_run_mem_options_are_exclusive(cli, program_bin: Path) -> None:
    outcome = cli("run", "prog.bin", "--mem", "x", "--mem-hex", "00")
    assert outcome.code == 2 and "not allowed with" in outcome.err


def test_run_budget_exhausted(cli, tmp_path: Path) -> None:
    (tmp_path / "loop.s").write_text("mov %r0, 0\nadd %r0, 1\nja -2\nexit\n")
    outcome = cli("run", "loop.s", "--budget", "100")
    assert outcome.code == 1 and outcome.err.startswith("pybpf: error: ")


@pytest.mark.parametrize("budget", ["0", "-3", "ten"])
def test_run_bad_budget(cli, program_bin: Path, budget: str) -> None:
    outcome = cli("run", "prog.bin", "--budget", budget)
    assert outcome.code == 2 and "--budget" in outcome.err


def test_run_trap(cli, tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("ldxw %r0, [%r1+64]\nexit\n")
    outcome = cli("run", "p.s", "--mem-hex", "00")
    assert outcome.code == 1 and "pc 0" in outcome.err


def test_run_trace(cli, run_bin: Path) -> None:
    outcome = cli("run", "run.bin", "--mem-hex", "00 03 00", "--trace")
    assert outcome.code == 0 and outcome.out == "r0 = 0x3\n"
    lines = outcome.err.splitlines()
    assert len(lines) == 7
    assert lines[0].split(":")[0].strip() == "0"
    assert "exit" in lines[-1]


def test_version_and_usage(cli) -> None:
    outcome = cli("--version")
    assert outcome.code == 0 and outcome.out.startswith("pybpf ")
    assert cli().code == 2
    assert cli("frobnicate").code == 2
    assert cli("disasm", "prog.bin", "--dialect", "att").code == 2


def test_subprocess_smoke(tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("mov %r0, 42\nexit\n")
    done = subprocess.run(
        [sys.executable, "-m", "pybpf", "run", str(tmp_path / "p.s"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["r0_int"] == 42
    missing = subprocess.run(
        [sys.executable, "-m", "pybpf", "disasm", str(tmp_path / "nothing.bin")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


@pytest.mark.skipif(not SUITE.is_dir(), reason=f"conformance suite not found at {SUITE}")
def test_plugin_protocol_on_suite(cli) -> None:
    """Every suite case through the plugin, fed the way the bpf_conformance runner feeds it:
    memory as argv[1] ("xx  " per byte), options as argv[2], the program on stdin."""
    wrong = []
    for path in sorted(SUITE.glob("*.data")):
        case = load_data(path)
        mem = "".join(f"{byte:02x}  " for byte in case.mem)
        stdin = "".join(f"{byte:02x}  " for byte in program_bytes(case)).encode() + b"\n"
        outcome = cli("conformance-plugin", mem, "", stdin=stdin)
        if outcome.code != 0 or int(outcome.out, 16) != case.result:
            wrong.append(f"{case.name}: exit {outcome.code}, {outcome.out!r} {outcome.err!r}")
    assert wrong == []


def test_plugin_subprocess(tmp_path: Path) -> None:
    program = plugin_stdin("ldxb %r0, [%r1+1]\nexit")
    done = subprocess.run(
        [sys.executable, "-m", "pybpf", "conformance-plugin", "00  2a  ", ""],
        input=program,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"2a\n", b"")

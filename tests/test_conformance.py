"""The bpf_conformance `.data` parser and runner: every file of the suite parses and passes,
and the parser refuses malformed files with the file and line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.conformance import (
    CONFORMANCE_HELPERS,
    ConformanceCase,
    ConformanceFormatError,
    hex_bytes,
    load_data,
    parse_data,
    program_bytes,
    run_case,
    run_dir,
)
from pybpf.errors import BpfError, UnsupportedError

SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
SUITE_FILES = sorted(SUITE.glob("*.data")) if SUITE.is_dir() else []
NO_SUITE = pytest.mark.skipif(not SUITE_FILES, reason=f"conformance suite not found at {SUITE}")
EXPECTED_SUITE_SIZE = 313


def suite_params() -> list:
    if not SUITE_FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no suite at {SUITE}"))]
    return [pytest.param(path, id=path.stem) for path in SUITE_FILES]


# ---- the suite itself ----


@pytest.mark.parametrize("path", suite_params())
def test_suite_file_parses(path: Path) -> None:
    case = load_data(path)
    assert case.name == path.stem
    assert case.result is not None and 0 <= case.result < 1 << 64
    assert case.asm is not None or case.raw is not None
    if case.raw is not None:
        assert len(case.raw) % 8 == 0 and case.raw
    sections = {line.strip() for line in path.read_text().splitlines() if line.startswith("--")}
    assert bool(case.mem) == ("-- mem" in sections)


@pytest.mark.parametrize("path", suite_params())
def test_suite_file_passes(path: Path) -> None:
    result = run_case(load_data(path))
    assert result.passed, f"{result.name}: {result.reason}"
    assert result.got == result.expected


@NO_SUITE
def test_run_dir_whole_suite() -> None:
    results = run_dir(SUITE)
    assert len(results) == EXPECTED_SUITE_SIZE
    failed = [f"{r.name}: {r.reason}" for r in results if not r.passed]
    assert failed == []


@NO_SUITE
def test_raw_section_replaces_asm() -> None:
    case = load_data(SUITE / "lddw.data")
    assert case.asm is not None and case.raw is not None
    assert program_bytes(case) == case.raw
    assert case.raw[:8] == struct.pack("<Q", 0x5566778800000018)


# ---- the parser on small texts ----

MINIMAL = """\
# Copyright header
# SPDX-License-Identifier: MIT
-- asm
mov %r0, 1   # a comment
exit
-- result
0x1
"""


def test_parse_minimal() -> None:
    case = parse_data(MINIMAL, "dir/minimal.data")
    assert case == ConformanceCase(
        name="minimal",
        asm="mov %r0, 1\nexit\n",
        raw=None,
        mem=b"",
        result=1,
        error=None,
        path="dir/minimal.data",
        asm_line=4,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x10", 16),
        ("0X10", 16),
        ("10", 10),
        ("0", 0),
        ("0xFFFFFFFFFFFFFFFF", (1 << 64) - 1),
        ("-1", (1 << 64) - 1),
        ("-0x8000000000000000", 1 << 63),
        ("18446744073709551615", (1 << 64) - 1),
    ],
)
def test_result_numbers(text: str, value: int) -> None:
    assert parse_data(f"-- asm\nexit\n-- result\n{text}\n").result == value


def test_sections_in_any_order_and_notes_ignored() -> None:
    text = """\
-- c
#include <stdint.h>
uint64_t entry(void) { return 2; }
-- asm
mov %r0, %r2
exit
-- mem
00 01
02
-- no register offset
call instruction
-- result
2
"""
    case = parse_data(text)
    assert case.mem == b"\x00\x01\x02"
    assert case.asm == "mov %r0, %r2\nexit\n"
    assert case.result == 2


def test_raw_words_hex_and_decimal() -> None:
    case = parse_data("-- raw\n0x00000001000000b7 149\n-- result\n0x1\n")
    assert case.asm is None
    assert case.raw == struct.pack("<QQ", 0x1000000B7, 0x95)


def test_error_section_is_kept_verbatim() -> None:
    case = parse_data("-- asm\nexit\n-- error\nFailed to load code: # not a comment\n")
    assert case.result is None
    assert case.error == "Failed to load code: # not a comment"


def test_asm_keeps_line_numbers() -> None:
    case = parse_data("# header\n-- asm\nmov %r0, 1\n\n# comment\nexit\n-- result\n1\n")
    assert case.asm_line == 3
    assert case.asm is not None and case.asm.splitlines() == ["mov %r0, 1", "", "", "exit"]


def test_crlf_line_endings() -> None:
    case = parse_data("-- asm\r\nexit\r\n-- mem\r\nff\r\n-- result\r\n0x0\r\n")
    assert case.mem == b"\xff" and case.result == 0 and case.asm == "exit\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("-- asm\nexit\n-- results\n0x1\n", 3, "unknown section '-- results'"),
        ("-- asm\nexit\n-- asm\nexit\n-- result\n0\n", 3, "appears twice"),
        ("stray\n-- asm\nexit\n-- result\n0\n", 1, "text before the first section"),
        ("-- result\n0x1\n", 0, "no -- asm or -- raw section"),
        ("-- asm\nexit\n", 0, "no -- result or -- error section"),
        ("-- asm\nexit\n-- result\n0x1g\n", 4, "result '0x1g' is not a hex number"),
        ("-- asm\nexit\n-- result\n12a\n", 4, "result '12a' is not a decimal number"),
        ("-- asm\nexit\n-- result\n0x\n", 4, "is not a hex number"),
        ("-- asm\nexit\n-- result\n1\n2\n", 5, "exactly one number"),
        ("-- asm\nexit\n-- result\n1 2\n", 4, "exactly one number"),
        ("-- asm\nexit\n-- result\n", 0, "exactly one number"),
        ("-- asm\nexit\n-- result\n0x10000000000000000\n", 4, "does not fit in 64 bits"),
        ("-- asm\nexit\n-- result\n-9223372036854775809\n", 4, "does not fit in 64 bits"),
        ("-- asm\nexit\n-- mem\n00 0g\n-- result\n0\n", 4, "memory byte '0g' is not hex"),
        ("-- asm\nexit\n-- mem\n00\n123\n-- result\n0\n", 5, "more than two hex digits"),
        ("-- raw\n0x95 zz\n-- result\n0\n", 2, "instruction word 'zz' is not a decimal"),
        ("-- raw\n0x1ffffffffffffffff\n-- result\n0\n", 2, "does not fit in 64 bits"),
        ("-- raw\n# nothing\n-- result\n0\n", 0, "no instruction words"),
    ],
)
def test_malformed(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConformanceFormatError) as info:
        parse_data(text, "t/bad.data")
    error = info.value
    assert isinstance(error, BpfError) and error.exit_code == 2
    assert error.line == line and error.path == "t/bad.data"
    assert reason in error.reason
    prefix = f"t/bad.data:{line}: " if line else "t/bad.data: "
    assert str(error) == prefix + error.reason


def test_malformed_without_path() -> None:
    with pytest.raises(ConformanceFormatError, match=r"^line 3: unknown section"):
        parse_data("-- asm\nexit\n-- what\n")


def test_load_data_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.data"
    path.write_bytes(b"-- asm\nexit\n-- result\n\xff\n")
    with pytest.raises(ConformanceFormatError, match=r"bin\.data:4: not UTF-8 text") as info:
        load_data(path)
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b""),
        ("00 1a FF", b"\x00\x1a\xff"),
        ("001aff", b"\x00\x1a\xff"),
        ("  00\n\t01  ", b"\x00\x01"),
        ("0", "hex token 1 '0' has an odd number of hex digits"),
        ("00 0x12", "hex token 2 '0x12' has a character that is not a hex digit"),
        ("00 123", "hex token 2 '123' has an odd number of hex digits"),
        ("zz", "hex token 1 'zz' has a character that is not a hex digit"),
    ],
)
def test_hex_bytes(text: str, expected: bytes | str) -> None:
    assert hex_bytes(text) == expected


_LINES = st.sampled_from(
    ["-- asm", "-- raw", "-- mem", "-- result", "-- error", "-- c", "-- bogus", "exit", "#", ""]
) | st.text(alphabet="0123456789abcdefx -#%r,[]+", max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=12))
def test_parser_never_raises_anything_else(lines: list[str]) -> None:
    try:
        case = parse_data("\n".join(lines), "fuzz.data")
    except ConformanceFormatError as e:
        assert e.path == "fuzz.data" and e.reason
        return
    assert case.asm is not None or case.raw is not None
    assert case.result is not None or case.error is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_hex_bytes_total(text: str) -> None:
    decoded = hex_bytes(text)
    if isinstance(decoded, bytes):
        assert decoded.hex() == "".join(text.split()).lower()


# ---- the runner ----


def test_helper_5_returns_its_first_argument() -> None:
    assert CONFORMANCE_HELPERS[5](7, 1, 2, 3, 4) == 7


def test_run_case_pass_and_fail() -> None:
    ok = run_case(parse_data("-- asm\nmov %r0, 3\nexit\n-- result\n3\n", "ok.data"))
    assert (ok.name, ok.passed, ok.expected, ok.got, ok.error, ok.reason) == (
        "ok",
        True,
        3,
        3,
        None,
        "",
    )
    bad = run_case(parse_data("-- asm\nmov %r0, 3\nexit\n-- result\n4\n", "bad.data"))
    assert (bad.passed, bad.got, bad.reason) == (False, 3, "expected 0x4, got 0x3")


def test_run_case_compares_all_64_bits() -> None:
    text = "-- asm\nlddw %r0, 0x100000003\nexit\n-- result\n0x3\n"
    result = run_case(parse_data(text))
    assert not result.passed and result.got == 0x100000003


def test_run_case_uses_memory_and_helper() -> None:
    text = "-- asm\nldxb %r1, [%r1+1]\ncall 5\nexit\n-- mem\n00 2a\n-- result\n0x2a\n"
    assert run_case(parse_data(text)).passed


def test_run_case_assembler_error_names_the_file_line() -> None:
    text = "# header\n-- asm\nmov %r0, 1\nbogus %r0\nexit\n-- result\n1\n"
    result = run_case(parse_data(text, "asmerr.data"))
    assert not result.passed and result.got is None
    assert result.error is not None and result.error.startswith("line 4")
    assert result.reason == result.error


def test_run_case_trap_fails_the_case() -> None:
    result = run_case(parse_data("-- asm\nldxw %r0, [%r1+0]\nexit\n-- result\n0\n"))
    assert not result.passed and result.got is None and result.error


def test_run_case_expected_error() -> None:
    failing = parse_data("-- raw\n0x00000000000000ff\n-- error\nbad opcode\n")
    assert run_case(failing).passed
    succeeding = parse_data("-- asm\nmov %r0, 1\nexit\n-- error\nsomething\n")
    result = run_case(succeeding)
    assert not result.passed and result.reason == "expected an error, got r0 = 0x1"


def test_jit_engine_is_unsupported(tmp_path: Path) -> None:
    case = parse_data(MINIMAL)
    with pytest.raises(UnsupportedError, match="jit engine") as info:
        run_case(case, engine="jit")
    assert info.value.exit_code == 3
    with pytest.raises(UnsupportedError, match="jit engine"):
        run_dir(tmp_path, engine="jit")
    with pytest.raises(UnsupportedError, match="engine 'llvm'"):
        run_case(case, engine="llvm")


def test_run_dir(tmp_path: Path) -> None:
    (tmp_path / "b_fail.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n2\n")
    (tmp_path / "a_pass.data").write_text(MINIMAL)
    (tmp_path / "c_malformed.data").write_text("-- asm\nexit\n")
    (tmp_path / "notes.txt").write_text("not a test")
    results = run_dir(tmp_path)
    assert [(r.name, r.passed) for r in results] == [
        ("a_pass", True),
        ("b_fail", False),
        ("c_malformed", False),
    ]
    assert results[2].error is not None and "no -- result or -- error" in results[2].error
    assert [r.name for r in run_dir(tmp_path, pattern="a_*.data")] == ["a_pass"]


def test_run_dir_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_dir(tmp_path / "nowhere")

"""The bprintf engine on its own: the kernel's conversion subset against C printf semantics,
the 512-byte argument buffer, and the %p family."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.helpers.printf import MAX_BPRINTF_BIN_ARGS, bprintf

STRINGS = {0x100: b"hello\0", 0x200: b"x" * 600 + b"\0"}


def read_string(addr: int, limit: int) -> bytes | None:
    s = STRINGS.get(addr)
    if s is None:
        return None
    body = s[: s.index(0)]
    return body[: limit - 1] + b"\0" if len(body) >= limit else body + b"\0"


def read_mem(addr: int, n: int) -> bytes | None:
    return bytes(range(1, n + 1)) if addr == 0x300 else None


def fmt(f: bytes, *args: int) -> bytes | int:
    return bprintf(f, list(args), read_string, read_mem)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


def c_snprintf(f: bytes, value: int, bits: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    arg = ctypes.c_longlong(value) if bits == 64 else ctypes.c_int(value)
    n = _LIBC.snprintf(buf, 256, f, arg)
    return buf.raw[:n]


@settings(max_examples=150, deadline=None)
@given(
    flags=st.text(alphabet="0+- ", max_size=3),
    width=st.one_of(st.just(""), st.integers(1, 20).map(str)),
    length=st.sampled_from(["", "l", "ll"]),
    conv=st.sampled_from("diuxX"),
    value=st.integers(-(1 << 63), (1 << 63) - 1),
)
def test_integer_conversions_match_c(
    flags: str, width: str, length: str, conv: str, value: int
) -> None:
    spec = f"%{flags}{width}{length}{conv}".encode()
    bits = 64 if length else 32
    expected_value = value if bits == 64 else ctypes.c_int(value & 0xFFFFFFFF).value
    # C leaves '+' and ' ' out of unsigned conversions, as the kernel's number() does.
    assert fmt(spec, value & (1 << 64) - 1) == c_snprintf(spec, expected_value, bits)


def test_strings_chars_and_pointers() -> None:
    assert fmt(b"[%s] [%8s] [%-8s|]", 0x100, 0x100, 0x100) == b"[hello] [   hello] [hello   |]"
    assert fmt(b"%pks %pus", 0x100, 0x100) == b"hello hello"
    assert fmt(b"%s.", 0x999) == b"."  # an unreadable string prints as empty
    assert fmt(b"%c", 0x141) == b"A"
    assert fmt(b"%pS", 0x1234) == b"0x0000000000001234"
    assert fmt(b"%pB", 0x10) == b"0x0000000000000010"
    assert fmt(b"%pK", 0) == b"(null)"
    assert fmt(b"%pI4", 0x300) == b"1.2.3.4"
    assert fmt(b"%pi4", 0x999) == b"000.000.000.000"  # unreadable address: zeros
    assert fmt(b"%pI6c!", 0x300) == b"0102:0304:0506:0708:090a:0b0c:0d0e:0f10!"  # 'c' skipped
    assert fmt(b"100%% %d%%", 5) == b"100% 5%"


def test_long_strings_are_cut_by_the_argument_buffer() -> None:
    out = fmt(b"%s", 0x200)
    assert out == b"x" * (MAX_BPRINTF_BIN_ARGS - 1)
    assert fmt(b"%s%d", 0x200, 1) == -errno.ENOSPC  # no room left for the int


@pytest.mark.parametrize(
    "bad",
    [b"%", b"%5", b"%l", b"%lz", b"%q", b"%.1d", b"%#x", b"%*d", b"%n", b"%pX", b"%pI5", b"a\x01b"],
)
def test_rejected_formats(bad: bytes) -> None:
    assert fmt(bad, 1, 2) == -errno.EINVAL


def test_too_many_conversions() -> None:
    assert fmt(b"%d %d", 1) == -errno.EINVAL
    assert fmt(b"plain") == b"plain"
    assert fmt(b"caf\xc3\xa9 %d", 1) == "café 1".encode()  # UTF-8 passes through

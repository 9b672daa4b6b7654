"""Malformed .BTF / .BTF.ext: each defect is a `BtfError` with the section and byte offset,
and random mutations of real sections raise nothing else and never hang."""

from __future__ import annotations

import contextlib
import struct

import pytest
from btf_support import btf_bytes, btf_ext_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpf.btf import (
    Btf,
    Kind,
    core_resolve,
    decode_value,
    dump_c,
    dump_raw,
    parse_btf,
    parse_btf_ext,
)
from pybpf.btf.parse import HEADER_SIZE
from pybpf.btf.types import MAX_DEPTH
from pybpf.errors import BtfError

STRINGS = b"\0int\0a\0next\0node\0"
INT_NAME, A_NAME, NEXT_NAME, NODE_NAME = 1, 5, 7, 12


def rec(name: int, kind: int, vlen: int = 0, size_or_type: int = 0, *, kflag: int = 0) -> bytes:
    return struct.pack("<III", name, (kflag << 31) | (kind << 24) | vlen, size_or_type)


def int_type() -> bytes:
    return rec(INT_NAME, Kind.INT, 0, 4) + struct.pack("<I", (1 << 24) | 32)


def blob(*types: bytes, strings: bytes = STRINGS, version: int = 1, hdr_len: int = 24) -> bytes:
    body = b"".join(types)
    header = struct.pack(
        "<HBBIIIII", 0xEB9F, version, 0, hdr_len, 0, len(body), len(body), len(strings)
    )
    return header + bytes(hdr_len - HEADER_SIZE) + body + strings


def test_builder_makes_valid_btf() -> None:
    btf = parse_btf(blob(int_type(), rec(0, Kind.PTR, 0, 1)))
    assert btf.type_name(2) == "int *"


def test_pointer_cycle_through_a_struct_is_fine() -> None:
    node = rec(NODE_NAME, Kind.STRUCT, 1, 8) + struct.pack("<III", NEXT_NAME, 2, 0)
    btf = parse_btf(blob(node, rec(0, Kind.PTR, 0, 1)))
    assert btf.type_name(2) == "struct node *" and btf.size_of(1) == 8


def _error(data: bytes) -> BtfError:
    with pytest.raises(BtfError) as info:
        parse_btf(data)
    assert info.value.section == ".BTF"
    return info.value


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "too short", 0),
        (b"\x12\x34" + bytes(30), "bad magic", 0),
        (blob(int_type())[:10], "header truncated", 0),
        (blob(int_type(), version=2), "unsupported BTF version 2", 2),
        (blob(int_type(), hdr_len=28)[:4] + struct.pack("<I", 999) + bytes(40), "header length", 4),
        (
            blob(int_type(), hdr_len=28)[:24] + b"\1\0\0\0" + blob(int_type())[24:],
            "unknown header fields",
            24,
        ),
        (blob(int_type(), strings=b"x\0"), "start and end with NUL", 40),
        (blob(int_type(), strings=b"\0int"), "start and end with NUL", 40),
        (blob(rec(0, 20)), "unknown kind 20", 28),
        (blob(rec(0, 31)), "unknown kind 31", 28),
        (blob(rec(0, 0)), "unknown kind 0", 28),
        (blob(rec(0, Kind.PTR, 0, 1) + b"\0\0\0\1"), "truncated", 36),
        (blob(rec(0, Kind.STRUCT, 0xFFFF, 4)), "record truncated", 24),
        (blob(rec(0, Kind.ENUM, 0x8000, 4) + bytes(16)), "record truncated", 24),
        (blob(rec(0, Kind.PTR, 3, 0)), "must have vlen 0", 28),
        (blob(rec(0, Kind.PTR, 0, 7)), "missing type [7]", 24),
        (
            blob(int_type(), rec(0, Kind.ARRAY) + struct.pack("<III", 1, 9, 4)),
            "missing type [9]",
            40,
        ),
        (blob(rec(999, Kind.PTR, 0, 0)), "past the string table", 24),
        (blob(int_type(), rec(0, Kind.TYPEDEF, 0, 1)), "TYPEDEF has no name", 40),
        (blob(rec(A_NAME, Kind.TYPEDEF, 0, 1)), "reference loop", 24),
        (blob(rec(0, Kind.PTR, 0, 2), rec(0, Kind.PTR, 0, 1)), "reference loop", 24),
        (blob(rec(0, Kind.CONST, 0, 2), rec(0, Kind.VOLATILE, 0, 1)), "reference loop", 24),
        (
            blob(rec(NODE_NAME, Kind.STRUCT, 1, 8) + struct.pack("<III", NEXT_NAME, 1, 0)),
            "reference loop",
            24,
        ),
        (
            blob(rec(0, Kind.FUNC_PROTO, 1, 0) + struct.pack("<II", 0, 2), rec(0, Kind.PTR, 0, 1)),
            "reference loop",
            24,
        ),
        (blob(rec(INT_NAME, Kind.INT, 0, 3) + struct.pack("<I", 24)), "invalid size", 36),
        (blob(rec(INT_NAME, Kind.INT, 0, 4) + struct.pack("<I", 33)), "exceed size", 36),
        (
            blob(rec(INT_NAME, Kind.INT, 0, 4) + struct.pack("<I", (3 << 24) | 8)),
            "invalid encoding",
            36,
        ),
        (blob(rec(INT_NAME, Kind.INT, 0, 1) + struct.pack("<I", (4 << 16) | 8)), "exceed size", 36),
        (blob(rec(0, Kind.ENUM, 0, 3)), "invalid size", 32),
        (blob(rec(A_NAME, Kind.FLOAT, 0, 5)), "invalid size", 32),
        (blob(int_type(), rec(A_NAME, Kind.VAR, 0, 1) + struct.pack("<I", 7)), "linkage", 52),
        (blob(int_type(), rec(A_NAME, Kind.FUNC, 5, 1)), "linkage", 44),
        (
            blob(
                int_type(), rec(NODE_NAME, Kind.STRUCT, 1, 4) + struct.pack("<III", A_NAME, 1, 64)
            ),
            "outside",
            52,
        ),
        (
            blob(int_type(), rec(A_NAME, Kind.DECL_TAG, 0, 1) + struct.pack("<i", 3)),
            "component 3 out of range",
            40,
        ),
        (
            blob(int_type(), rec(A_NAME, Kind.DECL_TAG, 0, 1) + struct.pack("<i", -2)),
            "component_idx",
            52,
        ),
        (blob(struct.pack("<III", 0, (Kind.PTR << 24) | 0x10000, 0)), "reserved info bits", 28),
    ],
)
def test_malformed_btf(data: bytes, message: str, offset: int) -> None:
    err = _error(data)
    assert message in err.reason
    assert err.offset == offset


def test_too_deep_chains_are_refused() -> None:
    chain = [int_type()] + [rec(0, Kind.CONST, 0, i) for i in range(1, MAX_DEPTH + 5)]
    assert "deeper than" in _error(blob(*chain)).reason
    ok = [int_type()] + [rec(0, Kind.CONST, 0, i) for i in range(1, MAX_DEPTH // 2)]
    assert parse_btf(blob(*ok)).resolve(MAX_DEPTH // 2 - 1).name == "int"


def test_truncation_at_every_record_boundary() -> None:
    data = btf_bytes("btf_core_target.o")
    btf = parse_btf(data)
    header_cuts = range(0, HEADER_SIZE + 1, 4)
    record_cuts = [t.offset for t in btf.types[1:]] + [t.offset + 6 for t in btf.types[1:]]
    for cut in [*header_cuts, *record_cuts, len(data) - 1]:
        with pytest.raises(BtfError):
            parse_btf(data[:cut])


EXT_HEADER = struct.Struct("<HBBIIIIIII")


def _ext(btf_data: bytes, *, func: bytes = b"", line: bytes = b"", core: bytes = b"") -> bytes:
    body = func + line + core
    header = EXT_HEADER.pack(
        0xEB9F, 1, 0, 32, 0, len(func), len(func), len(line), len(func) + len(line), len(core)
    )
    return header + body


def _sec(rec_size: int, name_off: int, *records: bytes) -> bytes:
    return struct.pack("<III", rec_size, name_off, len(records)) + b"".join(records)


@pytest.mark.parametrize(
    ("ext", "message", "offset"),
    [
        (b"\0\0", "bad magic", 0),
        (EXT_HEADER.pack(0xEB9F, 1, 0, 32, 0, 0, 0, 0, 0, 0)[:6], "header truncated", 0),
        (EXT_HEADER.pack(0xEB9F, 3, 0, 32, 0, 0, 0, 0, 0, 0), "version 3", 2),
        (EXT_HEADER.pack(0xEB9F, 1, 0, 12, 0, 0, 0, 0, 0, 0), "header length", 4),
        (EXT_HEADER.pack(0xEB9F, 1, 0, 32, 0, 64, 0, 0, 0, 0), "past the end", 8),
        (_ext(b"", func=_sec(4, INT_NAME, b"")[:4] + b"\0" * 8), "record size 4", 32),
        (_ext(b"", func=_sec(8, INT_NAME, struct.pack("<II", 12, 1))), "multiple of 8", 44),
        (_ext(b"", func=_sec(8, INT_NAME, struct.pack("<II", 8, 77))), "missing type [77]", 44),
        (_ext(b"", func=_sec(8, 500, struct.pack("<II", 8, 1))), "past the string table", 36),
        (_ext(b"", func=struct.pack("<III", 8, INT_NAME, 0)), "has no records", 36),
        (_ext(b"", func=struct.pack("<III", 8, INT_NAME, 1000)), "overrun", 44),
        (
            _ext(b"", line=_sec(16, INT_NAME, struct.pack("<IIII", 0, 900, 0, 0))),
            "line_info file name",
            44,
        ),
        (
            _ext(b"", core=_sec(16, INT_NAME, struct.pack("<IIII", 0, 1, A_NAME, 13))),
            "unknown kind 13",
            56,
        ),
        (
            _ext(b"", core=_sec(16, INT_NAME, struct.pack("<IIII", 0, 1, 300, 0))),
            "CO-RE access string",
            44,
        ),
    ],
)
def test_malformed_btf_ext(ext: bytes, message: str, offset: int) -> None:
    btf = parse_btf(blob(int_type()))
    with pytest.raises(BtfError) as info:
        parse_btf_ext(ext, btf)
    assert message in info.value.reason
    assert (info.value.section, info.value.offset) == (".BTF.ext", offset)


def _exercise(btf: Btf) -> None:
    """Everything downstream code does with a parsed Btf must also fail only with BtfError."""
    dump_raw(btf)
    for t in btf.types:
        btf.type_name(t.id)
        with contextlib.suppress(BtfError):
            decode_value(btf, t.id, bytes(btf.size_of(t.id)) if btf.size_of(t.id) < 4096 else b"")
    with contextlib.suppress(BtfError):
        dump_c(btf)


mutation = st.lists(
    st.tuples(st.integers(min_value=0, max_value=1 << 16), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(data)
    for pos, value in flips:
        raw[pos % len(raw)] = value
    return bytes(raw[:cut] if cut is not None else raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=mutation,
    cut=st.none() | st.integers(min_value=0, max_value=4096),
    name=st.sampled_from(["btf_kinds.o", "btf_core.o"]),
)
def test_fuzzed_btf_raises_only_btf_error(
    flips: list[tuple[int, int]], cut: int | None, name: str
) -> None:
    try:
        btf = parse_btf(_mutate(btf_bytes(name), flips, cut))
    except BtfError:
        return
    with contextlib.suppress(BtfError):
        _exercise(btf)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=mutation, cut=st.none() | st.integers(min_value=0, max_value=4096))
def test_fuzzed_btf_ext_raises_only_btf_error(
    flips: list[tuple[int, int]], cut: int | None
) -> None:
    local = parse_btf(btf_bytes("btf_core.o"))
    target = parse_btf(btf_bytes("btf_core_target.o"))
    try:
        ext = parse_btf_ext(_mutate(btf_ext_bytes("btf_core.o"), flips, cut), local)
    except BtfError:
        return
    for relos in ext.core_relos.values():
        for relo in relos:
            with contextlib.suppress(BtfError):
                core_resolve(relo, local, target)

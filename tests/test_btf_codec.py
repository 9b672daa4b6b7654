"""Codecs: Python values <-> bytes through BTF, checked against clang's own initializer bytes."""

from __future__ import annotations

import pytest
from btf_support import FIXTURES, btf_bytes, read_sections, symbols
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.btf import Btf, IntEncoding, Kind, decode_value, encode_value, parse_btf
from pybpf.errors import BtfError

BTF = parse_btf(btf_bytes("btf_kinds.o"))
RECORD = BTF.find("record", Kind.STRUCT)
assert RECORD is not None


def _global_rec_bytes() -> bytes:
    data = read_sections(FIXTURES / "btf_kinds.o")[".data"].data
    offset = symbols(FIXTURES / "btf_kinds.o")["global_rec"][1]
    return data[offset : offset + 152]


def test_decodes_the_compiler_initializer() -> None:
    value = decode_value(BTF, RECORD.id, _global_rec_bytes())
    assert isinstance(value, dict)
    assert value["count"] == 3 and value["limit"] == 9
    assert value["color"] == -3 and value["big"] == 0x123456789A
    assert value["flags"] == {"a": 5, "b": 17, "c": -20, "d": 200, "e": True}
    assert value["num"]["i"] == -2 and value["num"]["raw"] == b"\xfe\xff\xff\xff"
    assert value["matrix"] == [[1, -2, 3], [4, 5, -6]]
    assert value["name"] == b"pybpf\0\0\0"
    assert value["ratio"] == 0.5 and value["tagged"] == -7
    assert value["point"] == {"x": 65535, "y": 2}
    assert value["sc"] == -128 and value["u64"] == 0xFEDCBA9876543210
    assert value["op"] == 0 and value["uptr"] == 0


def test_encodes_the_compiler_initializer() -> None:
    value = {
        "count": 3,
        "limit": 9,
        "color": "BLUE",
        "big": "HUGE",
        "flags": {"a": 5, "b": 17, "c": -20, "d": 200, "e": True},
        "num": {"i": -2},
        "matrix": [[1, -2, 3], [4, 5, -6]],
        "name": "pybpf",
        "ratio": 0.5,
        "tagged": -7,
        "point": {"x": 65535, "y": 2},
        "sc": -128,
        "u64": 0xFEDCBA9876543210,
    }
    assert encode_value(BTF, RECORD.id, value) == _global_rec_bytes()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"count": -1}, "does not fit"),
        ({"sc": 128}, "does not fit"),
        ({"flags": {"a": 8}}, "does not fit"),
        ({"flags": {"c": -65}}, "does not fit"),
        ({"color": "PURPLE"}, "no enumerator named 'PURPLE'"),
        ({"name": "much too long"}, "do not fit"),
        ({"matrix": [[1, 2, 3]] * 3}, "do not fit"),
        ({"nope": 1}, "no member named 'nope'"),
        ({"count": "3"}, "expected an integer"),
        ({"ratio": "x"}, "expected a float"),
        ({"point": [1, 2]}, "expected a dict"),
        ([1, 2], "expected a dict"),
        (b"\0" * 3, "needs 152 bytes"),
    ],
)
def test_rejects_values_that_do_not_fit(value: object, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        encode_value(BTF, RECORD.id, value)


def test_decode_checks_length_and_kind() -> None:
    with pytest.raises(BtfError, match="needs 152 bytes"):
        decode_value(BTF, RECORD.id, b"\0")
    fwd = BTF.find("opaque", Kind.FWD)
    assert fwd is not None
    with pytest.raises(BtfError, match="no size"):
        decode_value(BTF, fwd.id, b"")


def test_datasec_values() -> None:
    btf = parse_btf(btf_bytes("btf_kinds.o"))
    sections = read_sections(FIXTURES / "btf_kinds.o")
    syms = symbols(FIXTURES / "btf_kinds.o")
    index = sections[".data"].index
    data = sections[".data"].data
    btf.fixup_datasec(".data", len(data), {n: v for n, (s, v) in syms.items() if s == index})
    sec = btf.datasec(".data")
    assert sec is not None
    values = decode_value(btf, sec.id, data)
    assert isinstance(values, dict)
    assert values["data_counter"] == 7 and values["ro_msg"] == b"hi\0"
    assert encode_value(btf, sec.id, values) == data


def _strategy(btf: Btf, type_id: int, bits: int = 0, signed: bool = False) -> st.SearchStrategy:
    """Hypothesis values that a type can hold, in decode_value's canonical form."""
    if bits:
        low = -(1 << (bits - 1)) if signed else 0
        return st.integers(low, (1 << (bits - 1 if signed else bits)) - 1)
    t = btf.resolve(type_id)
    if t.kind is Kind.INT:
        if t.int_encoding & IntEncoding.BOOL:
            return st.booleans()
        return _strategy(btf, t.id, t.int_bits, t.is_signed)
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return _strategy(btf, t.id, 8 * t.size, t.is_signed)
    if t.kind is Kind.PTR:
        return _strategy(btf, t.id, 64)
    if t.kind is Kind.FLOAT:
        width = 32 if t.size == 4 else 64
        return st.floats(width=width, allow_nan=False)
    if t.kind is Kind.ARRAY and t.array is not None:
        elem = btf.resolve(t.array[0])
        if elem.kind is Kind.INT and elem.size == 1:
            return st.binary(min_size=t.array[2], max_size=t.array[2])
        inner = _strategy(btf, t.array[0])
        return st.lists(inner, min_size=t.array[2], max_size=t.array[2])
    assert t.kind is Kind.STRUCT, t
    fields = {}
    for m in t.members:
        if not m.name:
            continue
        mt = btf.resolve(m.type_id)
        if m.bitfield_size:
            is_bool = mt.kind is Kind.INT and bool(mt.int_encoding & IntEncoding.BOOL)
            fields[m.name] = (
                st.booleans() if is_bool else _strategy(btf, 0, m.bitfield_size, mt.is_signed)
            )
        elif mt.kind is not Kind.UNION:
            fields[m.name] = _strategy(btf, m.type_id)
    return st.fixed_dictionaries(fields)


@settings(max_examples=150, deadline=None)
@given(value=_strategy(BTF, RECORD.id))
def test_struct_round_trip(value: dict[str, object]) -> None:
    raw = encode_value(BTF, RECORD.id, value)
    assert len(raw) == 152
    back = decode_value(BTF, RECORD.id, raw)
    assert isinstance(back, dict)
    # Floats are drawn at their BTF width, so they survive the trip exactly.
    assert {key: back[key] for key in value} == value
    assert encode_value(BTF, RECORD.id, back) == raw


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(min_size=4, max_size=4))
def test_bitfield_struct_bytes_round_trip(raw: bytes) -> None:
    flags = BTF.find("flags", Kind.STRUCT)
    assert flags is not None
    value = decode_value(BTF, flags.id, raw)
    again = encode_value(BTF, flags.id, value)
    # Only the padding bit between c (bits 8..14) and d (bits 16..23) and the 7 bits after e
    # carry no member; every other bit survives the trip.
    mask = int.from_bytes(b"\xff\x7f\xff\x01", "little")
    assert int.from_bytes(again, "little") == int.from_bytes(raw, "little") & mask

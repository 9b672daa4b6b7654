"""Python values <-> bytes through a BTF type, for map keys/values and global data.

`encode_value` accepts ints (range-checked against the INT's width and signedness), bools,
floats, enum names, `bytes`/`str` for char arrays, lists for arrays, dicts for structs and
unions (members of anonymous inner structs/unions by their own names, as in C), and raw
`bytes` of exactly the type's size for any type. `decode_value` is the inverse: ints (signed per
the INT encoding; bools for BOOL), floats, `bytes` for char arrays, lists, dicts with
bitfields extracted. Values that do not fit raise `BtfError`.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pybpf.btf.types import (
    COMPOSITE_KINDS,
    ENUM_KINDS,
    MAX_DEPTH,
    BtfType,
    IntEncoding,
    Kind,
    Member,
)
from pybpf.errors import BtfError

if TYPE_CHECKING:
    from pybpf.btf.types import Btf

_FLOAT_FORMATS = {2: "e", 4: "f", 8: "d"}


def _fail(btf: Btf, type_id: int, reason: str) -> BtfError:
    return BtfError(f"{btf.type_name(type_id)}: {reason}", section=btf.section)


def _is_char_array(btf: Btf, t: BtfType) -> bool:
    if t.kind is not Kind.ARRAY or t.array is None:
        return False
    elem = btf.resolve(t.array[0])
    return elem.kind is Kind.INT and elem.size == 1 and not elem.int_encoding & IntEncoding.BOOL


def _int_range(bits: int, signed: bool) -> range:
    if signed:
        return range(-(1 << (bits - 1)), 1 << (bits - 1))
    return range(1 << bits)


def encode_value(btf: Btf, type_id: int, value: object) -> bytes:
    size = btf.size_of(type_id)
    buf = bytearray(size)
    _encode(btf, type_id, value, buf, 0, 0)
    return bytes(buf)


def _bit_window(btf: Btf, bit_pos: int, bits: int) -> tuple[int, int, int]:
    """The bytes holding bits [bit_pos, bit_pos + bits): (first byte, end byte, the shift of
    the field inside them read as one integer in the BTF's byte order)."""
    first = bit_pos // 8
    last = (bit_pos + bits + 7) // 8
    shift = bit_pos - first * 8
    if btf.byteorder == "big":
        shift = (last - first) * 8 - shift - bits
    return first, last, shift


def _put_bits(btf: Btf, buf: bytearray, bit_pos: int, bits: int, raw: int) -> None:
    """Store `bits` bits of `raw` at bit `bit_pos` (little-endian bit numbering as on BPF)."""
    first, last, shift = _bit_window(btf, bit_pos, bits)
    word = int.from_bytes(buf[first:last], btf.byteorder)
    mask = ((1 << bits) - 1) << shift
    word = (word & ~mask) | ((raw << shift) & mask)
    buf[first:last] = word.to_bytes(last - first, btf.byteorder)


def _get_bits(btf: Btf, data: bytes, bit_pos: int, bits: int) -> int:
    first, last, shift = _bit_window(btf, bit_pos, bits)
    word = int.from_bytes(data[first:last], btf.byteorder)
    return (word >> shift) & ((1 << bits) - 1)


def _encode_int(btf: Btf, t: BtfType, value: object, type_id: int) -> int:
    """The integer for an INT/ENUM/PTR value, range-checked; returned unsigned."""
    if t.kind in ENUM_KINDS and isinstance(value, str):
        for v in t.values:
            if v.name == value:
                value = v.value
                break
        else:
            raise _fail(btf, type_id, f"no enumerator named {value!r}")
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise _fail(btf, type_id, f"expected an integer, got {type(value).__name__}")
    bits = t.int_bits if t.kind is Kind.INT else 8 * (t.size if t.kind is not Kind.PTR else 8)
    signed = t.is_signed
    ok = _int_range(bits, signed)
    if value not in ok and not (t.kind in ENUM_KINDS and value in _int_range(bits, not signed)):
        raise _fail(btf, type_id, f"{value} does not fit in {bits} bits")
    return value & ((1 << bits) - 1)


def _encode(btf: Btf, type_id: int, value: object, buf: bytearray, offset: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _fail(btf, type_id, f"nests deeper than {MAX_DEPTH}")
    t = btf.resolve(type_id)
    size = btf.size_of(t.id)
    if offset + size > len(buf):
        raise _fail(btf, type_id, f"lies outside its container ({offset}+{size})")
    if isinstance(value, (bytes, bytearray, memoryview)) and not _is_char_array(btf, t):
        if len(value) != size:
            raise _fail(btf, type_id, f"needs {size} bytes, got {len(value)}")
        buf[offset : offset + size] = value
        return
    kind = t.kind
    if kind is Kind.INT or kind in ENUM_KINDS or kind is Kind.PTR:
        raw = _encode_int(btf, t, value, type_id)
        if kind is Kind.INT and t.int_offset:
            _put_bits(btf, buf, offset * 8 + t.int_offset, t.int_bits, raw)
        else:
            buf[offset : offset + size] = raw.to_bytes(size, btf.byteorder)
    elif kind is Kind.FLOAT:
        if t.size not in _FLOAT_FORMATS:
            raise _fail(btf, type_id, f"{t.size}-byte floats are not supported")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _fail(btf, type_id, f"expected a float, got {type(value).__name__}")
        fmt = ("<" if btf.byteorder == "little" else ">") + _FLOAT_FORMATS[t.size]
        try:
            buf[offset : offset + size] = struct.pack(fmt, value)
        except (OverflowError, struct.error) as e:
            raise _fail(btf, type_id, f"{value} does not fit") from e
    elif kind is Kind.ARRAY and t.array is not None:
        _encode_array(btf, t, t.array[0], t.array[2], value, buf, offset, depth)
    elif kind is Kind.VAR:
        _encode(btf, t.type_id, value, buf, offset, depth + 1)
    elif kind is Kind.DATASEC:
        if not isinstance(value, dict):
            raise _fail(btf, type_id, f"expected a dict, got {type(value).__name__}")
        remaining = dict(value)
        for v in t.vars:
            name = btf[v.type_id].name
            if name in remaining:
                _encode(btf, v.type_id, remaining.pop(name), buf, offset + v.offset, depth + 1)
        if remaining:
            raise _fail(btf, type_id, f"no variable named {next(iter(remaining))!r}")
    elif kind in COMPOSITE_KINDS:
        if not isinstance(value, dict):
            raise _fail(btf, type_id, f"expected a dict, got {type(value).__name__}")
        remaining = dict(value)
        _encode_members(btf, t, remaining, buf, offset, depth)
        if remaining:
            raise _fail(btf, type_id, f"no member named {next(iter(remaining))!r}")
    else:
        raise _fail(btf, type_id, f"{kind.name} has no value representation")


def _encode_array(
    btf: Btf,
    t: BtfType,
    elem_id: int,
    nelems: int,
    value: object,
    buf: bytearray,
    offset: int,
    depth: int,
) -> None:
    type_id = t.id
    if _is_char_array(btf, t) and isinstance(value, (str, bytes, bytearray, memoryview)):
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if len(raw) > nelems:
            raise _fail(btf, type_id, f"{len(raw)} bytes do not fit in {nelems}")
        buf[offset : offset + len(raw)] = raw
        return
    if not isinstance(value, (list, tuple)):
        raise _fail(btf, type_id, f"expected a list, got {type(value).__name__}")
    if len(value) > nelems:
        raise _fail(btf, type_id, f"{len(value)} elements do not fit in {nelems}")
    step = btf.size_of(elem_id)
    for i, item in enumerate(value):
        _encode(btf, elem_id, item, buf, offset + i * step, depth + 1)


def _flatten(btf: Btf, t: BtfType, bit_base: int) -> list[tuple[Member, int]]:
    """Named members with absolute bit offsets, anonymous struct/union members opened up."""
    out: list[tuple[Member, int]] = []
    for m in t.members:
        inner = btf.resolve(m.type_id)
        if not m.name and inner.kind in COMPOSITE_KINDS:
            out.extend(_flatten(btf, inner, bit_base + m.bit_offset))
        elif m.name:
            out.append((m, bit_base + m.bit_offset))
    return out


def _encode_members(
    btf: Btf, t: BtfType, remaining: dict[object, object], buf: bytearray, offset: int, depth: int
) -> None:
    for m, bit_off in _flatten(btf, t, 0):
        if m.name not in remaining:
            continue
        item = remaining.pop(m.name)
        if m.bitfield_size:
            mt = btf.resolve(m.type_id)
            if mt.kind is not Kind.INT and mt.kind not in ENUM_KINDS:
                raise _fail(btf, m.type_id, f"bitfield {m.name!r} is not an integer")
            probe = BtfType(mt.id, Kind.INT, int_bits=m.bitfield_size, size=mt.size)
            probe.int_encoding = IntEncoding.SIGNED if mt.is_signed else IntEncoding.NONE
            raw = _encode_int(btf, probe, item, m.type_id)
            _put_bits(btf, buf, offset * 8 + bit_off, m.bitfield_size, raw)
        else:
            if bit_off % 8:
                raise _fail(btf, t.id, f"member {m.name!r} is not byte aligned")
            _encode(btf, m.type_id, item, buf, offset + bit_off // 8, depth + 1)


def decode_value(btf: Btf, type_id: int, data: bytes) -> object:
    size = btf.size_of(type_id)
    if len(data) != size:
        raise _fail(btf, type_id, f"needs {size} bytes, got {len(data)}")
    return _decode(btf, type_id, bytes(data), 0, 0)


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def _decode(btf: Btf, type_id: int, data: bytes, offset: int, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise _fail(btf, type_id, f"nests deeper than {MAX_DEPTH}")
    t = btf.resolve(type_id)
    size = btf.size_of(t.id)
    if offset + size > len(data):
        raise _fail(btf, type_id, f"lies outside its container ({offset}+{size})")
    kind = t.kind
    if kind is Kind.INT:
        if t.int_offset:
            raw = _get_bits(btf, data, offset * 8 + t.int_offset, t.int_bits)
        else:
            raw = int.from_bytes(data[offset : offset + size], btf.byteorder)
            raw &= (1 << t.int_bits) - 1
        if t.int_encoding & IntEncoding.BOOL:
            return bool(raw)
        return _signed(raw, t.int_bits) if t.is_signed else raw
    if kind in ENUM_KINDS or kind is Kind.PTR:
        raw = int.from_bytes(data[offset : offset + size], btf.byteorder)
        return _signed(raw, 8 * size) if t.is_signed else raw
    if kind is Kind.FLOAT:
        if t.size not in _FLOAT_FORMATS:
            raise _fail(btf, type_id, f"{t.size}-byte floats are not supported")
        fmt = ("<" if btf.byteorder == "little" else ">") + _FLOAT_FORMATS[t.size]
        return struct.unpack_from(fmt, data, offset)[0]
    if kind is Kind.ARRAY and t.array is not None:
        if _is_char_array(btf, t):
            return data[offset : offset + size]
        elem_id, _, nelems = t.array
        step = btf.size_of(elem_id)
        if not step and nelems:
            raise _fail(btf, type_id, "zero-sized elements have no value representation")
        return [_decode(btf, elem_id, data, offset + i * step, depth + 1) for i in range(nelems)]
    if kind in COMPOSITE_KINDS:
        out: dict[str, object] = {}
        for m, bit_off in _flatten(btf, t, 0):
            if m.bitfield_size:
                raw = _get_bits(btf, data, offset * 8 + bit_off, m.bitfield_size)
                mt = btf.resolve(m.type_id)
                if mt.kind is Kind.INT and mt.int_encoding & IntEncoding.BOOL:
                    out[m.name] = bool(raw)
                else:
                    out[m.name] = _signed(raw, m.bitfield_size) if mt.is_signed else raw
            elif bit_off % 8:
                raise _fail(btf, t.id, f"member {m.name!r} is not byte aligned")
            else:
                out[m.name] = _decode(btf, m.type_id, data, offset + bit_off // 8, depth + 1)
        return out
    if kind is Kind.VAR:
        return _decode(btf, t.type_id, data, offset, depth + 1)
    if kind is Kind.DATASEC:
        return {
            btf[v.type_id].name: _decode(btf, v.type_id, data, offset + v.offset, depth + 1)
            for v in t.vars
        }
    raise _fail(btf, type_id, f"{kind.name} has no value representation")

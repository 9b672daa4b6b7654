"""`.BTF` bytes -> `Btf`: header, type records of every kind, string table, graph checks.

First step of the loader's BTF handling. Everything malformed becomes a `BtfError` naming the
section and the byte offset of the offending header field or record: bad magic, version or
header length, sections past the end, truncated records, unknown kinds, reserved bits, string
offsets past the table, dangling type ids, and reference loops (a typedef or pointer cycle that
never reaches a struct, a struct containing itself by value) or absurdly deep nesting.
"""

from __future__ import annotations

import struct
from typing import Literal

from pybpf.btf.types import (
    COMPOSITE_KINDS,
    MAX_DEPTH,
    SIZED_KINDS,
    Btf,
    BtfType,
    EnumValue,
    IntEncoding,
    Kind,
    Member,
    Param,
    VarSecInfo,
)
from pybpf.errors import BtfError

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
HEADER_SIZE = 24
MAX_VLEN = 0xFFFF

# Bytes of kind-specific data after the 12-byte common header: (fixed, per vlen entry).
_TRAILER: dict[Kind, tuple[int, int]] = {
    Kind.INT: (4, 0),
    Kind.ARRAY: (12, 0),
    Kind.STRUCT: (0, 12),
    Kind.UNION: (0, 12),
    Kind.ENUM: (0, 8),
    Kind.FUNC_PROTO: (0, 8),
    Kind.VAR: (4, 0),
    Kind.DATASEC: (0, 12),
    Kind.DECL_TAG: (4, 0),
    Kind.ENUM64: (0, 12),
}
# Kinds the kernel refuses without a name.
_NAMED_KINDS = frozenset(
    {
        Kind.TYPEDEF,
        Kind.FUNC,
        Kind.VAR,
        Kind.DATASEC,
        Kind.DECL_TAG,
        Kind.TYPE_TAG,
        Kind.FWD,
        Kind.FLOAT,
    }
)
_INT_SIZES = frozenset({1, 2, 4, 8, 16})
_ENUM_SIZES = frozenset({1, 2, 4, 8})
_FLOAT_SIZES = frozenset({2, 4, 8, 12, 16})


def byte_order(data: bytes, section: str) -> str:
    """'<' or '>' from the magic at the start of a .BTF or .BTF.ext section."""
    if len(data) < 2:
        raise BtfError("section too short for a BTF magic", section=section, offset=0)
    if struct.unpack_from("<H", data)[0] == BTF_MAGIC:
        return "<"
    if struct.unpack_from(">H", data)[0] == BTF_MAGIC:
        return ">"
    raise BtfError(f"bad magic {data[:2].hex()} (expected 9feb)", section=section, offset=0)


def parse_btf(data: bytes, *, section: str = ".BTF") -> Btf:
    data = bytes(data)
    bo = byte_order(data, section)
    if len(data) < HEADER_SIZE:
        raise BtfError(
            f"header truncated: {len(data)} of {HEADER_SIZE} bytes", section=section, offset=0
        )
    _, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        bo + "HBBIIIII", data
    )
    if version != BTF_VERSION:
        raise BtfError(f"unsupported BTF version {version}", section=section, offset=2)
    if hdr_len < HEADER_SIZE or hdr_len > len(data):
        raise BtfError(
            f"header length {hdr_len} outside {HEADER_SIZE}..{len(data)}",
            section=section,
            offset=4,
        )
    if any(data[HEADER_SIZE:hdr_len]):
        raise BtfError("unknown header fields are not zero", section=section, offset=HEADER_SIZE)
    body = len(data) - hdr_len
    if type_off % 4:
        raise BtfError(f"type section offset {type_off} not 4-aligned", section=section, offset=8)
    if type_off + type_len > body:
        raise BtfError(
            f"type section {type_off}+{type_len} past the end ({body} bytes)",
            section=section,
            offset=8,
        )
    if str_off + str_len > body:
        raise BtfError(
            f"string section {str_off}+{str_len} past the end ({body} bytes)",
            section=section,
            offset=16,
        )
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    if not strings or strings[0] != 0 or strings[-1] != 0:
        raise BtfError(
            "string section must start and end with NUL", section=section, offset=hdr_len + str_off
        )
    btf = Btf([BtfType(0, Kind.VOID)], strings, section=section, byteorder=_ORDER_NAMES[bo])
    start = hdr_len + type_off
    _Reader(btf, data, bo, start, start + type_len).read_all()
    _check_refs(btf)
    _check_graph(btf, follow_pointers=False)
    _check_graph(btf, follow_pointers=True)
    return btf


_ORDER_NAMES: dict[str, Literal["little", "big"]] = {"<": "little", ">": "big"}


class _Reader:
    """Walks the type section record by record."""

    def __init__(self, btf: Btf, data: bytes, bo: str, pos: int, end: int) -> None:
        self.btf = btf
        self.data = data
        self.bo = bo
        self.pos = pos
        self.end = end

    def fail(self, reason: str, offset: int) -> BtfError:
        return BtfError(reason, section=self.btf.section, offset=offset)

    def words(self, at: int, fmt: str) -> tuple[int, ...]:
        return struct.unpack_from(self.bo + fmt, self.data, at)

    def name(self, off: int, at: int) -> str:
        return self.btf.string(off, what="name", at=at)

    def read_all(self) -> None:
        while self.pos < self.end:
            self.btf.types.append(self.read_one(len(self.btf.types)))

    def read_one(self, type_id: int) -> BtfType:
        at = self.pos
        if self.end - at < 12:
            raise self.fail(f"type [{type_id}] header truncated", at)
        name_off, info, size_or_type = self.words(at, "III")
        kind_no = (info >> 24) & 0x1F
        if kind_no == 0 or kind_no > max(Kind):
            raise self.fail(f"type [{type_id}] has unknown kind {kind_no}", at + 4)
        kind = Kind(kind_no)
        if info & 0x60FF0000:
            raise self.fail(f"type [{type_id}] sets reserved info bits ({info:#010x})", at + 4)
        vlen = info & MAX_VLEN
        kflag = bool(info >> 31)
        fixed, per_entry = _TRAILER.get(kind, (0, 0))
        if vlen and not per_entry and kind is not Kind.FUNC:
            raise self.fail(f"type [{type_id}] {kind.name} must have vlen 0, has {vlen}", at + 4)
        need = 12 + fixed + per_entry * vlen
        if self.end - at < need:
            raise self.fail(
                f"type [{type_id}] {kind.name} record truncated: needs {need} bytes, "
                f"{self.end - at} left",
                at,
            )
        self.pos = at + need
        t = BtfType(type_id, kind, self.name(name_off, at), kflag=kflag, offset=at)
        if not t.name and kind in _NAMED_KINDS:
            raise self.fail(f"type [{type_id}] {kind.name} has no name", at)
        if kind in SIZED_KINDS:
            t.size = size_or_type
        elif kind is not Kind.FWD and kind is not Kind.ARRAY:
            t.type_id = size_or_type
        self.fill(t, vlen, at + 12)
        return t

    def fill(self, t: BtfType, vlen: int, at: int) -> None:
        kind = t.kind
        if kind is Kind.INT:
            self.fill_int(t, at)
        elif kind is Kind.ARRAY:
            elem, index, nelems = self.words(at, "III")
            t.array = (elem, index, nelems)
        elif kind in COMPOSITE_KINDS:
            for i in range(vlen):
                rec = at + 12 * i
                name_off, type_id, offset = self.words(rec, "III")
                if t.kflag:
                    member = Member(
                        self.name(name_off, rec), type_id, offset & 0xFFFFFF, offset >> 24
                    )
                else:
                    member = Member(self.name(name_off, rec), type_id, offset)
                if member.bit_offset + member.bitfield_size > 8 * t.size:
                    raise self.fail(
                        f"type [{t.id}] member {member.name!r} lies outside the "
                        f"{t.size}-byte {kind.name.lower()}",
                        rec,
                    )
                t.members.append(member)
        elif kind in (Kind.ENUM, Kind.ENUM64):
            self.fill_enum(t, vlen, at)
        elif kind is Kind.FUNC_PROTO:
            for i in range(vlen):
                name_off, type_id = self.words(at + 8 * i, "II")
                t.params.append(Param(self.name(name_off, at + 8 * i), type_id))
        elif kind is Kind.VAR:
            (t.linkage,) = self.words(at, "I")
            if t.linkage > 2:
                raise self.fail(f"type [{t.id}] VAR has unknown linkage {t.linkage}", at)
        elif kind is Kind.DATASEC:
            for i in range(vlen):
                t.vars.append(VarSecInfo(*self.words(at + 12 * i, "III")))
        elif kind is Kind.DECL_TAG:
            (t.component_idx,) = self.words(at, "i")
            if t.component_idx < -1:
                raise self.fail(f"type [{t.id}] DECL_TAG component_idx {t.component_idx}", at)
        elif kind is Kind.FUNC:
            if vlen > 2:
                raise self.fail(f"type [{t.id}] FUNC has unknown linkage {vlen}", at - 8)
            t.linkage = vlen
        elif kind is Kind.FLOAT and t.size not in _FLOAT_SIZES:
            raise self.fail(f"type [{t.id}] FLOAT has invalid size {t.size}", at - 4)

    def fill_int(self, t: BtfType, at: int) -> None:
        (word,) = self.words(at, "I")
        encoding, t.int_offset, t.int_bits = (word >> 24) & 0xF, (word >> 16) & 0xFF, word & 0xFF
        if word & 0xF000FF00 or bin(encoding).count("1") > 1:
            raise self.fail(f"type [{t.id}] INT has invalid encoding word {word:#010x}", at)
        t.int_encoding = IntEncoding(encoding)
        if t.size not in _INT_SIZES or not 0 < t.int_bits <= 128:
            raise self.fail(f"type [{t.id}] INT has invalid size {t.size}/{t.int_bits} bits", at)
        if t.int_offset + t.int_bits > 8 * t.size:
            raise self.fail(f"type [{t.id}] INT bits {t.int_offset}+{t.int_bits} exceed size", at)

    def fill_enum(self, t: BtfType, vlen: int, at: int) -> None:
        if t.size not in _ENUM_SIZES:
            raise self.fail(f"type [{t.id}] {t.kind.name} has invalid size {t.size}", at - 4)
        wide = t.kind is Kind.ENUM64
        step = 12 if wide else 8
        for i in range(vlen):
            rec = at + step * i
            if wide:
                name_off, lo, hi = self.words(rec, "III")
                value = (hi << 32) | lo
                if t.kflag and value >= 1 << 63:
                    value -= 1 << 64
            else:
                name_off, value = self.words(rec, "Ii" if t.kflag else "II")
            t.values.append(EnumValue(self.name(name_off, rec), value))


def _check_refs(btf: Btf) -> None:
    count = len(btf.types)
    for t in btf.types:
        for ref in t.refs():
            if ref >= count:
                raise BtfError(
                    f"type [{t.id}] {t.kind.name} refers to missing type [{ref}]",
                    section=btf.section,
                    offset=t.offset,
                )
        if t.kind is Kind.DECL_TAG and t.component_idx >= 0:
            target = btf.types[t.type_id]
            if target.kind is Kind.FUNC and target.type_id < count:
                target = btf.types[target.type_id]
            if t.component_idx >= target.vlen:
                raise BtfError(
                    f"type [{t.id}] DECL_TAG component {t.component_idx} out of range",
                    section=btf.section,
                    offset=t.offset,
                )


def _check_graph(btf: Btf, *, follow_pointers: bool) -> None:
    """Refuse reference cycles and nesting deeper than MAX_DEPTH.

    Valid C needs both a pointer and a struct/union in any cycle, so two passes suffice: one
    ignores pointer edges (a struct holding itself by value, a typedef loop), the other ignores
    member edges (pointer/typedef/array/prototype loops). Every walk elsewhere follows the
    edges of one of these acyclic graphs, which keeps it finite and shallow.
    """
    types = btf.types
    depth = [0] * len(types)
    state = bytearray(len(types))  # 0 new, 1 on the stack, 2 done

    def edges(t: BtfType) -> list[int]:
        if t.kind is Kind.PTR:
            return [t.type_id] if follow_pointers else []
        if t.kind in COMPOSITE_KINDS and follow_pointers:
            return []
        return t.refs()

    def too_deep(t: BtfType) -> BtfError:
        return BtfError(
            f"type [{t.id}] nests deeper than {MAX_DEPTH} levels",
            section=btf.section,
            offset=t.offset,
        )

    for root in range(len(types)):
        if state[root]:
            continue
        stack = [(root, iter(edges(types[root])))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                if stack:
                    parent = stack[-1][0]
                    depth[parent] = max(depth[parent], depth[node] + 1)
                continue
            if state[child] == 1:
                t = types[child]
                raise BtfError(
                    f"type [{child}] {t.kind.name} {t.name!r} is part of a reference loop",
                    section=btf.section,
                    offset=t.offset,
                )
            if state[child] == 2:
                depth[node] = max(depth[node], depth[child] + 1)
            else:
                state[child] = 1
                stack.append((child, iter(edges(types[child]))))
            if depth[node] > MAX_DEPTH or len(stack) > MAX_DEPTH:
                raise too_deep(types[node])

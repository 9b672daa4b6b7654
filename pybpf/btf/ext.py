""".BTF.ext -> func_info, line_info and CO-RE relocation records per ELF section.

Read by the loader next to `.BTF`: func_info names each (sub)program's FUNC type, line_info
gives file/line/column and the source text for instructions (the verifier's and runtime's
messages point at C lines through it), core_relos feed `core_resolve`. Offsets in the file are
bytes into the code section; here they become instruction indexes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from pybpf.btf.parse import byte_order
from pybpf.btf.types import Btf
from pybpf.errors import BtfError

SECTION = ".BTF.ext"
BTF_EXT_VERSION = 1
MIN_HEADER = 24  # up to line_info_len; core_relo_off/len are an optional extension
INSN_SIZE = 8

R = TypeVar("R")


class CoreReloKind(IntEnum):
    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass
class FuncInfo:
    insn_off: int
    type_id: int


@dataclass
class LineInfo:
    insn_off: int
    file: str
    line: int
    column: int
    source: str


@dataclass
class CoreRelo:
    insn_off: int
    type_id: int
    access_str: str
    kind: CoreReloKind


@dataclass
class BtfExt:
    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)


def _fail(reason: str, offset: int) -> BtfError:
    return BtfError(reason, section=SECTION, offset=offset)


def parse_btf_ext(data: bytes, btf: Btf) -> BtfExt:
    data = bytes(data)
    bo = byte_order(data, SECTION)
    if len(data) < 8:
        raise _fail(f"header truncated: {len(data)} bytes", 0)
    _, version, _flags, hdr_len = struct.unpack_from(bo + "HBBI", data)
    if version != BTF_EXT_VERSION:
        raise _fail(f"unsupported .BTF.ext version {version}", 2)
    if hdr_len < MIN_HEADER or hdr_len > len(data):
        raise _fail(f"header length {hdr_len} outside {MIN_HEADER}..{len(data)}", 4)
    fields = struct.unpack_from(bo + "IIII", data, 8)
    if hdr_len >= 32:
        fields += struct.unpack_from(bo + "II", data, 24)
    ext = BtfExt()
    reader = _Reader(data, bo, hdr_len, btf)
    reader.subsection("func_info", fields[0], fields[1], 8, 8, reader.func_info, ext.func_info)
    reader.subsection("line_info", fields[2], fields[3], 16, 16, reader.line_info, ext.line_info)
    if len(fields) == 6:
        reader.subsection(
            "core_relo", fields[4], fields[5], 16, 24, reader.core_relo, ext.core_relos
        )
    return ext


class _Reader:
    def __init__(self, data: bytes, bo: str, hdr_len: int, btf: Btf) -> None:
        self.data = data
        self.bo = bo
        self.hdr_len = hdr_len
        self.btf = btf

    def string(self, off: int, what: str, at: int) -> str:
        try:
            return self.btf.string(off, what=what)
        except BtfError as e:
            raise _fail(e.reason, at) from e

    def insn(self, byte_off: int, at: int) -> int:
        if byte_off % INSN_SIZE:
            raise _fail(f"instruction offset {byte_off} is not a multiple of {INSN_SIZE}", at)
        return byte_off // INSN_SIZE

    def subsection(
        self,
        what: str,
        off: int,
        length: int,
        min_rec: int,
        field_off: int,
        decode: Callable[[int], R],
        out: dict[str, list[R]],
    ) -> None:
        if not length:
            return
        start = self.hdr_len + off
        end = start + length
        if end > len(self.data) or off % 4:
            raise _fail(
                f"{what} subsection {off}+{length} is past the end or misaligned", field_off
            )
        if length < 4:
            raise _fail(f"{what} subsection too short for its record size", start)
        (rec_size,) = struct.unpack_from(self.bo + "I", self.data, start)
        if rec_size < min_rec or rec_size % 4:
            raise _fail(f"{what} record size {rec_size} invalid (minimum {min_rec})", start)
        pos = start + 4
        while pos < end:
            if end - pos < 8:
                raise _fail(f"{what} section header truncated", pos)
            name_off, count = struct.unpack_from(self.bo + "II", self.data, pos)
            name = self.string(name_off, f"{what} section name", pos)
            if not count:
                raise _fail(f"{what} for section {name!r} has no records", pos)
            pos += 8
            if count * rec_size > end - pos:
                raise _fail(
                    f"{what} for section {name!r}: {count} records of {rec_size} bytes "
                    f"overrun the subsection",
                    pos,
                )
            records = out.setdefault(name, [])
            for _ in range(count):
                records.append(decode(pos))
                pos += rec_size

    def func_info(self, at: int) -> FuncInfo:
        insn_off, type_id = struct.unpack_from(self.bo + "II", self.data, at)
        if type_id >= len(self.btf.types):
            raise _fail(f"func_info refers to missing type [{type_id}]", at)
        return FuncInfo(self.insn(insn_off, at), type_id)

    def line_info(self, at: int) -> LineInfo:
        insn_off, file_off, line_off, line_col = struct.unpack_from(self.bo + "IIII", self.data, at)
        return LineInfo(
            self.insn(insn_off, at),
            self.string(file_off, "line_info file name", at),
            line_col >> 10,
            line_col & 0x3FF,
            self.string(line_off, "line_info source line", at),
        )

    def core_relo(self, at: int) -> CoreRelo:
        insn_off, type_id, access_off, kind = struct.unpack_from(self.bo + "IIII", self.data, at)
        if type_id >= len(self.btf.types):
            raise _fail(f"CO-RE relocation refers to missing type [{type_id}]", at)
        if kind > max(CoreReloKind):
            raise _fail(f"CO-RE relocation has unknown kind {kind}", at + 12)
        return CoreRelo(
            self.insn(insn_off, at),
            type_id,
            self.string(access_off, "CO-RE access string", at),
            CoreReloKind(kind),
        )

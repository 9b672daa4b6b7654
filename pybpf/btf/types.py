"""The BTF type model: kinds, type records and the `Btf` container with its lookups.

Sits under the loader: `parse.py` builds a `Btf` from `.BTF` bytes, the loader fixes up its
DATASECs, and everything above (maps, verifier, codecs, dumps, CO-RE) reads types through it.
The parser guarantees the graph is sane (no dangling ids, no loops, bounded nesting), so the
walks here terminate; they still stop at `MAX_DEPTH` so a hand-built `Btf` cannot hang them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Literal

from pybpf.errors import BtfError

# Longest reference chain accepted (typedef -> const -> array -> struct member -> ...). The
# kernel resolves at most 32 modifiers in a row; nesting through struct members adds more in
# real kernels, so the bound is generous yet keeps every recursive walk far from Python's limit.
MAX_DEPTH = 128


class Kind(IntEnum):
    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(IntFlag):
    """BTF_INT_ENCODING bits of an INT type."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class Linkage(IntEnum):
    """BTF_FUNC_* / BTF_VAR_* linkage values (same numbers for both kinds)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


# Kinds whose third header word is a size; every other kind keeps a type id there.
SIZED_KINDS = frozenset(
    {Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC, Kind.FLOAT, Kind.ENUM64}
)
# Kinds that only qualify or rename another type; `resolve` looks through them.
MODIFIER_KINDS = frozenset({Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG})
COMPOSITE_KINDS = frozenset({Kind.STRUCT, Kind.UNION})
ENUM_KINDS = frozenset({Kind.ENUM, Kind.ENUM64})


@dataclass
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass
class EnumValue:
    name: str
    value: int


@dataclass
class Param:
    name: str
    type_id: int


@dataclass
class VarSecInfo:
    type_id: int
    offset: int
    size: int


@dataclass
class BtfType:
    id: int
    kind: Kind
    name: str = ""
    size: int = 0
    type_id: int = 0
    members: list[Member] = field(default_factory=list)
    values: list[EnumValue] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    vars: list[VarSecInfo] = field(default_factory=list)
    array: tuple[int, int, int] | None = None
    int_encoding: IntEncoding = IntEncoding.NONE
    int_offset: int = 0
    int_bits: int = 0
    linkage: int = 0
    component_idx: int = -1
    kflag: bool = False
    # Byte offset of the record in its section, so later checks can point at it.
    offset: int = 0

    @property
    def vlen(self) -> int:
        return len(self.members) + len(self.values) + len(self.params) + len(self.vars)

    @property
    def is_signed(self) -> bool:
        """INT with the SIGNED bit, or an enum whose kflag says its values are signed."""
        if self.kind is Kind.INT:
            return bool(self.int_encoding & IntEncoding.SIGNED)
        return self.kind in ENUM_KINDS and self.kflag

    def refs(self) -> list[int]:
        """Every type id this record points at."""
        if self.kind is Kind.ARRAY and self.array is not None:
            return [self.array[0], self.array[1]]
        if self.kind in COMPOSITE_KINDS:
            return [m.type_id for m in self.members]
        if self.kind is Kind.FUNC_PROTO:
            return [self.type_id, *(p.type_id for p in self.params)]
        if self.kind is Kind.DATASEC:
            return [v.type_id for v in self.vars]
        if self.kind in SIZED_KINDS or self.kind in (Kind.VOID, Kind.FWD):
            return []
        return [self.type_id]


def essential_name(name: str) -> str:
    """The name without a CO-RE `___flavour` suffix (X___Y with X and Y not underscores)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


class Btf:
    """A parsed BTF blob: `types[i]` is type id i, `types[0]` is VOID."""

    def __init__(
        self,
        types: list[BtfType],
        strings: bytes = b"\0",
        *,
        section: str = ".BTF",
        byteorder: Literal["little", "big"] = "little",
    ) -> None:
        self.types = types
        self.strings = strings
        self.section = section
        self.byteorder = byteorder
        self._by_name: dict[str, list[int]] | None = None
        self._align: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"unknown type id {type_id}", section=self.section)
        return self.types[type_id]

    def string(self, offset: int, *, what: str = "string", at: int | None = None) -> str:
        """The NUL-terminated string at `offset` of the string table."""
        if not 0 <= offset < len(self.strings):
            raise BtfError(
                f"{what} offset {offset} is past the string table ({len(self.strings)} bytes)",
                section=self.section,
                offset=at,
            )
        end = self.strings.find(b"\0", offset)
        if end < 0:
            raise BtfError(f"{what} at {offset} is not terminated", section=self.section, offset=at)
        try:
            return self.strings[offset:end].decode()
        except UnicodeDecodeError as e:
            raise BtfError(
                f"{what} at {offset} is not valid UTF-8", section=self.section, offset=at
            ) from e

    def find_all(self, name: str, kind: Kind | None = None) -> list[BtfType]:
        if self._by_name is None:
            index: dict[str, list[int]] = {}
            for t in self.types:
                if t.name:
                    index.setdefault(t.name, []).append(t.id)
            self._by_name = index
        found = [self.types[i] for i in self._by_name.get(name, [])]
        return [t for t in found if kind is None or t.kind is kind]

    def find(self, name: str, kind: Kind | None = None) -> BtfType | None:
        found = self.find_all(name, kind)
        return found[0] if found else None

    def resolve(self, type_id: int) -> BtfType:
        t = self[type_id]
        for _ in range(MAX_DEPTH):
            if t.kind not in MODIFIER_KINDS:
                return t
            t = self[t.type_id]
        raise BtfError(f"type [{type_id}] has a modifier chain deeper than {MAX_DEPTH}")

    def resolve_id(self, type_id: int) -> int:
        return self.resolve(type_id).id

    def size_of(self, type_id: int) -> int:
        count = 1
        t = self[type_id]
        for _ in range(MAX_DEPTH):
            if t.kind in SIZED_KINDS:
                return count * t.size
            if t.kind is Kind.PTR:
                return count * 8
            if t.kind is Kind.ARRAY and t.array is not None:
                count *= t.array[2]
                t = self[t.array[0]]
            elif t.kind in MODIFIER_KINDS or t.kind is Kind.VAR:
                t = self[t.type_id]
            else:
                raise BtfError(
                    f"type [{type_id}] {self.type_name(type_id)!r} has no size "
                    f"({t.kind.name} [{t.id}])",
                    section=self.section,
                )
        raise BtfError(f"type [{type_id}] nests deeper than {MAX_DEPTH}", section=self.section)

    def align_of(self, type_id: int) -> int:
        """Natural alignment in bytes as the C compiler for BPF would choose it."""
        t = self.resolve(type_id)
        if t.kind is Kind.ARRAY and t.array is not None:
            return self.align_of(t.array[0])
        if t.kind is Kind.PTR:
            return 8
        if t.kind in COMPOSITE_KINDS:
            if t.id not in self._align:
                aligns = [self.align_of(m.type_id) for m in t.members]
                align = max(aligns, default=1)
                packed = t.size % align or any(
                    not m.bitfield_size and m.bit_offset % (8 * a)
                    for m, a in zip(t.members, aligns, strict=True)
                )
                self._align[t.id] = 1 if packed else align
            return self._align[t.id]
        if t.kind in SIZED_KINDS:
            return max(1, min(t.size, 8))
        return 1

    def type_name(self, type_id: int) -> str:
        from pybpf.btf.cdecl import declaration

        return declaration(self, type_id, "")

    def datasec(self, name: str) -> BtfType | None:
        return self.find(name, Kind.DATASEC)

    def fixup_datasec(self, name: str, size: int, var_offsets: Mapping[str, int]) -> None:
        """Fill what clang leaves zero in relocatable objects (libbpf's btf_fixup_datasec).

        `size` is the ELF section size, `var_offsets` each variable's symbol value. Extern
        VARs keep their offsets; a global VAR without a symbol is an error, as in libbpf.
        """
        sec = self.datasec(name)
        if sec is None:
            raise BtfError(f"no DATASEC named {name!r}", section=self.section)
        sec.size = size
        for info in sec.vars:
            var = self[info.type_id]
            if var.kind is not Kind.VAR:
                raise BtfError(
                    f"DATASEC {name!r} lists [{var.id}] {var.kind.name}, not a VAR",
                    section=self.section,
                    offset=sec.offset,
                )
            if var.name in var_offsets and var.linkage != Linkage.EXTERN:
                info.offset = var_offsets[var.name]
            elif var.linkage == Linkage.GLOBAL:
                raise BtfError(
                    f"DATASEC {name!r}: no symbol for global variable {var.name!r}",
                    section=self.section,
                    offset=sec.offset,
                )
            if info.size == 0:
                info.size = self.size_of(var.type_id)
            if info.offset + info.size > size:
                raise BtfError(
                    f"DATASEC {name!r}: variable {var.name!r} at {info.offset}+{info.size} "
                    f"overruns the section ({size} bytes)",
                    section=self.section,
                    offset=sec.offset,
                )
        sec.vars.sort(key=lambda v: v.offset)

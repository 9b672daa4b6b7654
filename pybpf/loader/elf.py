"""The ELF container: bytes -> sections, symbols and relocation entries as plain data.

The first step of the loader (`pybpf.loader.load`): the only module that imports elftools,
and the one place its exceptions become `ElfFormatError`. Everything is read eagerly and
checked here (class, byte order, machine, header and table bounds, string offsets), so the
rest of the loader works on validated values and never touches elftools or raw offsets.
Names are read from the string tables directly, with their bounds checked, rather than
through elftools, which reads past a table's end on bad offsets.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf import enums
from elftools.elf.elffile import ELFFile

from pybpf.errors import ElfFormatError

EM_BPF = 247
ET_REL = 1

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_REL = 9

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3

STV_DEFAULT = 0
STV_INTERNAL = 1
STV_HIDDEN = 2

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2

# BPF relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def).
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
RELOC_TYPE_NAMES = {
    R_BPF_NONE: "R_BPF_NONE",
    R_BPF_64_64: "R_BPF_64_64",
    R_BPF_64_ABS64: "R_BPF_64_ABS64",
    R_BPF_64_ABS32: "R_BPF_64_ABS32",
    R_BPF_64_NODYLD32: "R_BPF_64_NODYLD32",
    R_BPF_64_32: "R_BPF_64_32",
}

_SHDR_SIZE = 64
_SYM_SIZE = 24
_REL_SIZE = 16


@dataclass(frozen=True, slots=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    data: bytes  # empty for SHT_NOBITS

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int

    @property
    def is_extern(self) -> bool:
        """libbpf's sym_is_extern: undefined, global or weak, no type."""
        return (
            self.shndx == SHN_UNDEF
            and self.bind in (STB_GLOBAL, STB_WEAK)
            and self.type == STT_NOTYPE
        )


@dataclass(frozen=True, slots=True)
class Rel:
    """One SHT_REL entry; ``at`` is its byte offset inside the relocation section."""

    offset: int
    symbol: int
    type: int
    at: int


@dataclass(frozen=True, slots=True)
class ElfObject:
    path: str | None
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    symtab_index: int
    relocations: Mapping[int, tuple[Rel, ...]]  # relocation section index -> entries

    def section(self, index: int) -> Section | None:
        return self.sections[index] if 0 < index < len(self.sections) else None

    def by_name(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None


def _num(value: object, table: Mapping[str, object]) -> int:
    """elftools turns known enum values into their names; turn them back into numbers."""
    if isinstance(value, int):
        return value
    found = table.get(str(value))
    if isinstance(found, int):
        return found
    raise ElfFormatError(f"unrecognised ELF enum value {value!r}")


def _cstring(table: bytes, offset: int, *, what: str, section: str, at: int) -> str:
    if not 0 <= offset < max(len(table), 1):
        raise ElfFormatError(
            f"{what} name offset {offset} is past its string table ({len(table)} bytes)",
            section=section,
            offset=at,
        )
    end = table.find(b"\0", offset)
    if end < 0:
        raise ElfFormatError(
            f"{what} name at {offset} is not terminated", section=section, offset=at
        )
    try:
        return table[offset:end].decode()
    except UnicodeDecodeError as e:
        raise ElfFormatError(
            f"{what} name at {offset} is not valid UTF-8", section=section, offset=at
        ) from e


def read_elf(data: bytes, path: str | None = None) -> ElfObject:
    """Parse and validate a BPF relocatable object (ELF64, little-endian, EM_BPF)."""
    try:
        return _read(data, path)
    except (ELFError, ConstructError, struct.error, ValueError, LookupError, RecursionError) as e:
        raise ElfFormatError(f"malformed ELF: {e}", path=path) from e


def _read(data: bytes, path: str | None) -> ElfObject:
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise ElfFormatError("not an ELF file (bad magic or shorter than an ELF header)", path=path)
    if data[4] != 2:
        raise ElfFormatError(f"ELF class {data[4]} is not ELFCLASS64", path=path, offset=4)
    if data[5] != 1:
        raise ElfFormatError(
            f"ELF data encoding {data[5]} is not little-endian (ELFDATA2LSB)", path=path, offset=5
        )
    elf = ELFFile(io.BytesIO(data))
    header = elf.header
    machine = _num(header["e_machine"], enums.ENUM_E_MACHINE)
    if machine != EM_BPF:
        raise ElfFormatError(f"machine {machine} is not EM_BPF ({EM_BPF})", path=path, offset=18)
    if _num(header["e_type"], enums.ENUM_E_TYPE) != ET_REL:
        raise ElfFormatError("not a relocatable object (ET_REL)", path=path, offset=16)
    shoff, shnum = header["e_shoff"], header["e_shnum"]
    if header["e_shentsize"] != _SHDR_SIZE:
        raise ElfFormatError(f"section header size {header['e_shentsize']}", path=path, offset=58)
    if shnum == 0 or shoff + shnum * _SHDR_SIZE > len(data):
        raise ElfFormatError(
            f"section header table ({shnum} entries at {shoff:#x}) is outside the file",
            path=path,
            offset=40,
        )
    shdr = elf.structs.Elf_Shdr
    raw = []
    for index in range(shnum):
        at = shoff + index * _SHDR_SIZE
        h = shdr.parse(data[at : at + _SHDR_SIZE])
        sh_type = _num(h["sh_type"], enums.ENUM_SH_TYPE_BASE)
        size = h["sh_size"]
        if index and sh_type != SHT_NOBITS and h["sh_offset"] + size > len(data):
            raise ElfFormatError(
                f"section #{index} data ({size} bytes at {h['sh_offset']:#x}) is outside the file",
                path=path,
                offset=at,
            )
        raw.append((index, at, h, sh_type))
    strndx = header["e_shstrndx"]
    if not 0 < strndx < shnum or raw[strndx][3] != SHT_STRTAB:
        raise ElfFormatError(f"bad section name table index {strndx}", path=path, offset=62)
    shstr = raw[strndx][2]
    shstrtab = data[shstr["sh_offset"] : shstr["sh_offset"] + shstr["sh_size"]]
    sections = []
    for index, at, h, sh_type in raw:
        name = (
            _cstring(shstrtab, h["sh_name"], what="section", section=f"#{index}", at=at)
            if index
            else ""
        )
        body = b"" if sh_type == SHT_NOBITS or not index else data[h["sh_offset"] :][: h["sh_size"]]
        sections.append(
            Section(
                index=index,
                name=name,
                type=sh_type,
                flags=h["sh_flags"],
                offset=h["sh_offset"],
                size=h["sh_size"],
                link=h["sh_link"],
                info=h["sh_info"],
                entsize=h["sh_entsize"],
                data=body,
            )
        )
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if len(symtabs) != 1:
        raise ElfFormatError(f"expected one symbol table, found {len(symtabs)}", path=path)
    symtab = symtabs[0]
    if symtab.entsize != _SYM_SIZE or symtab.size % _SYM_SIZE:
        raise ElfFormatError("bad symbol table entry size", path=path, section=symtab.name)
    if not 0 < symtab.link < len(sections) or sections[symtab.link].type != SHT_STRTAB:
        raise ElfFormatError("symbol table has no string table", path=path, section=symtab.name)
    strtab = sections[symtab.link].data
    sym_struct = elf.structs.Elf_Sym
    symbols = []
    for i in range(symtab.size // _SYM_SIZE):
        at = i * _SYM_SIZE
        s = sym_struct.parse(symtab.data[at : at + _SYM_SIZE])
        symbols.append(
            Symbol(
                index=i,
                name=_cstring(strtab, s["st_name"], what="symbol", section=symtab.name, at=at),
                value=s["st_value"],
                size=s["st_size"],
                bind=_num(s["st_info"]["bind"], enums.ENUM_ST_INFO_BIND),
                type=_num(s["st_info"]["type"], enums.ENUM_ST_INFO_TYPE),
                visibility=_num(s["st_other"]["visibility"], enums.ENUM_ST_VISIBILITY),
                shndx=_num(s["st_shndx"], enums.ENUM_ST_SHNDX),
            )
        )
    rel_struct = elf.structs.Elf_Rel
    relocations: dict[int, tuple[Rel, ...]] = {}
    for sec in sections:
        if sec.type != SHT_REL:
            continue
        if sec.entsize != _REL_SIZE or sec.size % _REL_SIZE:
            raise ElfFormatError("bad relocation entry size", path=path, section=sec.name)
        entries = []
        for at in range(0, sec.size, _REL_SIZE):
            r = rel_struct.parse(sec.data[at : at + _REL_SIZE])
            entries.append(
                Rel(offset=r["r_offset"], symbol=r["r_info_sym"], type=r["r_info_type"], at=at)
            )
        relocations[sec.index] = tuple(entries)
    return ElfObject(
        path=path,
        sections=tuple(sections),
        symbols=tuple(symbols),
        symtab_index=symtab.index,
        relocations=relocations,
    )

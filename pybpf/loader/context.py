"""The loader's working state, shared by its steps (`load`, `maps`, `core`, `link`).

Holds the parsed ELF and BTF, the decoded code of every executable section, the functions
found in them and the externs, with the lookups the steps share. Internal to the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.btf import Btf
from pybpf.btf.ext import BtfExt
from pybpf.errors import ElfFormatError, RelocationError
from pybpf.isa import Instruction
from pybpf.loader.elf import (
    RELOC_TYPE_NAMES,
    SHN_LORESERVE,
    SHN_UNDEF,
    SHT_NOBITS,
    ElfObject,
    Rel,
    Section,
    Symbol,
)
from pybpf.loader.sections import SectionInfo
from pybpf.loader.spec import ExternSpec

INSN_SIZE = 8
MAX_NOBITS = 1 << 26  # zero-filled sections larger than this are refused, not allocated


@dataclass(frozen=True, slots=True)
class Function:
    """A function symbol of an executable section (a program, or a subprogram in .text)."""

    name: str
    section_index: int
    section: str
    start: int  # slot index in the section
    length: int  # slots
    sec_info: SectionInfo | None  # None for .text functions
    global_symbol: bool


@dataclass(frozen=True, slots=True)
class CodeRel:
    """A relocation entry that applies to an instruction, with its symbol."""

    pc: int  # slot index in the target section
    symbol: Symbol
    rel: Rel
    rel_section: str


@dataclass
class Context:
    elf: ElfObject
    path: str | None
    name: str
    btf: Btf | None
    ext: BtfExt | None
    target_btf: Btf | None
    functions: dict[tuple[int, int], Function] = field(default_factory=dict)  # (sec, start)
    code: dict[int, dict[int, Instruction]] = field(default_factory=dict)  # sec -> pc -> insn
    code_rels: dict[int, dict[int, CodeRel]] = field(default_factory=dict)  # sec -> pc -> rel
    externs_by_sym: dict[int, ExternSpec] = field(default_factory=dict)
    text_index: int = 0
    map_defs: dict[tuple[int, int], str] = field(default_factory=dict)  # (sec, offset) -> map
    data_maps: dict[int, str] = field(default_factory=dict)  # global-data section -> map
    kconfig_map: str | None = None

    def program_named(self, name: str) -> Function | None:
        for fn in self.functions.values():
            if fn.name == name and fn.sec_info is not None:
                return fn
        return None

    def section_data(self, index: int) -> bytes:
        """A section's bytes; zeros for SHT_NOBITS (within a sane size)."""
        sec = self.elf.sections[index]
        if sec.type != SHT_NOBITS:
            return sec.data
        if sec.size > MAX_NOBITS:
            raise ElfFormatError(
                f"SHT_NOBITS section of {sec.size} bytes", path=self.path, section=sec.name
            )
        return bytes(sec.size)

    def relocation_symbol(self, rel_sec: Section, rel: Rel) -> Symbol:
        """The symbol of a relocation entry, checked to exist and to point somewhere real."""
        elf = self.elf
        if not 0 <= rel.symbol < len(elf.symbols):
            raise RelocationError(
                f"symbol index {rel.symbol} is past the symbol table ({len(elf.symbols)} entries)",
                path=self.path,
                section=rel_sec.name,
                offset=rel.at,
            )
        if rel.type not in RELOC_TYPE_NAMES:
            raise RelocationError(
                f"unknown BPF relocation type {rel.type}",
                path=self.path,
                section=rel_sec.name,
                offset=rel.at,
            )
        sym = elf.symbols[rel.symbol]
        if sym.shndx != SHN_UNDEF and sym.shndx < SHN_LORESERVE and elf.section(sym.shndx) is None:
            raise RelocationError(
                f"symbol {sym.name!r} points to section #{sym.shndx}, which does not exist",
                path=self.path,
                section=rel_sec.name,
                offset=rel.at,
            )
        return sym

"""Helpers for the BTF tests: fixture paths and a minimal ELF64 section reader.

`pybpf.btf` must not depend on the loader, so its tests pull `.BTF`/`.BTF.ext` (and data
sections, symbol values) out of the fixture objects with this small struct-based reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Section:
    name: str
    index: int
    type: int
    data: bytes
    link: int
    entsize: int


def read_sections(path: Path) -> dict[str, Section]:
    raw = path.read_bytes()
    assert raw[:4] == b"\x7fELF" and raw[4] == 2 and raw[5] == 1, f"{path} is not ELF64 LE"
    (shoff,) = struct.unpack_from("<Q", raw, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", raw, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", raw, shoff + i * shentsize) for i in range(shnum)]
    names_hdr = headers[shstrndx]
    names = raw[names_hdr[4] : names_hdr[4] + names_hdr[5]]
    sections = {}
    for index, (name, typ, _flags, _addr, off, size, link, _info, _align, entsize) in enumerate(
        headers
    ):
        text = names[name : names.index(b"\0", name)].decode()
        data = b"" if typ == 8 else raw[off : off + size]  # SHT_NOBITS has no file bytes
        sections[text] = Section(text, index, typ, data if typ != 8 else bytes(size), link, entsize)
    return sections


def symbols(path: Path) -> dict[str, tuple[int, int]]:
    """Symbol name -> (section index, value) from .symtab."""
    sections = read_sections(path)
    symtab = sections[".symtab"]
    strtab = next(s for s in sections.values() if s.index == symtab.link).data
    out = {}
    for off in range(0, len(symtab.data), 24):
        name, _info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", symtab.data, off)
        if name:
            out[strtab[name : strtab.index(b"\0", name)].decode()] = (shndx, value)
    return out


def btf_bytes(name: str) -> bytes:
    return read_sections(FIXTURES / name)[".BTF"].data


def btf_ext_bytes(name: str) -> bytes:
    return read_sections(FIXTURES / name)[".BTF.ext"].data

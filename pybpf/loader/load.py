"""`load_spec`: an object file's bytes -> `ObjectSpec`, the way libbpf opens an object.

The loader's driver: `elf.py` reads the container, this module finds programs, maps,
externs and struct_ops, resolves relocations (found through each relocation section's
``sh_info``, never through its name), applies CO-RE (`core.py`) and lays out each program
with the subprograms it calls appended (`link.py`). Nothing is created or run: the result
is pure data for `pybpf.object`.
"""

from __future__ import annotations

from pathlib import Path

from pybpf.btf import Btf, Kind, Linkage, essential_name, parse_btf
from pybpf.btf.ext import BtfExt, parse_btf_ext
from pybpf.errors import DecodeError, ElfFormatError, LoadError, RelocationError
from pybpf.isa import Instruction, decode_one
from pybpf.loader import maps as maps_mod
from pybpf.loader.context import INSN_SIZE, CodeRel, Context, Function
from pybpf.loader.core import apply_core
from pybpf.loader.elf import (
    SHT_PROGBITS,
    SHT_REL,
    STB_LOCAL,
    STT_FUNC,
    ElfObject,
    Section,
    Symbol,
    read_elf,
)
from pybpf.loader.link import build_program
from pybpf.loader.sections import SectionInfo, classify_section
from pybpf.loader.spec import ExternSpec, ObjectSpec
from pybpf.uapi import BPF_OBJ_NAME_LEN

LICENSE_MAX = 64  # libbpf keeps at most 63 characters of the license string


def object_name(path: str | Path) -> str:
    """libbpf's name for the object in file ``path``: the base name cut at its first dot
    (``minimal.bpf.o`` -> ``minimal``); internal map names start with it."""
    return Path(path).name.split(".", 1)[0][: BPF_OBJ_NAME_LEN - 1]


def _object_name(path: str | None, name: str | None) -> str:
    if name:
        return name[: BPF_OBJ_NAME_LEN - 1]
    if path:
        return object_name(path)
    return "object"


def load_spec(
    src: str | Path | bytes,
    *,
    target_btf: Btf | bytes | str | Path | None = None,
    name: str | None = None,
    core_poison: bool = False,
) -> ObjectSpec:
    """Read a BPF object (path or bytes) into an `ObjectSpec`.

    ``target_btf`` (a `Btf`, raw ``.BTF`` bytes, or the path of an object or raw BTF file)
    is what CO-RE relocations are resolved against; without it they stay as compiled. An
    unsatisfiable relocation raises `BtfError` at its instruction, unless ``core_poison``
    asks for libbpf's behaviour (the instruction becomes an invalid helper call).
    """
    if isinstance(src, bytes | bytearray | memoryview):
        data, path = bytes(src), None
    else:
        path = str(src)
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise LoadError(f"cannot read: {e.strerror}", path=path) from e
    elf = read_elf(data, path)
    btf, ext = _read_btf(elf, path)
    ctx = Context(
        elf=elf,
        path=path,
        name=_object_name(path, name),
        btf=btf,
        ext=ext,
        target_btf=_target_btf(target_btf),
    )
    spec = ObjectSpec(
        path=path,
        name=ctx.name,
        license=_license(elf),
        version=_version(elf),
        btf=btf,
        btf_ext=ext,
    )
    _collect_functions(ctx)
    _collect_externs(ctx, spec)
    maps_mod.collect_maps(ctx, spec)
    ctx.code_rels = _collect_code_relocations(ctx)
    core = apply_core(ctx, poison=core_poison)
    for fn in ctx.functions.values():
        if fn.section_index != ctx.text_index and fn.sec_info is not None:
            spec.programs[fn.name] = build_program(ctx, spec, fn, core)
    maps_mod.collect_data_relocations(ctx, spec)
    return spec


def _target_btf(target: Btf | bytes | str | Path | None) -> Btf | None:
    if target is None or isinstance(target, Btf):
        return target
    if isinstance(target, str | Path):
        path = str(target)
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            raise LoadError(f"cannot read target BTF: {e.strerror}", path=path) from e
    else:
        raw, path = bytes(target), None
    if raw[:4] == b"\x7fELF":
        elf = read_elf(raw, path)
        btf, _ = _read_btf(elf, path, with_ext=False)
        if btf is None:
            raise LoadError("target object has no .BTF section", path=path)
        return btf
    return parse_btf(raw, section="target BTF")


def _read_btf(
    elf: ElfObject, path: str | None, *, with_ext: bool = True
) -> tuple[Btf | None, BtfExt | None]:
    sec = elf.by_name(".BTF")
    if sec is None:
        return None, None
    if sec.type != SHT_PROGBITS:
        raise ElfFormatError("section .BTF is not PROGBITS", path=path, section=".BTF")
    btf = parse_btf(sec.data)
    _fixup_datasecs(elf, btf)
    ext_sec = elf.by_name(".BTF.ext")
    if not with_ext or ext_sec is None:
        return btf, None
    if ext_sec.type != SHT_PROGBITS:
        raise ElfFormatError("section .BTF.ext is not PROGBITS", path=path, section=".BTF.ext")
    return btf, parse_btf_ext(ext_sec.data, btf)


def _fixup_datasecs(elf: ElfObject, btf: Btf) -> None:
    """Give DATASECs the sizes and variable offsets clang leaves zero (libbpf does too)."""
    for t in btf.types:
        if t.kind is not Kind.DATASEC or t.name in (".kconfig", ".ksyms"):
            continue
        sec = elf.by_name(t.name)
        if sec is None:
            if t.size:
                continue
            raise ElfFormatError(
                f"BTF DATASEC {t.name!r} has no ELF section", path=elf.path, section=".BTF"
            )
        offsets = {
            s.name: s.value
            for s in elf.symbols
            if s.shndx == sec.index and s.type != STT_FUNC and s.name
        }
        btf.fixup_datasec(t.name, sec.size, offsets)


def _license(elf: ElfObject) -> str:
    sec = elf.by_name("license")
    if sec is None:
        return ""
    raw = sec.data[: LICENSE_MAX - 1].split(b"\0", 1)[0]
    return raw.decode("latin-1")


def _version(elf: ElfObject) -> int:
    sec = elf.by_name("version")
    if sec is None:
        return 0
    if len(sec.data) != 4:
        raise ElfFormatError(
            f"version section is {len(sec.data)} bytes, not 4", path=elf.path, section="version"
        )
    return int.from_bytes(sec.data, "little")


def _decode_section(sec: Section, path: str | None) -> dict[int, Instruction]:
    if sec.size % INSN_SIZE:
        raise ElfFormatError(
            f"code size {sec.size} is not a multiple of {INSN_SIZE}",
            path=path,
            section=sec.name,
            offset=sec.size - sec.size % INSN_SIZE,
        )
    code: dict[int, Instruction] = {}
    pc = 0
    nslots = sec.size // INSN_SIZE
    while pc < nslots:
        try:
            insn = decode_one(sec.data, pc)
        except DecodeError as e:
            raise ElfFormatError(
                f"instruction {e.pc} does not decode: {e.reason}",
                path=path,
                section=sec.name,
                offset=e.pc * INSN_SIZE,
            ) from e
        code[pc] = insn
        pc += insn.slots
    return code


def _collect_functions(ctx: Context) -> None:
    """Every STT_FUNC of an executable section; non-.text ones are programs."""
    elf = ctx.elf
    for sec in elf.sections:
        if sec.type != SHT_PROGBITS or not sec.executable or not sec.size:
            continue
        if sec.name == ".text":
            ctx.text_index = sec.index
            info = None
        else:
            info = classify_section(sec.name)
            if info is None:
                raise LoadError(
                    "unknown program section name (not in libbpf's SEC() table)",
                    path=ctx.path,
                    section=sec.name,
                )
        code = _decode_section(sec, ctx.path)
        ctx.code[sec.index] = code
        syms = sorted(
            (s for s in elf.symbols if s.shndx == sec.index and s.type == STT_FUNC),
            key=lambda s: s.value,
        )
        for sym in syms:
            _add_function(ctx, sec, sym, code, info)


def _add_function(
    ctx: Context,
    sec: Section,
    sym: Symbol,
    code: dict[int, Instruction],
    info: SectionInfo | None,
) -> None:
    where = {"path": ctx.path, "section": sec.name, "symbol": sym.name, "offset": sym.value}
    if not sym.size or sym.size % INSN_SIZE or sym.value % INSN_SIZE:
        raise ElfFormatError("function size or offset is not a whole number of slots", **where)
    if sym.value + sym.size > sec.size:
        raise ElfFormatError("function crosses the end of its section", **where)
    start, length = sym.value // INSN_SIZE, sym.size // INSN_SIZE
    if start not in code or (start + length < sec.size // INSN_SIZE and start + length not in code):
        raise ElfFormatError("function boundary splits an lddw", **where)
    if sec.index != ctx.text_index and sym.bind == STB_LOCAL:
        raise LoadError("static programs are not supported (as in libbpf)", **where)
    for (s, other_start), other in ctx.functions.items():
        if s == sec.index and other_start < start + length and start < other_start + other.length:
            raise ElfFormatError(f"function overlaps {other.name}", **where)
    if info is not None and sym.name in {f.name for f in ctx.functions.values() if f.sec_info}:
        raise ElfFormatError("duplicate program name", **where)
    ctx.functions[(sec.index, start)] = Function(
        name=sym.name,
        section_index=sec.index,
        section=sec.name,
        start=start,
        length=length,
        sec_info=info,
        global_symbol=sym.bind != STB_LOCAL,
    )


def _collect_externs(ctx: Context, spec: ObjectSpec) -> None:
    """``__kconfig`` and ``__ksym`` externs, laid out as libbpf does."""
    externs = [s for s in ctx.elf.symbols if s.is_extern and s.name]
    if not externs:
        return
    btf = ctx.btf
    if btf is None:
        raise LoadError(
            "extern symbols need BTF", path=ctx.path, symbol=externs[0].name, section=".symtab"
        )
    sec_of: dict[int, str] = {}
    for t in btf.types:
        if t.kind is Kind.DATASEC:
            for v in t.vars:
                sec_of[v.type_id] = t.name
    kconfig: list[tuple[int, int, str, Symbol, int]] = []
    for sym in externs:
        where = {"path": ctx.path, "section": ".BTF", "symbol": sym.name}
        found = [
            t
            for t in btf.find_all(sym.name)
            if t.kind in (Kind.VAR, Kind.FUNC) and t.linkage == Linkage.EXTERN
        ]
        if not found:
            raise LoadError("no BTF VAR or FUNC with extern linkage for extern symbol", **where)
        t = found[0]
        section = sec_of.get(t.id)
        if section == ".kconfig":
            if t.kind is Kind.FUNC:
                raise LoadError("extern functions are not allowed in .kconfig", **where)
            size, align = btf.size_of(t.type_id), btf.align_of(t.type_id)
            if size <= 0:
                raise LoadError("kconfig extern has no size", **where)
            kconfig.append((align, size, t.name, sym, t.id))
        elif section == ".ksyms":
            is_func = t.kind is Kind.FUNC
            typed = not is_func and btf.resolve(t.type_id).kind is not Kind.VOID
            ext = ExternSpec(
                name=t.name,
                kind="ksym",
                weak=sym.bind == 2,
                btf_id=t.id,
                is_func=is_func,
                typed=typed,
                essential_name=essential_name(t.name),
            )
            spec.externs[t.name] = ext
            ctx.externs_by_sym[sym.index] = ext
        else:
            raise LoadError(f"extern in unrecognised section {section!r}", **where)
    offset = 0
    for align, size, ext_name, sym, btf_id in sorted(kconfig, key=lambda k: (-k[0], k[1], k[2])):
        offset = (offset + align - 1) // align * align
        ext = ExternSpec(
            name=ext_name,
            kind="kconfig",
            weak=sym.bind == 2,
            btf_id=btf_id,
            offset=offset,
            size=size,
            essential_name=essential_name(ext_name),
        )
        offset += size
        spec.externs[ext_name] = ext
        ctx.externs_by_sym[sym.index] = ext


def _collect_code_relocations(ctx: Context) -> dict[int, dict[int, CodeRel]]:
    """Relocations of executable sections: target section index -> pc -> entry."""
    elf = ctx.elf
    out: dict[int, dict[int, CodeRel]] = {}
    for sec in elf.sections:
        if sec.type != SHT_REL:
            continue
        target = elf.section(sec.info)
        if target is None:
            raise RelocationError(
                f"sh_info {sec.info} names no section", path=ctx.path, section=sec.name
            )
        if sec.info not in ctx.code:
            continue
        entries = out.setdefault(sec.info, {})
        for rel in elf.relocations[sec.index]:
            sym = ctx.relocation_symbol(sec, rel)
            if rel.offset % INSN_SIZE or rel.offset >= target.size:
                raise RelocationError(
                    f"relocation offset {rel.offset:#x} is not an instruction of {target.name}",
                    path=ctx.path,
                    section=sec.name,
                    offset=rel.at,
                )
            pc = rel.offset // INSN_SIZE
            if pc not in ctx.code[sec.info]:
                raise RelocationError(
                    f"relocation offset {rel.offset:#x} points into the middle of an lddw",
                    path=ctx.path,
                    section=sec.name,
                    offset=rel.at,
                )
            entries[pc] = CodeRel(pc=pc, symbol=sym, rel=rel, rel_section=sec.name)
    return out

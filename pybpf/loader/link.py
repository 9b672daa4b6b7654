"""Program layout: a program's code with the functions it calls appended, relocations applied.

The last step of `load_spec`, as libbpf's bpf_object__relocate does it: walking the program
depth-first, each function it calls (bpf-to-bpf call) or takes the address of (a callback's
lddw) is appended once at the end, call and lddw offsets are fixed to land on it, map and
global-data references become BPF_PSEUDO_MAP_FD / BPF_PSEUDO_MAP_VALUE loads, kfunc externs
become kfunc calls, and the func_info, line_info and CO-RE records of every appended function
are moved to their new pcs. All references stay symbolic (`Relocation`) for `pybpf.object`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pybpf.errors import RelocationError
from pybpf.isa import Instruction
from pybpf.isa.instruction import LDDW_OPCODE
from pybpf.isa.opcodes import (
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    BY_NAME,
)
from pybpf.loader.context import INSN_SIZE, CodeRel, Context, Function
from pybpf.loader.elf import SHN_LORESERVE, SHN_UNDEF
from pybpf.loader.spec import (
    CoreRelocation,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocKind,
    Subprogram,
)

_CALL = BY_NAME["call"][0].opcode


class _Layout:
    """The program being built: instructions by pc, and what was appended where."""

    def __init__(self, ctx: Context, core: dict[int, list[CoreRelocation]]) -> None:
        self.ctx = ctx
        self.core = core
        self.insns: dict[int, Instruction] = {}
        self.size = 0
        self.placed: dict[tuple[int, int], int] = {}
        self.subprograms: list[Subprogram] = []
        self.relocations: list[Relocation] = []
        self.func_info: list[Any] = []
        self.line_info: list[Any] = []
        self.core_relos: list[CoreRelocation] = []

    def place(self, fn: Function) -> int:
        start = self.size
        self.placed[(fn.section_index, fn.start)] = start
        code = self.ctx.code[fn.section_index]
        for pc in range(fn.start, fn.start + fn.length):
            if pc in code:
                self.insns[start + pc - fn.start] = code[pc]
        self.size += fn.length
        self._move_records(fn, start)
        return start

    def _move_records(self, fn: Function, start: int) -> None:
        def inside(off: int) -> bool:
            return fn.start <= off < fn.start + fn.length

        ext = self.ctx.ext
        if ext is not None:
            for rec in ext.func_info.get(fn.section, []):
                if inside(rec.insn_off):
                    self.func_info.append(replace(rec, insn_off=rec.insn_off - fn.start + start))
            for rec in ext.line_info.get(fn.section, []):
                if inside(rec.insn_off):
                    self.line_info.append(replace(rec, insn_off=rec.insn_off - fn.start + start))
        for core in self.core.get(fn.section_index, []):
            if inside(core.pc):
                self.core_relos.append(replace(core, pc=core.pc - fn.start + start))


def build_program(
    ctx: Context, spec: ObjectSpec, main: Function, core: dict[int, list[CoreRelocation]]
) -> ProgramSpec:
    layout = _Layout(ctx, core)
    layout.place(main)
    stack = [(main, main.start)]
    while stack:
        fn, pc = stack.pop()
        code = ctx.code[fn.section_index]
        while pc < fn.start + fn.length and pc not in code:
            pc += 1
        if pc >= fn.start + fn.length:
            continue
        stack.append((fn, pc + code[pc].slots))
        new_fn = _relocate(ctx, spec, layout, fn, pc, code[pc])
        if new_fn is not None:
            stack.append((new_fn, new_fn.start))
    info = main.sec_info
    if info is None:
        raise _error(ctx, main, main.start, ".text functions are subprograms, not programs")
    ordered = [layout.insns[pc] for pc in sorted(layout.insns)]
    layout.func_info.sort(key=lambda r: r.insn_off)
    layout.line_info.sort(key=lambda r: r.insn_off)
    layout.core_relos.sort(key=lambda r: r.pc)
    return ProgramSpec(
        name=main.name,
        section=info.section,
        prog_type=info.prog_type,
        expected_attach_type=info.expected_attach_type,
        attach_to=info.attach_to,
        autoload=info.autoload,
        sleepable=info.sleepable,
        prog_flags=info.prog_flags,
        insns=ordered,
        subprograms=layout.subprograms,
        relocations=sorted(layout.relocations, key=lambda r: r.pc),
        func_info=layout.func_info,
        line_info=layout.line_info,
        core_relos=layout.core_relos,
        global_function=main.global_symbol,
        section_offset=main.start * INSN_SIZE,
    )


def _error(
    ctx: Context, fn: Function, pc: int, reason: str, rel: CodeRel | None = None
) -> RelocationError:
    if rel is not None:
        return RelocationError(
            reason,
            path=ctx.path,
            section=rel.rel_section,
            symbol=rel.symbol.name,
            offset=rel.rel.at,
        )
    return RelocationError(reason, path=ctx.path, section=fn.section, offset=pc * INSN_SIZE)


def _target(
    ctx: Context,
    layout: _Layout,
    fn: Function,
    pc: int,
    section: int,
    target_pc: int,
    rel: CodeRel | None,
) -> tuple[Function, int, bool]:
    """The function starting at ``target_pc`` of ``section``, its program pc, and whether it
    was appended just now."""
    target = ctx.functions.get((section, target_pc))
    if target is None:
        sec_name = ctx.elf.sections[section].name if 0 <= section < len(ctx.elf.sections) else "?"
        raise _error(
            ctx,
            fn,
            pc,
            f"call or address target {sec_name}+{target_pc * INSN_SIZE:#x} "
            "is not the start of a function",
            rel,
        )
    key = (section, target_pc)
    if key in layout.placed:
        return target, layout.placed[key], False
    start = layout.place(target)
    layout.subprograms.append(
        Subprogram(name=target.name, section=target.section, start=start, length=target.length)
    )
    return target, start, True


def _relocate(
    ctx: Context, spec: ObjectSpec, layout: _Layout, fn: Function, sec_pc: int, insn: Instruction
) -> Function | None:
    """Rewrite the instruction at ``sec_pc`` of ``fn``; return a function to walk next."""
    rel = ctx.code_rels.get(fn.section_index, {}).get(sec_pc)
    at = layout.placed[(fn.section_index, fn.start)] + sec_pc - fn.start
    is_call = insn.opcode == _CALL
    is_lddw = insn.opcode == LDDW_OPCODE
    if rel is None:
        if is_call and insn.src_reg == BPF_PSEUDO_CALL:
            target, start, new = _target(
                ctx, layout, fn, sec_pc, fn.section_index, sec_pc + insn.imm + 1, None
            )
            layout.insns[at] = replace(insn, imm=start - at - 1)
            layout.relocations.append(Relocation(at, RelocKind.SUBPROG, target.name, start))
            return target if new else None
        if is_lddw and insn.src_reg == BPF_PSEUDO_FUNC:
            raise _error(ctx, fn, sec_pc, "function address load without a relocation")
        return None
    if not (is_call or is_lddw):
        raise _error(
            ctx,
            fn,
            sec_pc,
            f"relocation on a {insn.spec.name} instruction (only calls and lddw are relocated)",
            rel,
        )
    sym = rel.symbol
    ext = ctx.externs_by_sym.get(sym.index)
    if ext is not None:
        if is_call:
            if not ext.is_func:
                raise _error(ctx, fn, sec_pc, f"call of extern variable {ext.name!r}", rel)
            layout.insns[at] = Instruction(_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 0)
            layout.relocations.append(Relocation(at, RelocKind.KFUNC, ext.lookup_name, 0, ext.weak))
        elif ext.kind == "kconfig":
            layout.insns[at] = replace(
                insn, src_reg=BPF_PSEUDO_MAP_VALUE, imm=0, next_imm=ext.offset
            )
            layout.relocations.append(
                Relocation(at, RelocKind.KCONFIG, ext.name, ext.offset, ext.weak)
            )
        else:
            layout.insns[at] = replace(insn, src_reg=0, imm=0, next_imm=0)
            layout.relocations.append(Relocation(at, RelocKind.KSYM, ext.lookup_name, 0, ext.weak))
        return None
    if sym.is_extern:
        raise _error(
            ctx, fn, sec_pc, f"extern {sym.name!r} is not declared __ksym or __kconfig", rel
        )
    if sym.shndx == SHN_UNDEF or sym.shndx >= SHN_LORESERVE:
        raise _error(
            ctx,
            fn,
            sec_pc,
            f"relocation against {sym.name!r} in special section "
            f"{sym.shndx:#x} (an uninitialised global variable?)",
            rel,
        )
    if is_call:
        if insn.src_reg != BPF_PSEUDO_CALL:
            raise _error(ctx, fn, sec_pc, "relocated call is not a bpf-to-bpf call", rel)
        if sym.shndx not in ctx.code or sym.value % INSN_SIZE:
            raise _error(ctx, fn, sec_pc, f"call target {sym.name!r} is not code", rel)
        target_pc = sym.value // INSN_SIZE + insn.imm + 1
        target, start, new = _target(ctx, layout, fn, sec_pc, sym.shndx, target_pc, rel)
        layout.insns[at] = replace(insn, imm=start - at - 1)
        layout.relocations.append(Relocation(at, RelocKind.SUBPROG, target.name, start))
        return target if new else None
    if sym.shndx in ctx.code:
        # clang leaves src_reg 0; libbpf marks every relocated function address as a
        # BPF_PSEUDO_FUNC load, so does the loader.
        if insn.src_reg not in (0, BPF_PSEUDO_FUNC):
            raise _error(ctx, fn, sec_pc, "lddw of a function address has a pseudo source", rel)
        byte_off = sym.value + insn.imm
        if byte_off % INSN_SIZE:
            raise _error(
                ctx, fn, sec_pc, f"function address {byte_off:#x} is not an instruction", rel
            )
        target, start, new = _target(ctx, layout, fn, sec_pc, sym.shndx, byte_off // INSN_SIZE, rel)
        layout.insns[at] = replace(insn, src_reg=BPF_PSEUDO_FUNC, imm=start - at - 1, next_imm=0)
        layout.relocations.append(Relocation(at, RelocKind.FUNC, target.name, start))
        return target if new else None
    map_name = ctx.map_defs.get((sym.shndx, sym.value))
    if map_name is not None:
        layout.insns[at] = replace(insn, src_reg=BPF_PSEUDO_MAP_FD, imm=0, next_imm=0)
        layout.relocations.append(Relocation(at, RelocKind.MAP_FD, map_name))
        return None
    map_name = ctx.data_maps.get(sym.shndx)
    if map_name is not None:
        offset = (insn.imm + sym.value) & 0xFFFFFFFF
        if offset >= max(spec.maps[map_name].value_size, 1):
            raise _error(
                ctx, fn, sec_pc, f"offset {offset:#x} is past the end of map {map_name!r}", rel
            )
        layout.insns[at] = replace(insn, src_reg=BPF_PSEUDO_MAP_VALUE, imm=0, next_imm=offset)
        layout.relocations.append(Relocation(at, RelocKind.MAP_VALUE, map_name, offset))
        return None
    sec_name = ctx.elf.sections[sym.shndx].name
    raise _error(
        ctx,
        fn,
        sec_pc,
        f"lddw of {sym.name!r} in section {sec_name!r}, which holds no map or global data",
        rel,
    )
    return None

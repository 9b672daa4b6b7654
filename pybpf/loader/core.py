"""CO-RE: patch the instructions that `.BTF.ext` core_relo records point at.

A step of `load_spec`, before programs are laid out (so every program that appends a
subprogram gets the patched code). `pybpf.btf.core_resolve` says what a record means against
the target BTF; this module applies it with libbpf's bpf_core_patch_insn rules: an ALU
immediate, a load/store offset (and its size, when the target field is narrower or wider and
the change is safe), or an lddw's 64-bit immediate. Without a target BTF nothing is patched.
An unsatisfiable relocation is a `BtfError` at its instruction and C line, or, when asked,
libbpf's poisoned instruction (a call of the invalid helper 0xbad2310).
"""

from __future__ import annotations

from dataclasses import replace

from pybpf.btf import CoreRelo, CoreResult, core_resolve
from pybpf.errors import BtfError
from pybpf.isa import Instruction
from pybpf.isa.opcodes import BY_NAME, Cls, Size
from pybpf.loader.context import INSN_SIZE, Context
from pybpf.loader.spec import CoreRelocation

POISON_HELPER = 0xBAD2310  # libbpf: "bad relo"
_CALL = BY_NAME["call"][0].opcode
_SIZE_BY_BYTES = {size.bits // 8: size for size in Size}
_SIZE_MASK = 0x18
_S16_MAX = 0x7FFF


def apply_core(ctx: Context, *, poison: bool) -> dict[int, list[CoreRelocation]]:
    """Patch ``ctx.code`` in place; return the applied records per section index (section
    pcs)."""
    out: dict[int, list[CoreRelocation]] = {}
    if ctx.ext is None or ctx.btf is None:
        return out
    by_name = {ctx.elf.sections[i].name: i for i in ctx.code}
    for sec_name, records in ctx.ext.core_relos.items():
        index = by_name.get(sec_name)
        if index is None:
            raise BtfError(
                f"CO-RE records for {sec_name!r}, which is not a code section",
                path=ctx.path,
                section=".BTF.ext",
            )
        out[index] = [_apply(ctx, index, sec_name, rec, poison=poison) for rec in records]
    return out


def _where(ctx: Context, sec_name: str, pc: int) -> str:
    lines = ctx.ext.line_info.get(sec_name, []) if ctx.ext is not None else []
    found = None
    for rec in lines:
        if rec.insn_off > pc:
            break
        found = rec
    if found is None:
        return f"insn {pc}"
    return f"insn {pc} ({found.file}:{found.line}: {found.source.strip()})"


def _apply(
    ctx: Context, index: int, sec_name: str, rec: CoreRelo, *, poison: bool
) -> CoreRelocation:
    code = ctx.code[index]
    pc = rec.insn_off
    insn = code.get(pc)
    if insn is None:
        raise BtfError(
            f"CO-RE relocation at {pc} is not the start of an instruction",
            path=ctx.path,
            section=sec_name,
            offset=pc * INSN_SIZE,
        )
    res = core_resolve(rec, ctx.btf, ctx.target_btf)
    record = CoreRelocation(
        pc=pc,
        kind=rec.kind.name.lower(),
        type_id=rec.type_id,
        type_name=ctx.btf.type_name(rec.type_id),
        access=rec.access_str,
        local_value=res.local_value,
        target_value=res.target_value if ctx.target_btf is not None else None,
    )
    if ctx.target_btf is None:
        return record
    try:
        patched = None if res.poison else _patch(insn, res)
    except _Unsafe as e:
        # The compiled instruction does not match what the relocation expects: as libbpf,
        # that is one more reason the relocation cannot be satisfied.
        patched, res = None, replace(res, poison=True, reason=str(e))
    if patched is None:
        if not poison:
            raise BtfError(
                f"CO-RE {rec.kind.name} relocation of {record.type_name} ({rec.access_str}) at "
                f"{_where(ctx, sec_name, pc)} cannot be satisfied: {res.reason}",
                path=ctx.path,
                section=sec_name,
                offset=pc * INSN_SIZE,
            )
        bad = Instruction(_CALL, 0, 0, 0, POISON_HELPER)
        code[pc] = bad
        if insn.slots == 2:
            code[pc + 1] = bad
        return replace(record, poisoned=True, reason=res.reason)
    code[pc] = patched
    return record


class _Unsafe(Exception):
    """The relocation does not fit the instruction (converted to BtfError by the caller)."""


def _patch(insn: Instruction, res: CoreResult) -> Instruction:
    spec = insn.spec
    cls = spec.cls
    new = res.target_value
    if cls in (Cls.ALU, Cls.ALU64):
        if "imm" not in spec.fields:
            raise _Unsafe(f"{spec.name} has no immediate to relocate")
        if res.validate and insn.imm != _s32(res.local_value):
            raise _Unsafe(f"instruction imm {insn.imm} is not the expected {res.local_value}")
        return replace(insn, imm=_s32(new))
    if cls in (Cls.LDX, Cls.ST, Cls.STX):
        if res.validate and insn.offset != res.local_value:
            raise _Unsafe(f"instruction offset {insn.offset} is not the expected {res.local_value}")
        if not 0 <= new <= _S16_MAX:
            raise _Unsafe(f"offset {new} does not fit a load/store")
        out = replace(insn, offset=new)
        if res.local_size != res.target_size:
            if not res.size_change_ok:
                raise _Unsafe(
                    f"field size changes from {res.local_size} to {res.target_size} bytes and "
                    "the access cannot be resized (only unsigned integers and pointers can)"
                )
            if spec.width // 8 != res.local_size:
                raise _Unsafe(f"access is {spec.width // 8} bytes, field is {res.local_size}")
            size = _SIZE_BY_BYTES.get(res.target_size)
            if size is None:
                raise _Unsafe(f"no load/store of {res.target_size} bytes")
            out = replace(out, opcode=(insn.opcode & ~_SIZE_MASK) | size)
        return out
    if cls is Cls.LD and insn.slots == 2 and insn.src_reg == 0:
        if res.validate and insn.imm64 != res.local_value & 0xFFFFFFFFFFFFFFFF:
            raise _Unsafe(f"lddw value {insn.imm64} is not the expected {res.local_value}")
        return Instruction.lddw(insn.dst_reg, new)
    raise _Unsafe(f"{spec.name} cannot carry a CO-RE relocation")


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value

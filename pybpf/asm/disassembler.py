"""The disassembler: instructions -> text in either dialect, which assembles back to the
same bytes.

The llvm dialect prints what ``llvm-objdump -d --mcpu=v4`` prints (hex immediates and
offsets, ``w`` registers for 32-bit loads, stores and atomics, ``r1 = 0x1234 ll``,
``ld_pseudo\tr1, 0x1, 0x4`` for the lddw kinds), except where objdump's text would not say
which instruction it was: a local call is ``call pc+N`` and a kfunc call
``call kernel-function#ID`` (both the kernel log's spelling; objdump prints ``call imm``
for all three call kinds), and an LD_IND with an immediate shows it (``skb[r1 + 0x2]``).
The conformance dialect prints the table name with dots as spaces (see `pybpf.asm`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pybpf.asm.parser import DIALECTS
from pybpf.asm.syntax import (
    ALU_OPERATORS,
    JMP_OPERATORS,
    KFUNC_NAME,
    Kind,
    atomic_function_names,
    conformance_mnemonic,
    conformance_slots,
    is_fetch_of_lock_op,
    is_helper_call,
    is_local_call,
    lock_operator,
    mem_type,
    target_field,
)
from pybpf.errors import AsmError, DecodeError
from pybpf.isa.instruction import Instruction, decode_program, select, with_pcs
from pybpf.isa.opcodes import BPF_FETCH, OpSpec, Shape


def _spec(insn: Instruction, pc: int | None) -> OpSpec:
    found = select(insn.opcode, insn.dst_reg, insn.src_reg, insn.offset, insn.imm)
    if isinstance(found, str):
        raise DecodeError(found, pc=-1 if pc is None else pc, raw=insn.encode()[:8])
    return found


def _dec(value: int) -> str:
    """Conformance numbers: decimal when small, hex (with its sign) when large."""
    if -4096 < value < 4096:
        return str(value)
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _hex(value: int) -> str:
    """llvm-objdump numbers: signed hex."""
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _rel(value: int) -> str:
    return f"{value:+d}"


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _target(insn: Instruction, spec: OpSpec) -> int | None:
    name = target_field(spec)
    return None if name is None else getattr(insn, name)


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise AsmError(f"unknown dialect {dialect!r}", line=0, expected=list(DIALECTS))


def format_insn(
    insn: Instruction,
    dialect: str = "llvm",
    pc: int | None = None,
    helper_names: Mapping[int, str] | None = None,
) -> str:
    """One instruction as text. With ``pc``, jumps and local calls are annotated with their
    absolute target (``<L12>`` in llvm, ``# L12`` in conformance); with ``helper_names``,
    helper calls with the helper's name, as a comment."""
    _check_dialect(dialect)
    spec = _spec(insn, pc)
    label = None
    if pc is not None and target_field(spec) is not None:
        label = f"L{pc + 1 + (_target(insn, spec) or 0)}"
    return _format(insn, spec, dialect, None, label, helper_names)


def _format(
    insn: Instruction,
    spec: OpSpec,
    dialect: str,
    label: str | None,
    annotation: str | None,
    helper_names: Mapping[int, str] | None,
) -> str:
    if dialect == "llvm":
        text = _llvm(insn, spec, label or annotation)
        note = "; "
    else:
        text = _conformance(insn, spec, label)
        if annotation is not None:
            text += f" # {annotation}"
        note = "# "
    if helper_names and is_helper_call(spec) and insn.imm in helper_names:
        text += f" {note}{helper_names[insn.imm]}"
    return text


def disassemble(
    code: bytes | list[Instruction],
    dialect: str = "llvm",
    *,
    labels: bool = True,
    helper_names: Mapping[int, str] | None = None,
) -> str:
    """The program as text, one instruction per line; assembles back to the same bytes.

    With ``labels``, every jump or local-call target inside the program gets a label line
    ``L<pc>:``; conformance jumps then name it, llvm jumps keep the relative ``goto +0x3``
    and add ``<L12>`` (an annotation the assembler skips, as it skips objdump's)."""
    _check_dialect(dialect)
    insns = decode_program(code) if isinstance(code, bytes | bytearray | memoryview) else code
    placed = list(with_pcs(insns))
    specs = [_spec(insn, pc) for pc, insn in placed]
    starts = {pc for pc, _ in placed}
    end = placed[-1][0] + placed[-1][1].slots if placed else 0
    names: dict[int, str] = {}
    if labels:
        for (pc, insn), spec in zip(placed, specs, strict=True):
            rel = _target(insn, spec)
            if rel is not None and (pc + 1 + rel in starts or pc + 1 + rel == end):
                names[pc + 1 + rel] = f"L{pc + 1 + rel}"
    lines = []
    for (pc, insn), spec in zip(placed, specs, strict=True):
        if pc in names:
            lines.append(f"{names[pc]}:")
        rel = _target(insn, spec)
        target = names.get(pc + 1 + rel) if rel is not None else None
        if dialect == "llvm":
            lines.append(_format(insn, spec, dialect, None, target, helper_names))
        else:
            lines.append(_format(insn, spec, dialect, target, None, helper_names))
    if end in names:
        lines.append(f"{names[end]}:")
    return "".join(line + "\n" for line in lines)


# --- conformance dialect --------------------------------------------------------------------


def _conformance(insn: Instruction, spec: OpSpec, label: str | None) -> str:
    operands = []
    for slot in conformance_slots(spec):
        value = getattr(insn, slot.field)
        if slot.kind is Kind.REG:
            operands.append(f"%r{value}")
        elif slot.kind is Kind.MEM:
            off = insn.offset
            operands.append(f"[%r{value}{off:+d}]" if off else f"[%r{value}]")
        elif slot.kind is Kind.TARGET:
            operands.append(label if label is not None else _rel(value))
        elif slot.kind is Kind.IMM64:
            operands.append(_dec(insn.imm64))
        elif not slot.optional or value:
            operands.append(_dec(value))
    mnemonic = conformance_mnemonic(spec)
    return f"{mnemonic} {', '.join(operands)}" if operands else mnemonic


# --- llvm dialect ---------------------------------------------------------------------------


def _reg(num: int, width: int) -> str:
    return f"{'w' if width == 32 else 'r'}{num}"


def _mem(base: int, offset: int) -> str:
    return f"(r{base} {'-' if offset < 0 else '+'} {abs(offset):#x})"


def _llvm(insn: Instruction, spec: OpSpec, label: str | None) -> str:
    shape, width = spec.shape, spec.width
    dst, src = insn.dst_reg, insn.src_reg
    annot = f" <{label}>" if label is not None else ""
    if shape is Shape.ALU_IMM:
        return f"{_reg(dst, width)} {ALU_OPERATORS[spec.sem]} {_hex(insn.imm)}"
    if shape is Shape.ALU_REG:
        if spec.ext:
            return f"{_reg(dst, width)} = (s{spec.ext}){_reg(src, width)}"
        return f"{_reg(dst, width)} {ALU_OPERATORS[spec.sem]} {_reg(src, width)}"
    if shape is Shape.UNARY:
        return f"{_reg(dst, width)} = -{_reg(dst, width)}"
    if shape is Shape.END:
        return f"r{dst} = {spec.name} r{dst}"
    if shape is Shape.JA:
        return f"goto {_hex_rel(insn.offset)}{annot}"
    if shape is Shape.JA32:
        return f"gotol {_hex_rel(insn.imm)}{annot}"
    if shape in (Shape.JMP_IMM, Shape.JMP_REG):
        right = _hex(insn.imm) if shape is Shape.JMP_IMM else _reg(src, width)
        op = JMP_OPERATORS[spec.sem]
        return f"if {_reg(dst, width)} {op} {right} goto {_hex_rel(insn.offset)}{annot}"
    if shape is Shape.CALL:
        if is_local_call(spec):
            return f"call pc{insn.imm:+d}{annot}"
        return f"call {_hex(insn.imm)}"
    if shape is Shape.KFUNC_CALL:
        suffix = f", {insn.offset}" if insn.offset else ""
        return f"call {KFUNC_NAME}#{insn.imm}{suffix}"
    if shape is Shape.CALLX:
        return f"callx r{dst}"
    if shape is Shape.EXIT:
        return "exit"
    if shape is Shape.LDDW:
        kind = spec.selector[1] if spec.selector else 0
        if kind:
            return f"ld_pseudo\tr{dst}, {kind:#x}, {_hex(_signed64(insn.imm64))}"
        return f"r{dst} = {_hex(_signed64(insn.imm64))} ll"
    if shape is Shape.LDX:
        signed = spec.sem == "ldxs"
        reg = _reg(dst, 64 if signed or width == 64 else 32)
        return f"{reg} = *({mem_type(width, signed)} *){_mem(src, insn.offset)}"
    if shape is Shape.ST:
        return f"*({mem_type(width)} *){_mem(dst, insn.offset)} = {_hex(insn.imm)}"
    if shape is Shape.STX:
        reg = _reg(src, 64 if width == 64 else 32)
        return f"*({mem_type(width)} *){_mem(dst, insn.offset)} = {reg}"
    if shape is Shape.ATOMIC:
        return _llvm_atomic(insn, spec)
    if shape is Shape.LD_ABS:
        return f"r0 = *({mem_type(width)} *)skb[{_hex(insn.imm)}]"
    if insn.imm:
        sign = "-" if insn.imm < 0 else "+"
        return f"r0 = *({mem_type(width)} *)skb[r{src} {sign} {abs(insn.imm):#x}]"
    return f"r0 = *({mem_type(width)} *)skb[r{src}]"


def _hex_rel(value: int) -> str:
    return f"-{-value:#x}" if value < 0 else f"+{value:#x}"


def _llvm_atomic(insn: Instruction, spec: OpSpec) -> str:
    width, dst, src = spec.width, insn.dst_reg, insn.src_reg
    typ = mem_type(width)
    mem = _mem(dst, insn.offset)
    if not (spec.selector and spec.selector[1] & BPF_FETCH):
        return f"lock *({typ} *){mem} {lock_operator(spec)} {_reg(src, width)}"
    name = atomic_function_names(spec)[0]
    if is_fetch_of_lock_op(spec):
        return f"{_reg(src, width)} = {name}(({typ} *){mem}, {_reg(src, width)})"
    bare = mem[1:-1]
    if spec.sem == "atomic_cmpxchg":
        r0 = _reg(0, width)
        return f"{r0} = {name}({bare}, {r0}, {_reg(src, width)})"
    return f"{_reg(src, width)} = {name}({bare}, {_reg(src, width)})"

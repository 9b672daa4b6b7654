"""The vocabulary of both assembly dialects, derived from the opcode table.

Sits between `pybpf.isa.opcodes` (what the operations are) and the assembler/disassembler
(how they are written). Nothing here restates an opcode fact: mnemonics are table names,
operand layouts follow from each row's ``shape``, and the llvm operators are keyed by the
rows' semantics keys. What is written down here is only spelling: the conformance
dialect's aliases, the llvm operator for each semantics key, the operand layout of each
shape in the conformance dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pybpf.isa.opcodes import (
    BPF_FETCH,
    BPF_PSEUDO_CALL,
    OPS,
    OpSpec,
    Shape,
)


class Kind(StrEnum):
    """Operand kinds of the conformance dialect; the value is how errors name them."""

    REG = "register"
    IMM = "immediate"
    IMM64 = "64-bit immediate"
    MEM = "memory operand"
    TARGET = "jump target"


@dataclass(frozen=True, slots=True)
class Slot:
    """One operand position: its kind, the instruction field it fills, whether it may be
    left out (then the field is 0)."""

    kind: Kind
    field: str
    optional: bool = False


_R, _I, _M, _T = Kind.REG, Kind.IMM, Kind.MEM, Kind.TARGET

# Conformance-dialect operand layout per shape ("mem" fills a register field and offset).
_SHAPE_SLOTS: dict[Shape, tuple[Slot, ...]] = {
    Shape.ALU_IMM:    (Slot(_R, "dst_reg"), Slot(_I, "imm")),
    Shape.ALU_REG:    (Slot(_R, "dst_reg"), Slot(_R, "src_reg")),
    Shape.UNARY:      (Slot(_R, "dst_reg"),),
    Shape.END:        (Slot(_R, "dst_reg"),),
    Shape.JA:         (Slot(_T, "offset"),),
    Shape.JA32:       (Slot(_T, "imm"),),
    Shape.JMP_IMM:    (Slot(_R, "dst_reg"), Slot(_I, "imm"), Slot(_T, "offset")),
    Shape.JMP_REG:    (Slot(_R, "dst_reg"), Slot(_R, "src_reg"), Slot(_T, "offset")),
    Shape.CALL:       (Slot(_I, "imm"),),
    Shape.KFUNC_CALL: (Slot(_I, "imm"), Slot(_I, "offset", optional=True)),
    Shape.CALLX:      (Slot(_R, "dst_reg"),),
    Shape.EXIT:       (),
    Shape.LDDW:       (Slot(_R, "dst_reg"), Slot(Kind.IMM64, "imm")),
    Shape.LDX:        (Slot(_R, "dst_reg"), Slot(_M, "src_reg")),
    Shape.ST:         (Slot(_M, "dst_reg"), Slot(_I, "imm")),
    Shape.STX:        (Slot(_M, "dst_reg"), Slot(_R, "src_reg")),
    Shape.ATOMIC:     (Slot(_M, "dst_reg"), Slot(_R, "src_reg")),
    Shape.LD_ABS:     (Slot(_I, "imm"),),
    Shape.LD_IND:     (Slot(_R, "src_reg"), Slot(_I, "imm")),
}  # fmt: skip


def is_local_call(spec: OpSpec) -> bool:
    """A bpf-to-bpf call: its imm is a pc-relative target, not a helper id."""
    return spec.shape is Shape.CALL and spec.selector == ("src_reg", BPF_PSEUDO_CALL)


def is_helper_call(spec: OpSpec) -> bool:
    return spec.shape is Shape.CALL and spec.selector == ("src_reg", 0)


def target_field(spec: OpSpec) -> str | None:
    """The field holding a pc-relative target (jumps, gotol, local calls), or None."""
    if spec.shape in (Shape.JA, Shape.JMP_IMM, Shape.JMP_REG):
        return "offset"
    if spec.shape is Shape.JA32 or is_local_call(spec):
        return "imm"
    return None


def conformance_slots(spec: OpSpec) -> tuple[Slot, ...]:
    if is_local_call(spec):
        return (Slot(_T, "imm"),)
    return _SHAPE_SLOTS[spec.shape]


def conformance_mnemonic(spec: OpSpec) -> str:
    """The printed mnemonic: the table name with dots as spaces (``call local``,
    ``lddw map_fd``, ``call kfunc``); callx is ``call %rN`` as the suite writes it."""
    if spec.shape is Shape.CALLX:
        return "call"
    return spec.name.replace(".", " ")


def _conformance_mnemonics() -> dict[str, tuple[OpSpec, ...]]:
    table: dict[str, tuple[OpSpec, ...]] = {}

    def add(word: str, op: OpSpec) -> None:
        if op not in table.get(word, ()):
            table[word] = (*table.get(word, ()), op)

    for op in OPS:
        add(op.name, op)
        add(conformance_mnemonic(op), op)
        if op.sem == "bswap":
            # The suite's alias: swap16/32/64 are bswap16/32/64.
            add(op.name.removeprefix("b"), op)
    return table


# mnemonic (words separated by one space) -> candidate rows, told apart by operand kinds.
CONFORMANCE_MNEMONICS: dict[str, tuple[OpSpec, ...]] = _conformance_mnemonics()


def mnemonic_regex() -> str:
    """A regex matching exactly the conformance mnemonics (longest first, any blanks
    between the words of ``lock fetch add``), for the grammar's MNEMONIC terminal."""
    words = sorted(CONFORMANCE_MNEMONICS, key=lambda w: (-len(w), w))
    alternatives = "|".join(
        r"[ \t]+".join(part.replace(".", r"\.") for part in w.split()) for w in words
    )
    return f"(?:{alternatives})(?![\\w.])"


# --- llvm-objdump / kernel verifier log dialect ---------------------------------------------

# ALU semantics key -> compound-assignment operator (llvm and kernel agree).
ALU_OPERATORS: dict[str, str] = {
    "add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "sdiv": "s/=", "or": "|=",
    "and": "&=", "lsh": "<<=", "rsh": ">>=", "mod": "%=", "smod": "s%=", "xor": "^=",
    "mov": "=", "arsh": "s>>=",
}  # fmt: skip
OPERATOR_ALU: dict[str, str] = {v: k for k, v in ALU_OPERATORS.items()}

# Jump semantics key -> comparison operator.
JMP_OPERATORS: dict[str, str] = {
    "jeq": "==", "jgt": ">", "jge": ">=", "jset": "&", "jne": "!=", "jsgt": "s>",
    "jsge": "s>=", "jlt": "<", "jle": "<=", "jslt": "s<", "jsle": "s<=",
}  # fmt: skip
OPERATOR_JMP: dict[str, str] = {v: k for k, v in JMP_OPERATORS.items()}

KFUNC_NAME = "kernel-function"  # the kernel log's name for a kfunc it cannot name


def mem_type(width: int, signed: bool = False) -> str:
    return f"{'s' if signed else 'u'}{width}"


def _rows(shape: Shape) -> tuple[OpSpec, ...]:
    return tuple(op for op in OPS if op.shape is shape)


def find(shape: Shape, **want: object) -> OpSpec | None:
    """The row of ``shape`` whose attributes (sem, width, ext, selector...) equal ``want``."""
    for op in _BY_SHAPE[shape]:
        if all(getattr(op, k) == v for k, v in want.items()):
            return op
    return None


_BY_SHAPE: dict[Shape, tuple[OpSpec, ...]] = {shape: _rows(shape) for shape in Shape}


def is_fetch_of_lock_op(spec: OpSpec) -> bool:
    """An atomic with the FETCH bit whose operation also exists without it (fetch_add...),
    as opposed to the exchanges (xchg, cmpxchg), which only exist as fetching forms."""
    imm = spec.selector[1] if spec.selector else 0
    if not imm & BPF_FETCH:
        return False
    plain = ("imm", imm & ~BPF_FETCH)
    return find(Shape.ATOMIC, selector=plain, width=spec.width) is not None


def lock_operator(spec: OpSpec) -> str:
    """``+=`` for ``lock *(u64 *)(r1 + 0x0) += r2`` (atomic_add), and so on."""
    return ALU_OPERATORS[spec.sem.removeprefix("atomic_")]


def atomic_function_names(spec: OpSpec) -> tuple[str, ...]:
    """The function-call spellings of a fetching atomic: llvm's first, then the kernel's.
    The width of names without a width in them comes from the pointer cast."""
    if is_fetch_of_lock_op(spec):
        # atomic_fetch_add (llvm, both widths; kernel 32-bit), atomic64_fetch_add (kernel 64)
        names = [spec.sem]
        if spec.width == 64:
            names.append(spec.sem.replace("atomic_", "atomic64_", 1))
        return tuple(names)
    op = spec.sem.removeprefix("atomic_")
    if spec.width == 64:
        return (f"{op}_64", f"atomic64_{op}")
    return (f"{op}32_32", spec.sem)


def atomic_function_table() -> dict[str, list[OpSpec]]:
    table: dict[str, list[OpSpec]] = {}
    for op in _BY_SHAPE[Shape.ATOMIC]:
        if op.selector is not None and op.selector[1] & BPF_FETCH:
            for name in atomic_function_names(op):
                table.setdefault(name, []).append(op)
    return table


ATOMIC_FUNCTIONS: dict[str, list[OpSpec]] = atomic_function_table()

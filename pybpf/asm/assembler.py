"""The assembler: text in either dialect -> `Instruction`s -> bytes.

Second stage after `pybpf.asm.parser`: places the statements at their program counters
(slots; an lddw takes two), resolves labels (a reference to ``exit`` that no label defines
means the first ``exit`` instruction, as the conformance suite has it), checks every jump
distance against its field and encodes through `pybpf.isa.instruction`.
"""

from __future__ import annotations

import re

from pybpf.asm.parser import DIALECTS, S16, S32, LabelDef, Pos, Stmt, parse
from pybpf.asm.syntax import target_field
from pybpf.errors import AsmError
from pybpf.isa.instruction import Instruction, encode_program
from pybpf.isa.opcodes import Shape

_COMMENT = re.compile(r"(^|\s)(#|;|//).*$")
_CONFORMANCE_MARK = re.compile(r"%[A-Za-z]")
_LLVM_MARK = re.compile(r"\b[rw][0-9]+\b|=|\bgoto|\bgotol\b|\bcallx\b|\bld_pseudo\b|\bcall pc")


def detect_dialect(text: str) -> str:
    """The dialect of ``text``, judged with comments stripped: ``conformance`` when it writes
    registers ``%rN``; ``llvm`` when it has an assignment, a ``goto``, a bare ``rN``/``wN``
    register, ``callx`` or ``ld_pseudo``; ``conformance`` otherwise (``exit`` and ``call 1``
    read the same in both)."""
    llvm = False
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw)
        if _CONFORMANCE_MARK.search(line):
            return "conformance"
        llvm = llvm or bool(_LLVM_MARK.search(line))
    return "llvm" if llvm else "conformance"


def assemble_insns(text: str, dialect: str = "auto") -> list[Instruction]:
    """Assemble ``text``; raises AsmError (with line, column and what was expected)."""
    if dialect == "auto":
        dialect = detect_dialect(text)
    if dialect not in DIALECTS:
        raise AsmError(f"unknown dialect {dialect!r}", line=0, expected=[*DIALECTS, "auto"])
    items = parse(text, dialect)
    labels: dict[str, tuple[int, Pos]] = {}
    placed: list[tuple[int, Stmt]] = []
    pc = 0
    first_exit: int | None = None
    for item in items:
        if isinstance(item, LabelDef):
            if item.name in labels:
                first = labels[item.name][1]
                raise AsmError(
                    f"label {item.name!r} is already defined at line {first.line}",
                    line=item.pos.line,
                    column=item.pos.column,
                )
            labels[item.name] = (pc, item.pos)
            continue
        if item.spec.shape is Shape.EXIT and first_exit is None:
            first_exit = pc
        placed.append((pc, item))
        pc += item.spec.slots
    if "exit" not in labels and first_exit is not None:
        labels["exit"] = (first_exit, Pos(0, 0))
    return [_encode(stmt, pc, labels) for pc, stmt in placed]


def assemble(text: str, dialect: str = "auto") -> bytes:
    """Assemble ``text`` to the program's bytes (8 per slot, little-endian)."""
    return encode_program(assemble_insns(text, dialect))


def _encode(stmt: Stmt, pc: int, labels: dict[str, tuple[int, Pos]]) -> Instruction:
    spec = stmt.spec
    fields = dict(stmt.fields)
    if spec.selector is not None:
        fields[spec.selector[0]] = spec.selector[1]
    ref = stmt.target
    if ref is not None:
        name = target_field(spec) or "offset"
        if ref.label is not None:
            if ref.label not in labels:
                raise AsmError(
                    f"undefined label {ref.label!r}",
                    line=ref.pos.line,
                    column=ref.pos.column,
                    expected=sorted(labels),
                )
            distance = labels[ref.label][0] - (pc + 1)
        else:
            distance = ref.value
        low, high = S16 if name == "offset" else S32
        if not low <= distance < high:
            what = "jump" if spec.shape is not Shape.CALL else "call"
            raise AsmError(
                f"{what} distance {distance} does not fit the {name} field [{low}, {high - 1}]",
                line=ref.pos.line,
                column=ref.pos.column,
            )
        fields[name] = distance
    if spec.shape is Shape.LDDW:
        return Instruction.lddw(fields.get("dst_reg", 0), stmt.imm64, fields.get("src_reg", 0))
    return Instruction(spec.opcode, **fields)

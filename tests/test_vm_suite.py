"""The interpreter against the bpf_conformance suite (through `run_program` directly, with a
minimal reading of the `.data` format) and against a small reference evaluator of ALU
instructions on random straight-line programs (hypothesis), traced and untraced."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.errors import ExhaustionError
from pybpf.isa import OPS, Instruction, Shape
from pybpf.vm import Interpreter, run_program

SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
FILES = sorted(SUITE.glob("*.data")) if SUITE.is_dir() else []
M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def _sections(path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("-- "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


@pytest.mark.skipif(not FILES, reason=f"conformance suite not found at {SUITE}")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conformance_file(path: Path) -> None:
    sec = _sections(path)
    if "raw" in sec:
        words = [int(w, 16) for w in sec["raw"] if w.strip()]
        code = b"".join(struct.pack("<Q", w) for w in words)
    else:
        from pybpf.asm import assemble

        code = assemble("\n".join(sec["asm"]))
    mem = bytes.fromhex("".join(sec.get("mem", [])).replace(" ", ""))
    expected = int(" ".join(sec["result"]).split()[0], 0)
    helpers = {5: lambda r1, r2, r3, r4, r5: r1}
    assert run_program(code, mem=mem, helpers=helpers).r0 == expected


# ---- random straight-line ALU programs against a reference evaluator ----

_ALU_ROWS = [op for op in OPS if op.shape in (Shape.ALU_IMM, Shape.ALU_REG, Shape.UNARY, Shape.END)]


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _ref_alu(sem: str, bits: int, ext: int, a: int, b: int) -> int:
    """One ALU operation on ``bits``-wide operands, written independently of the generator."""
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    if sem in ("div", "mod", "sdiv", "smod") and b == 0:
        return 0 if sem in ("div", "sdiv") else a
    if sem in ("sdiv", "smod"):
        sa, sb = _signed(a, bits), _signed(b, bits)
        q = int(abs(sa) // abs(sb)) * (1 if (sa >= 0) == (sb >= 0) else -1)
        return (q if sem == "sdiv" else sa - q * sb) & mask
    shift = b % bits
    table = {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a // b,
        "mod": lambda: a % b,
        "or": lambda: a | b,
        "and": lambda: a & b,
        "xor": lambda: a ^ b,
        "lsh": lambda: a << shift,
        "rsh": lambda: a >> shift,
        "arsh": lambda: _signed(a, bits) >> shift,
        "neg": lambda: -a,
        "mov": lambda: b,
        "movsx": lambda: _signed(b, ext),
    }
    return table[sem]() & mask


def _ref_end(sem: str, width: int, value: int) -> int:
    raw = (value & ((1 << width) - 1)).to_bytes(width // 8, "little")
    return int.from_bytes(raw, "little" if sem == "le" else "big")


def _reference(init: list[int], prog: list[Instruction]) -> list[int]:
    regs = list(init)
    for insn in prog:
        spec = insn.spec
        if spec.shape is Shape.END:
            regs[insn.dst_reg] = _ref_end(spec.sem, spec.width, regs[insn.dst_reg])
            continue
        # an immediate operand is sign-extended to 64 bits first
        b = regs[insn.src_reg] if spec.shape is Shape.ALU_REG else insn.imm & M64
        regs[insn.dst_reg] = _ref_alu(spec.sem, spec.width, spec.ext, regs[insn.dst_reg], b)
    return regs


@st.composite
def _alu_insn(draw: st.DrawFn) -> Instruction:
    row = draw(st.sampled_from(_ALU_ROWS))
    fields = {"dst_reg": draw(st.integers(0, 9)), "src_reg": 0, "offset": 0, "imm": 0}
    if row.shape is Shape.ALU_REG:
        fields["src_reg"] = draw(st.integers(0, 9))
    if row.shape is Shape.ALU_IMM:
        fields["imm"] = draw(
            st.one_of(st.integers(-(1 << 31), (1 << 31) - 1), st.sampled_from([0, -1, 1, 63, 64]))
        )
    if row.selector is not None:
        fields[row.selector[0]] = row.selector[1]
    return Instruction(row.opcode, **fields)


_VALUES = st.one_of(
    st.integers(0, M64), st.sampled_from([0, 1, M64, 1 << 63, M32, 1 << 31, (1 << 31) - 1])
)


@settings(max_examples=150, deadline=None)
@given(init=st.lists(_VALUES, min_size=10, max_size=10), body=st.lists(_alu_insn(), max_size=20))
def test_random_alu_programs(init: list[int], body: list[Instruction]) -> None:
    prog = [Instruction.lddw(r, v) for r, v in enumerate(init)] + body + [Instruction(0x95)]
    final: list[int] = []

    def trace(pc: int, insn: Instruction, regs: list[int]) -> None:
        final[:] = regs

    interp = Interpreter(prog)
    untraced = interp.execute()
    traced = interp.execute(trace=trace)
    expected = _reference(init, body)
    assert final[:10] == expected
    assert traced.r0 == untraced.r0 == expected[0]
    assert traced.insns == untraced.insns == len(prog)


# ---- random control flow against a stepping reference ----

_JMP_ROWS = [op for op in OPS if op.shape in (Shape.JMP_IMM, Shape.JMP_REG)]
_BUDGET = 400


def _ref_jump(sem: str, bits: int, a: int, b: int) -> bool:
    mask = (1 << bits) - 1
    a, b = a & mask, b & mask
    sa, sb = _signed(a, bits), _signed(b, bits)
    return {
        "jeq": a == b,
        "jne": a != b,
        "jgt": a > b,
        "jge": a >= b,
        "jlt": a < b,
        "jle": a <= b,
        "jset": bool(a & b),
        "jsgt": sa > sb,
        "jsge": sa >= sb,
        "jslt": sa < sb,
        "jsle": sa <= sb,
    }[sem]


def _step_reference(prog: list[Instruction]) -> tuple[int, int] | None:
    """(r0, executed) or None when the budget runs out; pcs are list indices (no lddw)."""
    regs = [0] * 11
    pc = executed = 0
    while True:
        executed += 1
        if executed > _BUDGET:
            return None
        insn = prog[pc]
        spec = insn.spec
        if spec.shape is Shape.EXIT:
            return regs[0], executed
        if spec.shape is Shape.JA:
            pc += 1 + insn.offset
            continue
        if spec.shape in (Shape.JMP_IMM, Shape.JMP_REG):
            b = regs[insn.src_reg] if spec.shape is Shape.JMP_REG else insn.imm & M64
            taken = _ref_jump(spec.sem, spec.width, regs[insn.dst_reg], b)
            pc += 1 + (insn.offset if taken else 0)
            continue
        regs[:10] = _reference(regs[:10], [insn])
        pc += 1


@st.composite
def _cfg_program(draw: st.DrawFn) -> list[Instruction]:
    size = draw(st.integers(2, 24))
    prog: list[Instruction] = []
    for pc in range(size - 1):
        kind = draw(st.sampled_from(["alu", "alu", "jmp", "ja"]))
        if kind == "alu":
            prog.append(draw(_alu_insn()))
            continue
        target = draw(st.integers(0, size - 1))
        if kind == "ja":
            prog.append(Instruction(0x05, offset=target - pc - 1))
            continue
        row = draw(st.sampled_from(_JMP_ROWS))
        src = draw(st.integers(0, 9)) if row.shape is Shape.JMP_REG else 0
        imm = draw(st.integers(-4, 4)) if row.shape is Shape.JMP_IMM else 0
        dst = draw(st.integers(0, 9))
        prog.append(Instruction(row.opcode, dst, src, target - pc - 1, imm))
    return [*prog, Instruction(0x95)]


@settings(max_examples=300, deadline=None)
@given(prog=_cfg_program())
def test_random_control_flow(prog: list[Instruction]) -> None:
    expected = _step_reference(prog)
    try:
        out = run_program(prog, budget=_BUDGET)
    except ExhaustionError:
        assert expected is None
        return
    assert (out.r0, out.insns) == expected

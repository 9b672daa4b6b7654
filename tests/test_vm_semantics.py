"""Interpreter semantics, instruction by instruction: a table of small programs (built from
the opcode table, no assembler needed) and the r0 each must return, plus the corner cases of
RFC 9669 (division by zero, INT_MIN / -1, shifts by the width or more, 32-bit zero-extension,
sign extension, byte swaps, atomics' old values, cmpxchg hit and miss)."""

from __future__ import annotations

import pytest

from pybpf.isa import BY_NAME, SEMANTICS, Instruction, OpSpec
from pybpf.vm import HANDLERS, run_program

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
EXIT = Instruction(0x95)


def ins(name: str, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:
    """An instruction of the table row ``name`` (its immediate form; `reg` for the other)."""
    return _build(BY_NAME[name][0], dst, src, off, imm)


def reg(name: str, dst: int, src: int, off: int = 0) -> Instruction:
    """The register-source form of ``name``."""
    return _build(BY_NAME[name][-1], dst, src, off, 0)


def _build(row: OpSpec, dst: int, src: int, off: int, imm: int) -> Instruction:
    fields = {"dst_reg": dst, "src_reg": src, "offset": off, "imm": imm}
    if row.selector is not None:
        fields[row.selector[0]] = row.selector[1]
    return Instruction(row.opcode, **fields)


def lddw(dst: int, value: int) -> Instruction:
    return Instruction.lddw(dst, value)


def r0_of(*insns: Instruction) -> int:
    return run_program([*insns, EXIT]).r0


INT64_MIN = 1 << 63

CASES: list[tuple[str, list[Instruction], int]] = [
    # division and modulo
    ("sdiv INT64_MIN / -1", [lddw(0, INT64_MIN), ins("sdiv", 0, imm=-1)], INT64_MIN),
    (
        "sdiv reg INT64_MIN / -1",
        [lddw(0, INT64_MIN), ins("mov", 1, imm=-1), reg("sdiv", 0, 1)],
        INT64_MIN,
    ),
    ("smod INT64_MIN % -1", [lddw(0, INT64_MIN), ins("smod", 0, imm=-1)], 0),
    ("smod by 0 keeps dst", [ins("mov", 0, imm=-7), ins("smod", 0, imm=0)], M64 - 6),
    (
        "smod32 by 0 zero-extends",
        [lddw(0, 0x1_FFFF_FFF9), ins("mov", 1, imm=0), reg("smod32", 0, 1)],
        0xFFFF_FFF9,
    ),
    ("sdiv32 INT32_MIN / -1", [ins("mov32", 0, imm=-(1 << 31)), ins("sdiv32", 0, imm=-1)], 1 << 31),
    ("smod32 INT32_MIN % -1", [ins("mov32", 0, imm=-(1 << 31)), ins("smod32", 0, imm=-1)], 0),
    ("sdiv truncates toward 0", [ins("mov", 0, imm=-7), ins("sdiv", 0, imm=2)], M64 - 2),
    ("smod sign of dividend", [ins("mov", 0, imm=-7), ins("smod", 0, imm=2)], M64),
    ("smod32 sign of dividend", [ins("mov32", 0, imm=7), ins("smod32", 0, imm=-2)], 1),
    ("div by 0 reg", [ins("mov", 0, imm=9), ins("mov", 1, imm=0), reg("div", 0, 1)], 0),
    ("div by 0 imm", [ins("mov", 0, imm=9), ins("div", 0, imm=0)], 0),
    ("div32 by 0", [lddw(0, M64), ins("div32", 0, imm=0)], 0),
    ("mod by 0 keeps dst", [lddw(0, M64), ins("mov", 1, imm=0), reg("mod", 0, 1)], M64),
    ("mod32 by 0 keeps low half", [lddw(0, M64), ins("mod32", 0, imm=0)], M32),
    ("div imm is sign-extended", [lddw(0, M64), ins("div", 0, imm=-1)], 1),
    ("div32 uses low halves", [lddw(0, 0x5_0000_0010), ins("div32", 0, imm=4)], 4),
    ("mod", [ins("mov", 0, imm=17), ins("mod", 0, imm=5)], 2),
    # shifts
    (
        "lsh by 64 (reg) masks to 0",
        [ins("mov", 0, imm=3), ins("mov", 1, imm=64), reg("lsh", 0, 1)],
        3,
    ),
    ("lsh by 65 masks to 1", [ins("mov", 0, imm=3), ins("mov", 1, imm=65), reg("lsh", 0, 1)], 6),
    (
        "lsh32 by 32 masks to 0",
        [lddw(0, 0x1_0000_0003), ins("mov", 1, imm=32), reg("lsh32", 0, 1)],
        3,
    ),
    ("rsh32 by 33", [lddw(0, 0x1_0000_0008), ins("mov", 1, imm=33), reg("rsh32", 0, 1)], 4),
    ("lsh overflows away", [lddw(0, M64), ins("lsh", 0, imm=63)], INT64_MIN),
    ("arsh 63 of negative", [lddw(0, INT64_MIN), ins("arsh", 0, imm=63)], M64),
    ("arsh32 sign bit", [ins("mov32", 0, imm=-(1 << 31)), ins("arsh32", 0, imm=31)], M32),
    ("arsh32 ignores high half", [lddw(0, 0x1_8000_0000), ins("arsh32", 0, imm=4)], 0xF800_0000),
    (
        "arsh by 64 (reg) masks to 0",
        [ins("mov", 0, imm=-8), ins("mov", 1, imm=64), reg("arsh", 0, 1)],
        M64 - 7,
    ),
    # 32-bit wrap and zero-extension
    ("add32 wraps", [ins("mov32", 0, imm=-1), ins("add32", 0, imm=1)], 0),
    ("add32 zero-extends", [lddw(0, M64), ins("add32", 0, imm=0)], M32),
    ("sub32 wraps", [ins("mov", 0, imm=0), ins("sub32", 0, imm=1)], M32),
    ("mul32 wraps", [ins("mov32", 0, imm=0x10000), ins("mul32", 0, imm=0x10001)], 0x10000),
    ("or32 zero-extends", [lddw(0, 0xFFFF_0000_0000_0000), ins("or32", 0, imm=1)], 1),
    ("xor32", [lddw(0, M64), ins("xor32", 0, imm=-1)], 0),
    ("and32 imm", [lddw(0, M64), ins("and32", 0, imm=0xF0)], 0xF0),
    ("neg", [ins("mov", 0, imm=1), ins("neg", 0)], M64),
    ("neg32", [ins("mov", 0, imm=1), ins("neg32", 0)], M32),
    ("mov imm sign-extends", [ins("mov", 0, imm=-1)], M64),
    ("mov32 imm zero-extends", [ins("mov32", 0, imm=-1)], M32),
    ("mov32 reg zero-extends", [lddw(1, M64), reg("mov32", 0, 1)], M32),
    ("add 64 wraps", [lddw(0, M64), ins("add", 0, imm=2)], 1),
    ("mul 64 wraps", [lddw(0, 1 << 63), ins("mul", 0, imm=2)], 0),
    # sign extension
    ("movsx8 64", [ins("mov", 1, imm=0x80), reg("movsx864", 0, 1)], M64 - 0x7F),
    ("movsx16 64", [ins("mov", 1, imm=0x8000), reg("movsx1664", 0, 1)], M64 - 0x7FFF),
    ("movsx32 64", [lddw(1, 0x8000_0000), reg("movsx3264", 0, 1)], 0xFFFF_FFFF_8000_0000),
    ("movsx8 32 zero-extends", [ins("mov", 1, imm=0x1FF), reg("movsx832", 0, 1)], M32),
    ("movsx16 32 positive", [lddw(1, 0xF_7FFF), reg("movsx1632", 0, 1)], 0x7FFF),
    # byte swaps
    ("be16", [lddw(0, 0x1122334455667788), ins("be16", 0)], 0x8877),
    ("be32", [lddw(0, 0x1122334455667788), ins("be32", 0)], 0x88776655),
    ("be64", [lddw(0, 0x1122334455667788), ins("be64", 0)], 0x8877665544332211),
    ("le16 truncates", [lddw(0, 0x1122334455667788), ins("le16", 0)], 0x7788),
    ("le32 truncates", [lddw(0, 0x1122334455667788), ins("le32", 0)], 0x55667788),
    ("le64", [lddw(0, 0x1122334455667788), ins("le64", 0)], 0x1122334455667788),
    ("bswap16", [lddw(0, 0x1122334455667788), ins("bswap16", 0)], 0x8877),
    ("bswap32", [lddw(0, 0x1122334455667788), ins("bswap32", 0)], 0x88776655),
    ("bswap64", [lddw(0, 0x1122334455667788), ins("bswap64", 0)], 0x8877665544332211),
    # loads and stores on the stack
    ("ldxsb", [ins("stb", 10, off=-1, imm=0x80), ins("ldxsb", 0, 10, off=-1)], M64 - 0x7F),
    ("ldxsh", [ins("sth", 10, off=-2, imm=0x8001), ins("ldxsh", 0, 10, off=-2)], M64 - 0x7FFE),
    (
        "ldxsw",
        [ins("stw", 10, off=-4, imm=-2), ins("ldxsw", 0, 10, off=-4)],
        M64 - 1,
    ),
    ("ldxb zero-extends", [ins("stb", 10, off=-1, imm=0x80), ins("ldxb", 0, 10, off=-1)], 0x80),
    (
        "stdw imm sign-extends",
        [ins("stdw", 10, off=-8, imm=-1), ins("ldxdw", 0, 10, off=-8)],
        M64,
    ),
    (
        "stxh truncates, little-endian",
        [
            ins("stdw", 10, off=-8, imm=0),
            lddw(1, 0x12345678),
            ins("stxh", 10, 1, off=-8),
            ins("ldxdw", 0, 10, off=-8),
        ],
        0x5678,
    ),
    # atomics: old values and memory contents
    *[
        (
            f"{name} returns old",
            [
                ins("stdw", 10, off=-8, imm=0b1100),
                ins("mov", 1, imm=0b1010),
                ins(name, 10, 1, off=-8),
                reg("mov", 0, 1),
            ],
            0b1100,
        )
        for name in (
            "lock fetch add",
            "lock fetch or",
            "lock fetch and",
            "lock fetch xor",
            "lock xchg",
        )
    ],
    *[
        (
            f"{name} stores",
            [
                ins("stdw", 10, off=-8, imm=0b1100),
                ins("mov", 1, imm=0b1010),
                ins(name, 10, 1, off=-8),
                ins("ldxdw", 0, 10, off=-8),
            ],
            value,
        )
        for name, value in (
            ("lock add", 0b10110),
            ("lock or", 0b1110),
            ("lock and", 0b1000),
            ("lock xor", 0b0110),
            ("lock fetch add", 0b10110),
            ("lock xchg", 0b1010),
        )
    ],
    (
        "lock fetch add32: old zero-extended, high half kept",
        [
            lddw(2, 0x1_0000_0010),
            ins("stxdw", 10, 2, off=-8),
            lddw(1, 0xFFFF_FFFF_0000_0005),
            ins("lock fetch add32", 10, 1, off=-8),
            ins("ldxdw", 0, 10, off=-8),
            reg("add", 0, 1),
        ],
        0x1_0000_0015 + 0x10,
    ),
    (
        "lock add32 wraps the low word only",
        [
            lddw(2, 0x1_FFFF_FFFF),
            ins("stxdw", 10, 2, off=-8),
            ins("mov", 1, imm=1),
            ins("lock add32", 10, 1, off=-8),
            ins("ldxdw", 0, 10, off=-8),
        ],
        0x1_0000_0000,
    ),
    (
        "cmpxchg miss: r0 = old, memory kept",
        [
            ins("stdw", 10, off=-8, imm=7),
            ins("mov", 0, imm=6),
            ins("mov", 1, imm=99),
            ins("lock cmpxchg", 10, 1, off=-8),
            ins("ldxdw", 2, 10, off=-8),
            ins("lsh", 2, imm=8),
            reg("or", 0, 2),
        ],
        7 | 7 << 8,
    ),
    (
        "cmpxchg hit: r0 = old, memory replaced",
        [
            ins("stdw", 10, off=-8, imm=7),
            ins("mov", 0, imm=7),
            ins("mov", 1, imm=99),
            ins("lock cmpxchg", 10, 1, off=-8),
            ins("ldxdw", 2, 10, off=-8),
            ins("lsh", 2, imm=8),
            reg("or", 0, 2),
        ],
        7 | 99 << 8,
    ),
    (
        "cmpxchg32 hit compares low halves, zero-extends r0",
        [
            lddw(2, 0x5_0000_0007),
            ins("stxdw", 10, 2, off=-8),
            lddw(0, 0xAB_0000_0007),
            ins("mov", 1, imm=9),
            ins("lock cmpxchg32", 10, 1, off=-8),
            ins("ldxdw", 2, 10, off=-8),
            ins("lsh", 2, imm=8),
            reg("or", 0, 2),
        ],
        0x7 | 0x5_0000_0009 << 8,
    ),
    (
        "cmpxchg32 miss",
        [
            ins("stw", 10, off=-4, imm=7),
            lddw(0, 0x7_0000_0008),
            ins("mov", 1, imm=9),
            ins("lock cmpxchg32", 10, 1, off=-4),
            ins("ldxw", 2, 10, off=-4),
            ins("lsh", 2, imm=8),
            reg("or", 0, 2),
        ],
        7 | 7 << 8,
    ),
    # jumps
    (
        "jsgt signed",
        [
            ins("mov", 0, imm=1),
            ins("mov", 1, imm=-1),
            ins("jsgt", 1, off=1, imm=0),
            ins("mov", 0, imm=2),
        ],
        2,
    ),
    (
        "jgt unsigned",
        [
            ins("mov", 0, imm=1),
            ins("mov", 1, imm=-1),
            ins("jgt", 1, off=1, imm=0),
            ins("mov", 0, imm=2),
        ],
        1,
    ),
    (
        "jslt reg",
        [
            ins("mov", 0, imm=1),
            ins("mov", 1, imm=-5),
            ins("mov", 2, imm=-4),
            reg("jslt", 1, 2, off=1),
            ins("mov", 0, imm=2),
        ],
        1,
    ),
    (
        "jeq32 low half",
        [
            ins("mov", 0, imm=1),
            lddw(1, 1 << 32),
            ins("jeq32", 1, off=1, imm=0),
            ins("mov", 0, imm=2),
        ],
        1,
    ),
    (
        "jsgt32 low half signed",
        [
            ins("mov", 0, imm=1),
            lddw(1, 0x0_8000_0000),
            ins("jsgt32", 1, off=1, imm=0),
            ins("mov", 0, imm=2),
        ],
        2,
    ),
    (
        "jset",
        [
            ins("mov", 0, imm=1),
            ins("mov", 1, imm=6),
            ins("jset", 1, off=1, imm=2),
            ins("mov", 0, imm=2),
        ],
        1,
    ),
    (
        "jle reg equal",
        [ins("mov", 0, imm=1), ins("mov", 1, imm=3), reg("jle", 1, 1, off=1), ins("mov", 0, imm=2)],
        1,
    ),
    ("ja32 (gotol)", [ins("mov", 0, imm=1), ins("ja32", imm=1), ins("mov", 0, imm=2)], 1),
    ("ja", [ins("mov", 0, imm=1), ins("ja", off=1), ins("mov", 0, imm=2)], 1),
]


@pytest.mark.parametrize(("prog", "expected"), [pytest.param(p, e, id=n) for n, p, e in CASES])
def test_semantics(prog: list[Instruction], expected: int) -> None:
    assert r0_of(*prog) == expected


@pytest.mark.parametrize(("prog", "expected"), [pytest.param(p, e, id=n) for n, p, e in CASES])
def test_semantics_traced_agrees(prog: list[Instruction], expected: int) -> None:
    pcs: list[int] = []
    out = run_program([*prog, EXIT], trace=lambda pc, insn, regs: pcs.append(pc))
    assert out.r0 == expected
    assert len(pcs) == out.insns


def test_every_semantics_key_has_an_interpreter_handler() -> None:
    assert set(SEMANTICS) - set(HANDLERS) == set()
    assert set(HANDLERS) - set(SEMANTICS) == set()


def test_mem_region_is_r1_and_copied_back() -> None:
    prog = [
        ins("ldxw", 0, 1, off=0),
        ins("stw", 1, off=4, imm=0x01020304),
        reg("add", 0, 2),
        EXIT,
    ]
    out = run_program(prog, mem=bytes([5, 0, 0, 0, 0, 0, 0, 0]))
    assert out.r0 == 5 + 8
    assert out.mem == bytes([5, 0, 0, 0, 4, 3, 2, 1])
    assert out.insns == 4

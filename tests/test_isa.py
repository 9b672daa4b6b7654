"""The opcode table's invariants and the instruction codec derived from it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.errors import DecodeError
from pybpf.isa import (
    BY_NAME,
    BY_OPCODE,
    OPS,
    Instruction,
    Shape,
    decode_one,
    decode_program,
    encode_program,
    select,
    with_pcs,
)
from pybpf.isa.opcodes import CONFORMANCE_GROUPS, SHAPE_FIELDS, invalid_opcode_reason


def slot(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, dst | src << 4, off, imm)


# --- the table itself ------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", range(256))
def test_every_opcode_byte_is_decodable_or_invalid_with_a_reason(opcode: int) -> None:
    reason = invalid_opcode_reason(opcode)
    assert (opcode in BY_OPCODE) == (reason is None)
    if reason is not None:
        assert len(reason) > 10
        with pytest.raises(DecodeError, match="pc 0"):
            decode_program(slot(opcode) + slot(0x95))


def test_names_are_unique_and_rows_sharing_a_byte_have_distinct_selectors() -> None:
    assert sum(len(rows) for rows in BY_NAME.values()) == len(OPS)
    for rows in BY_NAME.values():
        assert len({row.opcode for row in rows}) == len(rows)
        assert len({row.shape for row in rows}) == len(rows)
    for opcode, rows in BY_OPCODE.items():
        if len(rows) > 1:
            fields = {row.selector[0] for row in rows if row.selector}
            assert len(fields) == 1, f"{opcode:#x} mixes selector fields"
            values = [row.selector[1] for row in rows if row.selector]
            assert len(values) == len(set(values)) == len(rows)


def test_rows_are_consistent() -> None:
    for op in OPS:
        assert op.group in CONFORMANCE_GROUPS
        assert 1 <= op.cpu <= 4
        assert op.shape in SHAPE_FIELDS
        if op.selector:
            assert op.selector[0] not in op.fields, f"{op.name} selects with a used field"


# The table must cover the whole ISA of RFC 9669 (plus callx): a census of what is defined.
ISA_CENSUS = {
    # (sem, width): count of rows
    "alu ops per width": 2 * 13 - 1 + 2 * 2,  # 13 ops x K/X, neg K only, sdiv/smod K/X
    "movsx": 2 + 3,
    "byte swaps": 9,
    "conditional jumps": 11 * 2 * 2,
    "lddw kinds": 7,
    "atomics": 20,
    "loads/stores": 4 * 3 + 3,
    "packet": 6,
}


def test_census_of_the_isa() -> None:
    alu = [op for op in OPS if op.cls.name == "ALU64" and op.sem not in ("movsx", "bswap")]
    assert len(alu) == ISA_CENSUS["alu ops per width"]
    assert len([op for op in OPS if op.sem == "movsx"]) == ISA_CENSUS["movsx"]
    assert len([op for op in OPS if op.shape is Shape.END]) == ISA_CENSUS["byte swaps"]
    conditional = [op for op in OPS if op.shape in (Shape.JMP_IMM, Shape.JMP_REG)]
    assert len(conditional) == ISA_CENSUS["conditional jumps"]
    assert len([op for op in OPS if op.shape is Shape.LDDW]) == ISA_CENSUS["lddw kinds"]
    assert len([op for op in OPS if op.shape is Shape.ATOMIC]) == ISA_CENSUS["atomics"]
    mem = [op for op in OPS if op.shape in (Shape.LDX, Shape.ST, Shape.STX)]
    assert len(mem) == ISA_CENSUS["loads/stores"]
    packet = [op for op in OPS if op.shape in (Shape.LD_ABS, Shape.LD_IND)]
    assert len(packet) == ISA_CENSUS["packet"]
    for name in ("ja32", "callx", "call.kfunc", "sdiv32", "smod", "movsx3264", "bswap64"):
        assert name in BY_NAME


@pytest.mark.parametrize(
    ("name", "opcode", "cpu", "group"),
    [
        ("add", 0x07, 1, "base64"),
        ("add32", 0x04, 1, "base32"),
        ("mov", 0xB7, 1, "base64"),
        ("sdiv32", 0x34, 4, "divmul32"),
        ("smod", 0x97, 4, "divmul64"),
        ("jlt", 0xA5, 2, "base64"),
        ("jeq32", 0x16, 3, "base32"),
        ("ja32", 0x06, 4, "base32"),
        ("exit", 0x95, 1, "base32"),
        ("lddw", 0x18, 1, "base64"),
        ("ldxsw", 0x81, 4, "base32"),
        ("lock add", 0xDB, 1, "atomic64"),
        ("lock fetch add32", 0xC3, 3, "atomic32"),
        ("be16", 0xDC, 1, "base32"),
        ("bswap64", 0xD7, 4, "base64"),
        ("ldabsb", 0x30, 1, "packet"),
        ("callx", 0x8D, 1, "callx"),
    ],
)
def test_known_rows(name: str, opcode: int, cpu: int, group: str) -> None:
    op = BY_NAME[name][0]
    assert (op.opcode, op.cpu, op.group) == (opcode, cpu, group)


# --- decoding: every class of bad input -------------------------------------------------------

BAD = [
    (slot(0x07, 11, 0, 0, 1), "dst_reg r11 is not a register"),
    (slot(0x0F, 1, 12), "src_reg r12 is not a register"),
    (slot(0x07, 1, 2, 0, 1), "reserved field src_reg must be 0"),
    (slot(0x0F, 1, 2, 0, 7), "reserved field imm must be 0"),
    (slot(0x07, 1, 0, 3, 1), "reserved field offset must be 0"),
    (slot(0x37, 1, 0, 2, 1), "offset 0x2 selects no operation"),
    (slot(0xBF, 1, 2, 64), "offset 0x40 selects no operation"),
    (slot(0xBC, 1, 2, 32), "offset 0x20 selects no operation"),
    (slot(0xDB, 1, 2, 0, 0x02), "imm 0x2 selects no operation"),
    (slot(0xD4, 1, 0, 0, 8), "imm 0x8 selects no operation"),
    (slot(0x85, 0, 3, 0, 1), "src_reg 0x3 selects no operation"),
    (slot(0x18, 1, 7, 0, 1) + slot(0), "src_reg 0x7 selects no operation"),
    (slot(0x18, 1, 0, 0, 1), "lddw without its second slot"),
    (slot(0x18, 1, 0, 0, 1) + slot(0x95), "second slot must have opcode"),
    (slot(0x95, 1), "reserved field dst_reg must be 0"),
    (slot(0x05, 0, 0, 1, 1), "reserved field imm must be 0"),
    (slot(0x06, 0, 0, 1, 1), "reserved field offset must be 0"),
    (slot(0x8F), "NEG takes no register source"),
    (slot(0x8E), "JMP32 has no CALL"),
    (slot(0x9E), "JMP32 has no EXIT"),
    (slot(0x9D), "EXIT takes no register source"),
    (slot(0xE7), "operation code 0xe0 is not defined"),
    (slot(0xDF), "ALU64 END is only defined with the TO_LE source bit"),
    (slot(0x99), "LDX MEMSX is not defined with size DW"),
    (slot(0x38), "LD ABS is not defined with size DW"),
    (slot(0xC2), "ST mode ATOMIC is not defined"),
    (slot(0xD3), "atomic operations are not defined with size B"),
    (slot(0x00), "LD IMM is only defined with size DW"),
    (slot(0x95)[:5], "not a multiple of 8"),
]


@pytest.mark.parametrize(("code", "reason"), BAD, ids=[r for _, r in BAD])
def test_bad_encodings_are_refused_with_the_reason(code: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_program(code)
    assert reason in info.value.reason
    assert info.value.pc >= 0


def test_decode_error_names_the_pc_of_the_bad_instruction() -> None:
    code = slot(0xB7, 0, 0, 0, 1) + slot(0x18, 1, 0, 0, 5) + slot(0) + slot(0xFF)
    with pytest.raises(DecodeError) as info:
        decode_program(code)
    assert info.value.pc == 3
    assert info.value.raw == slot(0xFF)


def test_decode_one_past_the_end() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_one(slot(0x95), 1)


# --- encoding and decoding agree --------------------------------------------------------------


def test_lddw_spans_two_slots() -> None:
    insn = Instruction.lddw(3, 0x1122334455667788)
    assert insn.imm64 == 0x1122334455667788
    assert insn.slots == 2
    code = encode_program([insn, Instruction(0x95)])
    assert code == bytes.fromhex("1803000088776655000000004433221195" + "00" * 7)
    insns = decode_program(code)
    assert insns == [insn, Instruction(0x95)]
    assert [pc for pc, _ in with_pcs(insns)] == [0, 2]


def test_unsigned_spellings_wrap_to_the_same_instruction() -> None:
    assert Instruction(0xB7, 0, 0, 0, 0xFFFFFFFF) == Instruction(0xB7, 0, 0, 0, -1)
    assert Instruction(0x05, 0, 0, 0xFFFF) == Instruction(0x05, 0, 0, -1)


def test_spec_of_an_invalid_instruction_raises() -> None:
    with pytest.raises(DecodeError, match="reserved field"):
        _ = Instruction(0x07, 1, 0, 5, 1).spec


@st.composite
def valid_instructions(draw: st.DrawFn) -> Instruction:
    """Any instruction the table defines, with every used field random and the rest zero."""
    op = draw(st.sampled_from(OPS))
    values = {"dst_reg": 0, "src_reg": 0, "offset": 0, "imm": 0}
    for field in op.fields:
        if field in ("dst_reg", "src_reg"):
            values[field] = draw(st.integers(0, 10))
        elif field == "offset":
            values[field] = draw(st.integers(-(2**15), 2**15 - 1))
        else:
            values[field] = draw(st.integers(-(2**31), 2**31 - 1))
    if op.selector:
        values[op.selector[0]] = op.selector[1]
    next_imm = draw(st.integers(-(2**31), 2**31 - 1)) if op.shape is Shape.LDDW else 0
    return Instruction(op.opcode, **values, next_imm=next_imm)


@settings(max_examples=500, deadline=None)
@given(st.lists(valid_instructions(), min_size=1, max_size=20))
def test_encode_decode_round_trip(insns: list[Instruction]) -> None:
    code = encode_program(insns)
    decoded = decode_program(code)
    assert decoded == insns
    assert encode_program(decoded) == code
    for insn in decoded:
        assert select(insn.opcode, insn.dst_reg, insn.src_reg, insn.offset, insn.imm) is insn.spec


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(code: bytes) -> None:
    try:
        insns = decode_program(code)
    except DecodeError as e:
        assert e.pc >= 0
    else:
        assert encode_program(insns) == code

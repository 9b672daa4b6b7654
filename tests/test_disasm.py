"""The disassembler: both dialects assemble back to the same bytes, for every conformance
program and for random valid programs drawn from the opcode table; llvm output is
llvm-objdump's spelling; bad bytes raise DecodeError."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.asm import assemble, disassemble, format_insn
from pybpf.asm.syntax import target_field
from pybpf.errors import AsmError, DecodeError
from pybpf.isa import OPS, Instruction, OpSpec, Shape, encode_program

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
GOLDEN = Path(__file__).resolve().parent / "data" / "asm_llvm_objdump.txt"
DIALECTS = ("conformance", "llvm")


def conformance_programs() -> list[Path]:
    return sorted(CONFORMANCE.glob("*.data")) if CONFORMANCE.is_dir() else []


@pytest.mark.skipif(
    not conformance_programs(), reason=f"conformance data not found at {CONFORMANCE}"
)
@pytest.mark.parametrize("path", conformance_programs(), ids=lambda p: p.name)
def test_conformance_round_trip(path: Path) -> None:
    m = re.search(r"^-- asm\n(.*?)(?=^-- |\Z)", path.read_text(), re.S | re.M)
    assert m is not None
    code = assemble(m.group(1), "conformance")
    for dialect in DIALECTS:
        for labels in (True, False):
            text = disassemble(code, dialect, labels=labels)
            assert assemble(text, dialect) == code
            assert assemble(text) == code  # the dialect is recognised


def test_llvm_output_is_objdump_spelling() -> None:
    """Disassembling the golden listing's bytes prints objdump's text, line for line."""
    lines = [line for line in GOLDEN.read_text().splitlines() if re.match(r"\s*\d+:\t", line)]
    code = b"".join(bytes.fromhex(line.split("\t")[1]) for line in lines)
    objdump = [re.sub(r" <[^<>]*>$", "", line.split("\t")[2]) for line in lines]
    assert disassemble(code, "llvm", labels=False).splitlines() == objdump


def _fields(draw: st.DrawFn, spec: OpSpec) -> dict[str, int]:
    values = {"dst_reg": 0, "src_reg": 0, "offset": 0, "imm": 0}
    for name in spec.fields:
        if name in ("dst_reg", "src_reg"):
            values[name] = draw(st.integers(0, 10))
        elif name == "offset":
            values[name] = draw(st.integers(-(1 << 15), (1 << 15) - 1))
        else:
            values[name] = draw(st.integers(-(1 << 31), (1 << 31) - 1))
    if spec.selector is not None:
        values[spec.selector[0]] = spec.selector[1]
    return values


@st.composite
def programs(draw: st.DrawFn, inside: bool = True) -> list[Instruction]:
    """Valid programs; with ``inside``, every jump and local call lands on an instruction
    of the program (or just past its end)."""
    specs = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=12))
    pcs, pc = [], 0
    for spec in specs:
        pcs.append(pc)
        pc += spec.slots
    insns = []
    for spec, pc in zip(specs, pcs, strict=True):
        values = _fields(draw, spec)
        field = target_field(spec)
        if field is not None and inside:
            values[field] = draw(st.sampled_from([*pcs, pcs[-1] + specs[-1].slots])) - (pc + 1)
        if spec.shape is Shape.LDDW:
            value = draw(st.integers(0, (1 << 64) - 1))
            insns.append(Instruction.lddw(values["dst_reg"], value, values["src_reg"]))
        else:
            insns.append(Instruction(spec.opcode, **values))
    return insns


@settings(max_examples=300, deadline=None)
@given(programs(), st.sampled_from(DIALECTS), st.booleans())
def test_random_programs_round_trip(insns: list[Instruction], dialect: str, labels: bool) -> None:
    code = encode_program(insns)
    text = disassemble(code, dialect, labels=labels)
    assert assemble(text, dialect) == code
    assert disassemble(insns, dialect, labels=labels) == text


@settings(max_examples=150, deadline=None)
@given(programs(inside=False), st.sampled_from(DIALECTS))
def test_targets_outside_the_program_stay_numeric(insns: list[Instruction], dialect: str) -> None:
    code = encode_program(insns)
    assert assemble(disassemble(code, dialect, labels=True), dialect) == code


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_row_formats_and_reassembles(spec: OpSpec, dialect: str) -> None:
    values = {"dst_reg": 3, "src_reg": 4, "offset": -2, "imm": -7}
    kept = {k: (v if k in spec.fields else 0) for k, v in values.items()}
    if spec.selector is not None:
        kept[spec.selector[0]] = spec.selector[1]
    insn = (
        Instruction.lddw(3, 0xFEDCBA9876543210, kept["src_reg"])
        if spec.shape is Shape.LDDW
        else Instruction(spec.opcode, **kept)
    )
    text = format_insn(insn, dialect)
    assert assemble(text, dialect) == insn.encode()


def test_labels() -> None:
    code = assemble("ja L\nmov %r0, 1\nL:\ncall local f\nexit\nf:\nexit\n", "conformance")
    text = disassemble(code, "conformance")
    assert text == "ja L2\nmov %r0, 1\nL2:\ncall local L4\nexit\nL4:\nexit\n"
    assert disassemble(code, "conformance", labels=False).splitlines()[0] == "ja +1"
    llvm = disassemble(code, "llvm")
    assert llvm.splitlines()[:4] == ["goto +0x1 <L2>", "r0 = 0x1", "L2:", "call pc+1 <L4>"]
    assert "<" not in disassemble(code, "llvm", labels=False)


def test_format_insn_annotations() -> None:
    jump = Instruction(0x05, offset=3)
    assert format_insn(jump, "llvm") == "goto +0x3"
    assert format_insn(jump, "llvm", pc=10) == "goto +0x3 <L14>"
    assert format_insn(jump, "conformance", pc=10) == "ja +3 # L14"
    call = Instruction(0x85, imm=1)
    names = {1: "bpf_map_lookup_elem"}
    assert format_insn(call, "llvm", helper_names=names) == "call 0x1 ; bpf_map_lookup_elem"
    assert format_insn(call, "conformance", helper_names=names) == "call 1 # bpf_map_lookup_elem"
    code = call.encode() + Instruction(0x95).encode()
    for dialect in DIALECTS:
        text = disassemble(code, dialect, helper_names=names)
        assert "bpf_map_lookup_elem" in text
        assert assemble(text, dialect) == code


@pytest.mark.parametrize(
    ("code", "pc", "reason"),
    [
        (b"\xff" + bytes(7), 0, "not defined"),
        (bytes.fromhex("9500000000000000") + b"\x18" + bytes(7), 1, "second slot"),
        (bytes(9), 1, "multiple of 8"),
        (bytes.fromhex("b7b0000000000000"), 0, "reserved field src_reg"),
        (bytes.fromhex("b70b000000000000"), 0, "r11"),
    ],
)
def test_bad_bytes_raise_decode_error(code: bytes, pc: int, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        disassemble(code)
    assert info.value.pc == pc
    assert reason in info.value.reason


def test_bad_instruction_objects_raise_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        disassemble([Instruction(0x95), Instruction(0xDB, imm=0x02)], "conformance")
    assert info.value.pc == 1
    with pytest.raises(DecodeError):
        format_insn(Instruction(0x07, src_reg=1))


def test_unknown_dialect() -> None:
    with pytest.raises(AsmError):
        disassemble(b"", "intel")
    with pytest.raises(AsmError):
        format_insn(Instruction(0x95), "att")

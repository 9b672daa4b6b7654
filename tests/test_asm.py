"""The assembler: every conformance program, an llvm-objdump golden listing, the kernel
log's spellings, and every class of bad input with its line and column."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.asm import assemble, assemble_insns, detect_dialect
from pybpf.errors import AsmError
from pybpf.isa import Instruction, decode_program

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
GOLDEN = Path(__file__).resolve().parent / "data" / "asm_llvm_objdump.txt"


def conformance_files() -> list[Path]:
    return sorted(CONFORMANCE.glob("*.data")) if CONFORMANCE.is_dir() else []


def section(text: str, name: str) -> str | None:
    m = re.search(rf"^-- {name}\n(.*?)(?=^-- |\Z)", text, re.S | re.M)
    return m.group(1) if m else None


needs_conformance = pytest.mark.skipif(
    not conformance_files(), reason=f"conformance data not found at {CONFORMANCE}"
)


@needs_conformance
@pytest.mark.parametrize("path", conformance_files(), ids=lambda p: p.name)
def test_conformance_program_assembles(path: Path) -> None:
    text = path.read_text()
    asm = section(text, "asm")
    assert asm is not None
    code = assemble(asm)
    assert assemble(asm, "conformance") == code
    assert detect_dialect(asm) == "conformance"
    insns = decode_program(code)
    assert insns, "every conformance program has instructions"
    raw = section(text, "raw")
    if raw is not None:
        words = [int(word, 16) for word in raw.split()]
        assert code == b"".join(struct.pack("<Q", w) for w in words)


@needs_conformance
def test_conformance_has_a_raw_section() -> None:
    assert any(section(p.read_text(), "raw") for p in conformance_files())


# Hand-checked encodings of conformance-dialect forms (RFC 9669 field layout).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mov32 %r0, 0xffffffff", Instruction(0xB4, 0, 0, 0, -1)),
        ("mov %r1, -1", Instruction(0xB7, 1, 0, 0, -1)),
        ("add32 %r0, %r1", Instruction(0x0C, 0, 1)),
        ("ldxw %r0, [%r1+4]", Instruction(0x61, 0, 1, 4)),
        ("ldxsh %r2, [%r10-8]", Instruction(0x89, 2, 10, -8)),
        ("stdw [%r1], 0x12", Instruction(0x7A, 1, 0, 0, 0x12)),
        ("stxb [%r10-1], %r3", Instruction(0x73, 10, 3, -1)),
        ("lock add [%r10-8], %r1", Instruction(0xDB, 10, 1, -8, 0x00)),
        ("lock fetch xor32 [%r1+2], %r2", Instruction(0xC3, 1, 2, 2, 0xA1)),
        ("lock xchg [%r0], %r3", Instruction(0xDB, 0, 3, 0, 0xE1)),
        ("lock cmpxchg32 [%r0], %r3", Instruction(0xC3, 0, 3, 0, 0xF1)),
        ("be16 %r3", Instruction(0xDC, 3, 0, 0, 16)),
        ("le64 %r3", Instruction(0xD4, 3, 0, 0, 64)),
        ("bswap32 %r3", Instruction(0xD7, 3, 0, 0, 32)),
        ("swap32 %r3", Instruction(0xD7, 3, 0, 0, 32)),
        ("sdiv32 %r1, -3", Instruction(0x34, 1, 0, 1, -3)),
        ("smod %r1, %r2", Instruction(0x9F, 1, 2, 1)),
        ("movsx832 %r1, %r2", Instruction(0xBC, 1, 2, 8)),
        ("movsx3264 %r1, %r2", Instruction(0xBF, 1, 2, 32)),
        ("neg32 %r4", Instruction(0x84, 4)),
        ("ja +3", Instruction(0x05, 0, 0, 3)),
        ("ja32 -2", Instruction(0x06, 0, 0, 0, -2)),
        ("jsle32 %r1, -5, +1", Instruction(0xD6, 1, 0, 1, -5)),
        ("jset %r1, %r9, -1", Instruction(0x4D, 1, 9, -1)),
        ("call 5", Instruction(0x85, 0, 0, 0, 5)),
        ("call local +2", Instruction(0x85, 0, 1, 0, 2)),
        ("call kfunc 1234", Instruction(0x85, 0, 2, 0, 1234)),
        ("call kfunc 1234, 2", Instruction(0x85, 0, 2, 2, 1234)),
        ("call.kfunc 7", Instruction(0x85, 0, 2, 0, 7)),
        ("call %r2", Instruction(0x8D, 2)),
        ("callx %r2", Instruction(0x8D, 2)),
        ("exit", Instruction(0x95)),
        ("lddw %r1, -1", Instruction.lddw(1, (1 << 64) - 1)),
        ("lddw map_fd %r1, 3", Instruction.lddw(1, 3, src_reg=1)),
        ("lddw.map_value %r1, 3", Instruction.lddw(1, 3, src_reg=2)),
        ("lddw map_idx_value %r2, 0x100000000", Instruction.lddw(2, 1 << 32, src_reg=6)),
        ("ldabsh 12", Instruction(0x28, 0, 0, 0, 12)),
        ("ldindb %r3, -2", Instruction(0x50, 0, 3, 0, -2)),
    ],
)
def test_conformance_encodings(text: str, expected: Instruction) -> None:
    assert assemble_insns(text, "conformance") == [expected]


def test_labels_and_implicit_exit() -> None:
    text = """
        # comment line
        mov %r0, 0
        jeq %r1, 0, exit   # forward to the first exit
        lddw %r2, 0x123456789
    loop:
        ja32 loop
        call local func
        exit
    func:
        exit
    """
    insns = assemble_insns(text, "conformance")
    assert insns[1].offset == 4  # pc 1 -> the first exit at pc 6
    assert insns[3].imm == -1  # ja32 to itself
    assert insns[4].imm == 1  # pc 5 -> func at pc 7


def test_explicit_exit_label_wins() -> None:
    insns = assemble_insns("ja exit\nexit\nexit:\nexit\n", "conformance")
    assert insns[0].offset == 1


# --- llvm dialect ---------------------------------------------------------------------------


def test_llvm_objdump_golden_listing() -> None:
    text = GOLDEN.read_text()
    expected = b"".join(
        bytes.fromhex(m.group(1)) for m in re.finditer(r"^\s*\d+:\t([0-9a-f ]+)\t", text, re.M)
    )
    assert len(expected) == 83 * 8
    assert detect_dialect(text) == "llvm"
    assert assemble(text) == expected
    bare = "\n".join(line.split("\t")[-1] for line in text.splitlines() if "\t" in line)
    assert assemble(bare, "llvm") == expected


# (kernel verifier log line, llvm-objdump line): the same instruction.
KERNEL_LOG_PAIRS = [
    ("0: (b7) r0 = 0", "r0 = 0x0"),
    ("1: (07) r2 += -8", "r2 += -0x8"),
    ("(b4) w1 = -1", "w1 = -0x1"),
    ("(7a) *(u64 *)(r10 -8) = 0", "*(u64 *)(r10 - 0x8) = 0x0"),
    ("(63) *(u32 *)(r10 -4) = r1", "*(u32 *)(r10 - 0x4) = w1"),
    ("(61) r0 = *(u32 *)(r1 +0)", "w0 = *(u32 *)(r1 + 0x0)"),
    ("(91) r0 = *(s8 *)(r1 +2)", "r0 = *(s8 *)(r1 + 0x2)"),
    ("(18) r1 = 0x1234", "r1 = 0x1234 ll"),
    ("(18) r1 = 0xffffffffffffffff", "r1 = -0x1 ll"),
    ("r1 = 0x123456789", "r1 = 0x123456789 ll"),
    ("(85) call bpf_map_lookup_elem#1", "call 0x1"),
    ("(85) call pc+3", "call pc+3"),
    ("(85) call kernel-function#-7", "call kernel-function#-7"),
    ("(05) goto pc-3", "goto -0x3"),
    ("(06) gotol pc+70000", "gotol +0x11170"),
    ("(15) if r0 == 0x0 goto pc+1", "if r0 == 0x0 goto +0x1"),
    ("(a6) if w1 < 0xfffffff0 goto pc+2", "if w1 < -0x10 goto +0x2"),
    ("(dc) r0 = be16 r0", "r0 = be16 r0"),
    ("(d7) r1 = bswap64 r1", "r1 = bswap64 r1"),
    ("(bf) r1 = (s8)r2", "r1 = (s8)r2"),
    ("(87) r0 = -r0", "r0 = -r0"),
    ("(37) r0 s/= 5", "r0 s/= 0x5"),
    ("(c3) lock *(u32 *)(r10 -4) += r1", "lock *(u32 *)(r10 - 0x4) += w1"),
    ("(db) lock *(u64 *)(r10 -8) ^= r1", "lock *(u64 *)(r10 - 0x8) ^= r1"),
    (
        "(db) r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)",
        "r1 = atomic_fetch_add((u64 *)(r10 - 0x8), r1)",
    ),
    (
        "(c3) r1 = atomic_fetch_or((u32 *)(r10 -8), r1)",
        "w1 = atomic_fetch_or((u32 *)(r10 - 0x8), w1)",
    ),
    ("(db) r2 = atomic64_xchg((u64 *)(r1 +0), r2)", "r2 = xchg_64(r1 + 0x0, r2)"),
    ("(c3) r2 = atomic_xchg((u32 *)(r1 +0), r2)", "w2 = xchg32_32(r1 + 0x0, w2)"),
    (
        "(db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r3)",
        "r0 = cmpxchg_64(r10 - 0x8, r0, r3)",
    ),
    (
        "(c3) r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r3)",
        "w0 = cmpxchg32_32(r10 - 0x8, w0, w3)",
    ),
    ("(20) r0 = *(u32 *)skb[12]", "r0 = *(u32 *)skb[0xc]"),
    ("(48) r0 = *(u16 *)skb[r1 + -2]", "r0 = *(u16 *)skb[r1 - 0x2]"),
    ("(50) r0 = *(u8 *)skb[r1 + 0]", "r0 = *(u8 *)skb[r1]"),
    ("(8d) callx r2", "callx r2"),
    ("(95) exit", "exit"),
]


@pytest.mark.parametrize(("kernel", "llvm"), KERNEL_LOG_PAIRS)
def test_kernel_log_spelling(kernel: str, llvm: str) -> None:
    code = assemble(llvm, "llvm")
    assert len(code) in (8, 16)
    assert assemble(kernel + "  ; R0_w=0", "llvm") == code


def test_llvm_labels_and_annotations() -> None:
    text = """
    0000000000000000 <prog>:
        if r1 > 0x5 goto out <out>
        goto +0x1 <prog+0x18>
        call sub
    out:
        exit
    sub:
        exit
    """
    insns = assemble_insns(text, "llvm")
    assert [i.offset for i in insns[:2]] == [2, 1]
    assert insns[2].src_reg == 1 and insns[2].imm == 1


def test_ld_pseudo_kinds() -> None:
    (insn,) = assemble_insns("ld_pseudo\tr1, 0x2, 0x1234567890", "llvm")
    assert insn == Instruction.lddw(1, 0x1234567890, src_reg=2)


def test_dialect_detection() -> None:
    assert detect_dialect("exit\n") == "conformance"
    assert detect_dialect("# r0 = 1 in a comment\nmov %r0, 1\n") == "conformance"
    assert detect_dialect("r0 s%= r1\nexit\n") == "llvm"
    assert detect_dialect("; mov %r0, 1\ngoto +0x1\n") == "llvm"


def test_empty_program() -> None:
    assert assemble("") == b""
    assert assemble("\n# nothing\n", "conformance") == b""


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "text", "line", "column", "reason", "expected"),
    [
        ("conformance", "mov %r0, 1\nfoo %r1, 2\n", 2, 1, "unknown mnemonic", None),
        ("conformance", "mov %r11, 1", 1, 5, "bad register", "%r0..%r10"),
        ("conformance", "mov %x1, 1", 1, 5, "bad register", "%r0..%r10"),
        ("conformance", "add32 %r0, [%r1]", 1, 12, "memory operand", "immediate"),
        ("conformance", "neg %r1, %r2", 1, 10, "register as operand 2", "end of line"),
        ("conformance", "mov %r0", 1, 8, "missing operand 2", "register"),
        ("conformance", "stxw %r1, %r2", 1, 6, "register as operand 1", "memory operand"),
        ("conformance", "mov %r0, 0x100000000", 1, 10, "out of range", None),
        ("conformance", "mov %r0, -0x80000001", 1, 11, "out of range", None),
        ("conformance", "lddw %r0, 0x10000000000000000", 1, 11, "out of range", None),
        ("conformance", "ldxw %r0, [%r1+32768]", 1, 16, "offset 32768", None),
        ("conformance", "call kfunc 1, 40000", 1, 15, "offset 40000", None),
        ("conformance", "mov %r0, 1" + "0" * 60, 1, 10, "too large", None),
        ("conformance", "ja +32768", 1, 4, "does not fit", None),
        ("conformance", "exit\nja nowhere", 2, 4, "undefined label 'nowhere'", "exit"),
        ("conformance", "a:\nexit\n  a:\n", 3, 3, "already defined at line 1", None),
        ("conformance", "mov %r0, 1 2", 1, 12, "unexpected number", "','"),
        ("conformance", "mov %r0, 1 @", 1, 12, "unexpected character '@'", None),
        ("conformance", "exit\n\x00", 2, 1, "unexpected character", "mnemonic"),
        ("conformance", "ldxw %r0, [%r1+]", 1, 16, "unexpected", "number"),
        ("llvm", "r1 = 0x1 ll\nw1 += r2", 2, 7, "needs w2", "w2"),
        ("llvm", "r11 = 1", 1, 1, "bad register", None),
        ("llvm", "r1 = *(u32 *)(r1 + 0x8000)", 1, 20, "offset 32768", None),
        ("llvm", "w1 = 0x123456789", 1, 6, "out of range", None),
        ("llvm", "w1 = 0x1 ll", 1, 1, "lddw needs r1", "r1"),
        ("llvm", "if r1 > 2 gotol +1", 1, 11, "use 'goto'", None),
        ("llvm", "if r1 > 2 goto +0x8000", 1, 16, "does not fit", None),
        ("llvm", "r1 = -r2", 1, 7, "in place", "r1"),
        ("llvm", "r1 = foo32 r1", 1, 6, "unknown byte swap", "bswap16"),
        ("llvm", "lock *(u64 *)(r1 + 0) -= r2", 1, 23, "no atomic -=", "+="),
        ("llvm", "r1 = xchg(r1 - 8, r1)", 1, 6, "unknown atomic operation", "xchg_64"),
        ("llvm", "r1 = atomic_fetch_add(r1 - 8, r1)", 1, 23, "pointer cast", None),
        ("llvm", "r2 = xchg_64(r1 - 8, r1)", 1, 1, "returns into", "r1"),
        ("llvm", "r1 = cmpxchg_64(r1 - 8, r0, r2)", 1, 1, "r0", "r0"),
        ("llvm", "(07) r1 = 1", 1, 1, "does not match", None),
        ("llvm", "goto +1 garbage", 1, 9, "unexpected label 'garbage'", "end of line"),
        ("llvm", "ld_pseudo r1, 9, 1", 1, 15, "kind 9", "6"),
        ("llvm", "r1 = *(s64 *)(r2 + 0)", 1, 8, "no such instruction", None),
        ("llvm", "w1 = *(u64 *)(r2 + 0)", 1, 1, "whole register", "r1"),
        ("llvm", "w1 = (s32)w2", 1, 6, "no such instruction", None),
        ("llvm", "r1 = *(u32 *)skb[0]", 1, 1, "into r0", "r0"),
        ("llvm", "call foo#1, 2", 1, 13, "no module offset", None),
        ("llvm", "r1 = *(u32 *)(r2 + 0", 1, 21, "end of input", "')'"),
        ("llvm", "r1 = *(u32 *)(r2 + 0\nexit\n", 1, 21, "end of line", "')'"),
        ("llvm", "goto nowhere", 1, 6, "undefined label", None),
        ("auto", "call local", 1, 11, "missing operand 1", "jump target"),
        ("klingon", "exit", 0, 0, "unknown dialect", "llvm"),
    ],
)
def test_errors(
    dialect: str, text: str, line: int, column: int, reason: str, expected: str | None
) -> None:
    with pytest.raises(AsmError) as info:
        assemble(text, dialect)
    err = info.value
    assert reason in err.reason
    assert (err.line, err.column) == (line, column)
    if expected is not None:
        assert expected in err.expected
    assert f"line {line}" in str(err)


_WORDS = ["mov", "lock", "exit", "goto", "call", "ll", "skb", "u32", "pc", "lddw", "if"]
_ALPHABET = st.sampled_from([*"%rw0123456789abcdefx+-*=[](),:;#<>&|^s \n\t", *_WORDS])
_TEXTS = st.one_of(st.lists(_ALPHABET, max_size=40).map("".join), st.text(max_size=30))


@settings(max_examples=300, deadline=None)
@given(_TEXTS, st.sampled_from(["conformance", "llvm", "auto"]))
def test_arbitrary_text_assembles_or_raises_asm_error(text: str, dialect: str) -> None:
    try:
        code = assemble(text, dialect)
    except AsmError as e:
        assert e.line >= 1
    else:
        assert len(code) % 8 == 0

"""`Instruction`: one decoded BPF instruction, and the decoder/encoder derived from the table.

The wire format (RFC 9669 section 3): 8 bytes little-endian, ``opcode:8 dst_reg:4 src_reg:4
offset:16 imm:32``; a 64-bit immediate load (lddw) spans two such slots, the second holding
the upper 32 bits in its imm and zero everywhere else. Program counters count slots, as the
kernel's and llvm-objdump's do, so an lddw advances the pc by 2.

Decoding refuses every encoding the table does not define, with the reason: an unknown
opcode, a selector value no row has (an unknown atomic operation, a bad sdiv offset), a
reserved field that is not zero, a register above r10, an lddw without its second slot.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pybpf.errors import DecodeError
from pybpf.isa.opcodes import BY_NAME, BY_OPCODE, MAX_REG, OpSpec, Shape, invalid_opcode_reason

_SLOT = struct.Struct("<BBhi")
SLOT_SIZE = 8
# The one opcode spanning two slots (every lddw kind shares it; src_reg tells them apart).
LDDW_OPCODE = BY_NAME["lddw"][0].opcode


def _wrap(value: int, bits: int) -> int:
    """Two's-complement wrap of ``value`` into a signed ``bits``-bit integer."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True, slots=True)
class Instruction:
    """A decoded instruction. ``offset`` is s16 and ``imm``/``next_imm`` are s32; values given
    unsigned (``imm=0xffffffff``) are wrapped so that equal encodings compare equal.
    ``next_imm`` is the second slot's imm of an lddw and zero otherwise."""

    opcode: int
    dst_reg: int = 0
    src_reg: int = 0
    offset: int = 0
    imm: int = 0
    next_imm: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", _wrap(self.offset, 16))
        object.__setattr__(self, "imm", _wrap(self.imm, 32))
        object.__setattr__(self, "next_imm", _wrap(self.next_imm, 32))

    @classmethod
    def lddw(cls, dst_reg: int, value: int, src_reg: int = 0) -> Instruction:
        """An lddw of the 64-bit ``value`` (taken modulo 2**64)."""
        value &= (1 << 64) - 1
        return cls(LDDW_OPCODE, dst_reg, src_reg, 0, value & 0xFFFFFFFF, value >> 32)

    @property
    def imm64(self) -> int:
        """The unsigned 64-bit immediate of an lddw (low slot imm | high slot imm << 32)."""
        return (self.imm & 0xFFFFFFFF) | ((self.next_imm & 0xFFFFFFFF) << 32)

    @property
    def spec(self) -> OpSpec:
        """The table row of this instruction; DecodeError (pc -1) when it is not valid."""
        found = select(self.opcode, self.dst_reg, self.src_reg, self.offset, self.imm)
        if isinstance(found, str):
            raise DecodeError(found, pc=-1, raw=self.encode())
        return found

    @property
    def slots(self) -> int:
        return 2 if self.opcode == LDDW_OPCODE else 1

    def encode(self) -> bytes:
        if not (0 <= self.opcode <= 0xFF and 0 <= self.dst_reg <= 15 and 0 <= self.src_reg <= 15):
            raise DecodeError("field out of range for encoding", pc=-1)
        first = _SLOT.pack(self.opcode, self.dst_reg | self.src_reg << 4, self.offset, self.imm)
        if self.opcode == LDDW_OPCODE:
            return first + _SLOT.pack(0, 0, 0, self.next_imm)
        return first


def select(opcode: int, dst_reg: int, src_reg: int, offset: int, imm: int) -> OpSpec | str:
    """The row for these field values, or the reason no valid instruction has them."""
    rows = BY_OPCODE.get(opcode)
    if rows is None:
        return invalid_opcode_reason(opcode) or f"opcode {opcode:#04x} is not defined"
    values = {"dst_reg": dst_reg, "src_reg": src_reg, "offset": offset, "imm": imm}
    row = rows[0]
    if row.selector is not None:
        field = row.selector[0]
        matching = [r for r in rows if r.selector is not None and r.selector[1] == values[field]]
        if not matching:
            known = ", ".join(str(r.selector[1]) for r in rows if r.selector is not None)
            return (
                f"{field} {values[field]:#x} selects no operation of opcode {opcode:#04x}"
                f" (defined: {known})"
            )
        row = matching[0]
    for name in ("dst_reg", "src_reg"):
        if name in row.fields and values[name] > MAX_REG:
            return f"{row.name}: {name} r{values[name]} is not a register (r0-r{MAX_REG})"
    for name, value in values.items():
        if value and name not in row.fields and (row.selector is None or row.selector[0] != name):
            return f"{row.name}: reserved field {name} must be 0 (is {value:#x})"
    return row


def decode_one(code: bytes | memoryview, pc: int = 0) -> Instruction:
    """Decode the instruction at slot ``pc`` of ``code`` (raises DecodeError)."""
    base = pc * SLOT_SIZE
    if base + SLOT_SIZE > len(code):
        raise DecodeError("instruction truncated", pc=pc, raw=bytes(code[base:]))
    opcode, regs, offset, imm = _SLOT.unpack_from(code, base)
    dst_reg, src_reg = regs & 0x0F, regs >> 4
    found = select(opcode, dst_reg, src_reg, offset, imm)
    if isinstance(found, str):
        raise DecodeError(found, pc=pc, raw=bytes(code[base : base + SLOT_SIZE]))
    if found.shape is not Shape.LDDW:
        return Instruction(opcode, dst_reg, src_reg, offset, imm)
    if base + 2 * SLOT_SIZE > len(code):
        raise DecodeError(
            "lddw without its second slot", pc=pc, raw=bytes(code[base : base + SLOT_SIZE])
        )
    op2, regs2, offset2, next_imm = _SLOT.unpack_from(code, base + SLOT_SIZE)
    if op2 or regs2 or offset2:
        raise DecodeError(
            "lddw second slot must have opcode, registers and offset 0",
            pc=pc + 1,
            raw=bytes(code[base + SLOT_SIZE : base + 2 * SLOT_SIZE]),
        )
    return Instruction(opcode, dst_reg, src_reg, offset, imm, next_imm)


def decode_program(code: bytes | memoryview) -> list[Instruction]:
    """Decode a whole program; its length must be a multiple of 8 bytes."""
    if len(code) % SLOT_SIZE:
        raise DecodeError(
            f"program length {len(code)} is not a multiple of {SLOT_SIZE}",
            pc=len(code) // SLOT_SIZE,
            raw=bytes(code[len(code) - len(code) % SLOT_SIZE :]),
        )
    insns = []
    pc = 0
    nslots = len(code) // SLOT_SIZE
    while pc < nslots:
        insn = decode_one(code, pc)
        insns.append(insn)
        pc += insn.slots
    return insns


def encode_program(insns: Iterable[Instruction]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def with_pcs(insns: Iterable[Instruction]) -> Iterator[tuple[int, Instruction]]:
    """Pair each instruction with its pc (slot index)."""
    pc = 0
    for insn in insns:
        yield pc, insn
        pc += insn.slots

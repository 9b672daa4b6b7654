"""The BPF instruction set: the opcode table and the instruction codec derived from it."""

from pybpf.isa.instruction import (
    SLOT_SIZE,
    Instruction,
    decode_one,
    decode_program,
    encode_program,
    select,
    with_pcs,
)
from pybpf.isa.opcodes import BY_NAME, BY_OPCODE, OPS, SEMANTICS, Cls, OpSpec, Shape

__all__ = [
    "BY_NAME",
    "BY_OPCODE",
    "OPS",
    "SEMANTICS",
    "SLOT_SIZE",
    "Cls",
    "Instruction",
    "OpSpec",
    "Shape",
    "decode_one",
    "decode_program",
    "encode_program",
    "select",
    "with_pcs",
]

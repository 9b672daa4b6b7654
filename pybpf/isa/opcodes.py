"""THE opcode table: one row per operation of the BPF ISA (RFC 9669, plus callx).

Everything that knows about instructions derives from ``OPS``: the decoder and encoder
(`instruction.py`), the assembler and both disassembler dialects (`pybpf.asm`), the
interpreter's code generator, the JIT lowering and the verifier. A row says:

- ``name``: the conformance-dialect mnemonic where that dialect has one (``add32``, ``ldxsw``,
  ``lock fetch add``), a dotted name for forms it lacks (``lddw.map_fd``); the immediate and
  register forms of an operation share it (``BY_NAME`` maps a name to its rows);
- ``opcode``: the opcode byte;
- ``selector``: the field that tells apart operations sharing a byte, and its value
  (``offset`` for sdiv/smod/movsx, ``imm`` for atomics and byte swaps, ``src_reg`` for the
  kinds of call and of 64-bit immediate load), or None;
- ``shape``: which operand fields the operation uses; every other field is reserved and must
  be zero;
- ``sem``: the semantics key (the interpreter has one handler per key, the JIT one lowering);
- ``width``: the operation's width in bits (ALU and jump: 32 or 64; memory: the access size;
  byte swaps: the swapped width); ``ext``: the narrower source width of sign extensions
  (movsx) or 0;
- ``group``: the RFC 9669 conformance group (``callx`` is an extension group of its own);
- ``cpu``: the first ``-mcpu`` version (v1-v4) that has it.

The rows are generated from the small column-aligned tables below (one per instruction
family) so that each fact is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Cls(IntEnum):
    """Instruction classes: the low three bits of the opcode (RFC 9669 section 3)."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Size(IntEnum):
    """Load/store size modifier (bits 3-4 of a memory opcode) and its width in bits."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18

    @property
    def bits(self) -> int:
        return {Size.W: 32, Size.H: 16, Size.B: 8, Size.DW: 64}[self]


class Mode(IntEnum):
    """Load/store mode modifier (bits 5-7 of a memory opcode)."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


SOURCE_K = 0x00  # operand is the immediate
SOURCE_X = 0x08  # operand is src_reg

MAX_REG = 10  # r0-r10; r10 is the read-only frame pointer
NUM_REGS = 11


class Shape(StrEnum):
    """Operand shapes: which fields an operation uses (the rest must be zero)."""

    ALU_IMM = "alu_imm"  # dst_reg op= imm
    ALU_REG = "alu_reg"  # dst_reg op= src_reg
    UNARY = "unary"  # dst_reg = op dst_reg
    END = "end"  # dst_reg = swap(dst_reg); imm (the selector) is the width
    JA = "ja"  # pc += offset
    JA32 = "ja32"  # pc += imm (gotol)
    JMP_IMM = "jmp_imm"  # if dst_reg op imm: pc += offset
    JMP_REG = "jmp_reg"  # if dst_reg op src_reg: pc += offset
    CALL = "call"  # imm: helper id, or relative offset of a local function
    KFUNC_CALL = "kfunc_call"  # imm: BTF id of the kfunc; offset: module BTF fd index
    CALLX = "callx"  # dst_reg holds the call target
    EXIT = "exit"
    LDDW = "lddw"  # dst_reg = 64-bit imm spread over two slots; src_reg selects its kind
    LDX = "ldx"  # dst_reg = *(size *)(src_reg + offset)
    ST = "st"  # *(size *)(dst_reg + offset) = imm
    STX = "stx"  # *(size *)(dst_reg + offset) = src_reg
    ATOMIC = "atomic"  # atomic op on *(size *)(dst_reg + offset) with src_reg; imm selects it
    LD_ABS = "ld_abs"  # r0 = ntoh(*(size *)(skb->data + imm))
    LD_IND = "ld_ind"  # r0 = ntoh(*(size *)(skb->data + src_reg + imm))


# The fields each shape uses; the others are reserved (must be zero) unless they select.
SHAPE_FIELDS: dict[Shape, frozenset[str]] = {
    Shape.ALU_IMM:    frozenset({"dst_reg", "imm"}),
    Shape.ALU_REG:    frozenset({"dst_reg", "src_reg"}),
    Shape.UNARY:      frozenset({"dst_reg"}),
    Shape.END:        frozenset({"dst_reg"}),
    Shape.JA:         frozenset({"offset"}),
    Shape.JA32:       frozenset({"imm"}),
    Shape.JMP_IMM:    frozenset({"dst_reg", "imm", "offset"}),
    Shape.JMP_REG:    frozenset({"dst_reg", "src_reg", "offset"}),
    Shape.CALL:       frozenset({"imm"}),
    Shape.KFUNC_CALL: frozenset({"imm", "offset"}),
    Shape.CALLX:      frozenset({"dst_reg"}),
    Shape.EXIT:       frozenset(),
    Shape.LDDW:       frozenset({"dst_reg", "imm"}),
    Shape.LDX:        frozenset({"dst_reg", "src_reg", "offset"}),
    Shape.ST:         frozenset({"dst_reg", "offset", "imm"}),
    Shape.STX:        frozenset({"dst_reg", "src_reg", "offset"}),
    Shape.ATOMIC:     frozenset({"dst_reg", "src_reg", "offset"}),
    Shape.LD_ABS:     frozenset({"imm"}),
    Shape.LD_IND:     frozenset({"src_reg", "imm"}),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One operation of the ISA (see the module docstring for the meaning of each field)."""

    name: str
    opcode: int
    selector: tuple[str, int] | None
    shape: Shape
    sem: str
    width: int
    ext: int
    group: str
    cpu: int

    @property
    def cls(self) -> Cls:
        return Cls(self.opcode & 0x07)

    @property
    def slots(self) -> int:
        """Instruction slots (8-byte words) the operation occupies."""
        return 2 if self.shape is Shape.LDDW else 1

    @property
    def fields(self) -> frozenset[str]:
        return SHAPE_FIELDS[self.shape]


# ALU / ALU64 (RFC 9669 4.1): the name is also the semantics key; off selects sdiv/smod/movsx,
# sources K and/or X; the group stem gets the width appended.
_ALU_OPS: tuple[tuple[int, str, int | None, str, str, int], ...] = (
    # code  name    off   sources  group    cpu
    (0x00, "add",  None, "KX",    "base",   1),
    (0x10, "sub",  None, "KX",    "base",   1),
    (0x20, "mul",  None, "KX",    "divmul", 1),
    (0x30, "div",  0,    "KX",    "divmul", 1),
    (0x30, "sdiv", 1,    "KX",    "divmul", 4),
    (0x40, "or",   None, "KX",    "base",   1),
    (0x50, "and",  None, "KX",    "base",   1),
    (0x60, "lsh",  None, "KX",    "base",   1),
    (0x70, "rsh",  None, "KX",    "base",   1),
    (0x80, "neg",  None, "K",     "base",   1),
    (0x90, "mod",  0,    "KX",    "divmul", 1),
    (0x90, "smod", 1,    "KX",    "divmul", 4),
    (0xA0, "xor",  None, "KX",    "base",   1),
    (0xB0, "mov",  0,    "KX",    "base",   1),
    (0xC0, "arsh", None, "KX",    "base",   1),
)  # fmt: skip

# movsx: MOV with a register source and the source width in offset (cpu v4).
_MOVSX_WIDTHS = {Cls.ALU: (8, 16), Cls.ALU64: (8, 16, 32)}

# Byte swaps (RFC 9669 4.2); the stem is also the semantics key.
_END_OPS: tuple[tuple[Cls, int, str, int], ...] = (
    # class      source    stem     cpu
    (Cls.ALU,    SOURCE_K, "le",    1),
    (Cls.ALU,    SOURCE_X, "be",    1),
    (Cls.ALU64,  SOURCE_K, "bswap", 4),
)  # fmt: skip

# Jumps (RFC 9669 4.3): code, name, cpu of the 64-bit form (the 32-bit forms are all v3).
_JMP_OPS: tuple[tuple[int, str, int], ...] = (
    # code  name    cpu
    (0x10, "jeq",  1),
    (0x20, "jgt",  1),
    (0x30, "jge",  1),
    (0x40, "jset", 1),
    (0x50, "jne",  1),
    (0x60, "jsgt", 1),
    (0x70, "jsge", 1),
    (0xA0, "jlt",  2),
    (0xB0, "jle",  2),
    (0xC0, "jslt", 2),
    (0xD0, "jsle", 2),
)  # fmt: skip

# Calls: the kind is in src_reg (RFC 9669 4.3.1).
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# 64-bit immediate loads: the kind is in src_reg (RFC 9669 5.4; names from the kernel UAPI).
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6

_LDDW_KINDS: tuple[tuple[int, str, str], ...] = (
    # src_reg                    name                   sem
    (0,                          "lddw",                "lddw"),
    (BPF_PSEUDO_MAP_FD,          "lddw.map_fd",         "lddw_map_fd"),
    (BPF_PSEUDO_MAP_VALUE,       "lddw.map_value",      "lddw_map_value"),
    (BPF_PSEUDO_BTF_ID,          "lddw.btf_id",         "lddw_btf_id"),
    (BPF_PSEUDO_FUNC,            "lddw.func",           "lddw_func"),
    (BPF_PSEUDO_MAP_IDX,         "lddw.map_idx",        "lddw_map_idx"),
    (BPF_PSEUDO_MAP_IDX_VALUE,   "lddw.map_idx_value",  "lddw_map_idx_value"),
)  # fmt: skip

# Atomic operations (RFC 9669 5.3): imm value, name, sem, cpu.
BPF_FETCH = 0x01
_ATOMIC_OPS: tuple[tuple[int, str, str, int], ...] = (
    # imm          name                sem                 cpu
    (0x00,         "lock add",         "atomic_add",       1),
    (0x40,         "lock or",          "atomic_or",        3),
    (0x50,         "lock and",         "atomic_and",       3),
    (0xA0,         "lock xor",         "atomic_xor",       3),
    (0x01,         "lock fetch add",   "atomic_fetch_add", 3),
    (0x41,         "lock fetch or",    "atomic_fetch_or",  3),
    (0x51,         "lock fetch and",   "atomic_fetch_and", 3),
    (0xA1,         "lock fetch xor",   "atomic_fetch_xor", 3),
    (0xE1,         "lock xchg",        "atomic_xchg",      3),
    (0xF1,         "lock cmpxchg",     "atomic_cmpxchg",   3),
)  # fmt: skip

_SIZE_SUFFIX = {Size.W: "w", Size.H: "h", Size.B: "b", Size.DW: "dw"}


def _alu_rows() -> list[OpSpec]:
    rows = []
    for cls, suffix, bits in ((Cls.ALU, "32", 32), (Cls.ALU64, "", 64)):
        for code, name, off, sources, stem, cpu in _ALU_OPS:
            group = f"{stem}{bits}"
            selector = ("offset", off) if off is not None else None
            for source in sources:
                src_bit = SOURCE_X if source == "X" else SOURCE_K
                if code == 0x80:
                    shape = Shape.UNARY
                else:
                    shape = Shape.ALU_REG if source == "X" else Shape.ALU_IMM
                rows.append(
                    OpSpec(
                        f"{name}{suffix}",
                        code | src_bit | cls,
                        selector,
                        shape,
                        name,
                        bits,
                        0,
                        group,
                        cpu,
                    )
                )
        for ext in _MOVSX_WIDTHS[cls]:
            rows.append(
                OpSpec(
                    f"movsx{ext}{bits}",
                    0xB0 | SOURCE_X | cls,
                    ("offset", ext),
                    Shape.ALU_REG,
                    "movsx",
                    bits,
                    ext,
                    f"base{bits}",
                    4,
                )
            )
    return rows


def _end_rows() -> list[OpSpec]:
    rows = []
    for cls, source, stem, cpu in _END_OPS:
        for bits in (16, 32, 64):
            group = "base64" if bits == 64 else "base32"
            rows.append(
                OpSpec(
                    f"{stem}{bits}",
                    0xD0 | source | cls,
                    ("imm", bits),
                    Shape.END,
                    stem,
                    bits,
                    0,
                    group,
                    cpu,
                )
            )
    return rows


def _jmp_rows() -> list[OpSpec]:
    rows = [
        OpSpec("ja", 0x05, None, Shape.JA, "ja", 64, 0, "base32", 1),
        OpSpec("ja32", 0x06, None, Shape.JA32, "ja", 32, 0, "base32", 4),
        OpSpec("call", 0x85, ("src_reg", 0), Shape.CALL, "call_helper", 64, 0, "base32", 1),
        OpSpec(
            "call.local",
            0x85,
            ("src_reg", BPF_PSEUDO_CALL),
            Shape.CALL,
            "call_local",
            64,
            0,
            "base32",
            1,
        ),
        OpSpec(
            "call.kfunc",
            0x85,
            ("src_reg", BPF_PSEUDO_KFUNC_CALL),
            Shape.KFUNC_CALL,
            "call_kfunc",
            64,
            0,
            "base32",
            1,
        ),
        OpSpec("callx", 0x8D, None, Shape.CALLX, "callx", 64, 0, "callx", 1),
        OpSpec("exit", 0x95, None, Shape.EXIT, "exit", 64, 0, "base32", 1),
    ]
    for cls, suffix, bits in ((Cls.JMP, "", 64), (Cls.JMP32, "32", 32)):
        for code, name, cpu in _JMP_OPS:
            for source, shape in ((SOURCE_K, Shape.JMP_IMM), (SOURCE_X, Shape.JMP_REG)):
                rows.append(
                    OpSpec(
                        f"{name}{suffix}",
                        code | source | cls,
                        None,
                        shape,
                        name,
                        bits,
                        0,
                        f"base{bits}",
                        cpu if cls is Cls.JMP else 3,
                    )
                )
    return rows


def _mem_rows() -> list[OpSpec]:
    rows = []
    for src, name, sem in _LDDW_KINDS:
        rows.append(
            OpSpec(
                name,
                Cls.LD | Mode.IMM | Size.DW,
                ("src_reg", src),
                Shape.LDDW,
                sem,
                64,
                0,
                "base64",
                1,
            )
        )
    for size in Size:
        sfx = _SIZE_SUFFIX[size]
        group = "base64" if size is Size.DW else "base32"
        rows += [
            OpSpec(
                f"ldx{sfx}",
                Cls.LDX | Mode.MEM | size,
                None,
                Shape.LDX,
                "ldx",
                size.bits,
                0,
                group,
                1,
            ),
            OpSpec(
                f"st{sfx}", Cls.ST | Mode.MEM | size, None, Shape.ST, "st", size.bits, 0, group, 1
            ),
            OpSpec(
                f"stx{sfx}",
                Cls.STX | Mode.MEM | size,
                None,
                Shape.STX,
                "stx",
                size.bits,
                0,
                group,
                1,
            ),
        ]
        if size is not Size.DW:
            rows += [
                OpSpec(
                    f"ldxs{sfx}",
                    Cls.LDX | Mode.MEMSX | size,
                    None,
                    Shape.LDX,
                    "ldxs",
                    size.bits,
                    0,
                    "base32",
                    4,
                ),
                OpSpec(
                    f"ldabs{sfx}",
                    Cls.LD | Mode.ABS | size,
                    None,
                    Shape.LD_ABS,
                    "ld_abs",
                    size.bits,
                    0,
                    "packet",
                    1,
                ),
                OpSpec(
                    f"ldind{sfx}",
                    Cls.LD | Mode.IND | size,
                    None,
                    Shape.LD_IND,
                    "ld_ind",
                    size.bits,
                    0,
                    "packet",
                    1,
                ),
            ]
    for size, suffix, bits in ((Size.W, "32", 32), (Size.DW, "", 64)):
        for imm, name, sem, cpu in _ATOMIC_OPS:
            rows.append(
                OpSpec(
                    f"{name}{suffix}",
                    Cls.STX | Mode.ATOMIC | size,
                    ("imm", imm),
                    Shape.ATOMIC,
                    sem,
                    bits,
                    0,
                    f"atomic{bits}",
                    cpu,
                )
            )
    return rows


OPS: tuple[OpSpec, ...] = tuple(_alu_rows() + _end_rows() + _jmp_rows() + _mem_rows())

# mnemonic -> its rows (the immediate form first, then the register form, where both exist).
BY_NAME: dict[str, tuple[OpSpec, ...]] = {}
for _op in OPS:
    BY_NAME[_op.name] = (*BY_NAME.get(_op.name, ()), _op)

# opcode byte -> the rows sharing it (one row when it has no selector).
BY_OPCODE: dict[int, tuple[OpSpec, ...]] = {}
for _op in OPS:
    BY_OPCODE[_op.opcode] = (*BY_OPCODE.get(_op.opcode, ()), _op)

SEMANTICS: frozenset[str] = frozenset(op.sem for op in OPS)

CONFORMANCE_GROUPS: tuple[str, ...] = (
    "base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet", "callx",
)  # fmt: skip


def invalid_opcode_reason(opcode: int) -> str | None:
    """Why an opcode byte is not an instruction of the table, or None when it is one."""
    if opcode in BY_OPCODE:
        return None
    cls = Cls(opcode & 0x07)
    if cls in (Cls.ALU, Cls.ALU64):
        code = opcode & 0xF0
        if code == 0x80:
            return f"{cls.name} NEG takes no register source"
        if code == 0xD0:
            return "ALU64 END is only defined with the TO_LE source bit (bswap)"
        return f"{cls.name} operation code {code:#04x} is not defined"
    if cls in (Cls.JMP, Cls.JMP32):
        code = opcode & 0xF0
        if cls is Cls.JMP32 and code in (0x80, 0x90):
            return f"JMP32 has no {'CALL' if code == 0x80 else 'EXIT'}"
        if code == 0x00:
            return f"{cls.name} JA takes no register source"
        if code == 0x90:
            return "EXIT takes no register source"
        return f"{cls.name} operation code {code:#04x} is not defined"
    if opcode & 0xE0 not in Mode._value2member_map_:
        return f"{cls.name} mode {opcode & 0xE0:#04x} is not defined"
    mode, size = Mode(opcode & 0xE0), Size(opcode & 0x18)
    if cls is Cls.LD:
        if mode is Mode.IMM:
            return "LD IMM is only defined with size DW (lddw)"
        if mode in (Mode.ABS, Mode.IND):
            return f"LD {mode.name} is not defined with size DW"
        return f"LD mode {mode.name} is not defined (use LDX)"
    if cls is Cls.LDX:
        if mode is Mode.MEMSX:
            return "LDX MEMSX is not defined with size DW"
        return f"LDX mode {mode.name} is not defined"
    if cls is Cls.STX and mode is Mode.ATOMIC:
        return f"atomic operations are not defined with size {size.name}"
    return f"{cls.name} mode {mode.name} is not defined"

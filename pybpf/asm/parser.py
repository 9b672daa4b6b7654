"""Assembly text -> statements: the lark parsers of both dialects and the walk from their
parse trees to table rows with field values.

First stage of the assembler (`pybpf.asm.assembler` resolves labels and encodes). The grammars
(`conformance.lark`, `llvm.lark`) know only the syntax of operands; which operands a mnemonic
or operator takes, and which rows exist, comes from the opcode table through
`pybpf.asm.syntax`. Every value is range-checked here, where its line and column are known.
Lark's exceptions are converted to `AsmError` in `_parse` and nowhere else.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import lark
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from pybpf.asm.syntax import (
    ATOMIC_FUNCTIONS,
    CONFORMANCE_MNEMONICS,
    KFUNC_NAME,
    OPERATOR_ALU,
    OPERATOR_JMP,
    Kind,
    conformance_slots,
    find,
    is_local_call,
    lock_operator,
    mnemonic_regex,
)
from pybpf.errors import AsmError
from pybpf.isa.opcodes import BPF_FETCH, MAX_REG, OPS, OpSpec, Shape

DIALECTS = ("conformance", "llvm")

S16 = (-(1 << 15), 1 << 15)
S32 = (-(1 << 31), 1 << 31)
IMM32 = (-(1 << 31), 1 << 32)  # s32, or its unsigned spelling (0xffffffff is -1)
IMM64 = (-(1 << 63), 1 << 64)
_MAX_DIGITS = 40  # longer numbers cannot fit any field (and int() limits decimal length)


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Ref:
    """A jump or call target: a label, or a signed offset relative to the next instruction."""

    label: str | None
    value: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class LabelDef:
    name: str
    pos: Pos


@dataclass(slots=True)
class Stmt:
    """One instruction: its row, its field values (selector not included), the 64-bit value
    of an lddw and the unresolved target of a jump or local call."""

    spec: OpSpec
    pos: Pos
    fields: dict[str, int] = field(default_factory=dict)
    imm64: int = 0
    target: Ref | None = None


Item = Stmt | LabelDef


def _pos(tok: lark.Token) -> Pos:
    return Pos(tok.line or 0, tok.column or 0)


def _fail(reason: str, tok: lark.Token | Pos, expected: list[str] | None = None) -> AsmError:
    pos = tok if isinstance(tok, Pos) else _pos(tok)
    return AsmError(reason, line=pos.line, column=pos.column, expected=expected)


def _number(tok: lark.Token, sign: lark.Token | None = None) -> int:
    text = str(tok)
    if len(text) > _MAX_DIGITS:
        raise _fail(f"number {text[:12]}... is too large for any field", tok)
    value = int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)
    return -value if sign is not None and str(sign) == "-" else value


def _check(value: int, bounds: tuple[int, int], what: str, where: lark.Token | Pos) -> int:
    low, high = bounds
    if not low <= value < high:
        raise _fail(f"{what} {value} out of range [{low}, {high - 1}]", where)
    return value


def _label_name(tok: lark.Token) -> str:
    text = str(tok).rstrip(" \t:")
    if "<" in text:  # objdump's function header: 0000000000000000 <name>:
        return text[text.index("<") + 1 : text.rindex(">")]
    return text


# --- lark -----------------------------------------------------------------------------------

_TERMINAL_NAMES = {
    "REG": "register",
    "INT": "number",
    "SIGN": "'+' or '-'",
    "NAME": "label",
    "LABEL": "label definition",
    "MNEMONIC": "mnemonic",
    "_NL": "end of line",
    "$END": "end of input",
    "AUGOP": "assignment operator",
    "CMPOP": "comparison operator",
    "CAST": "sign-extension cast",
    "TYPE": "memory type (u8..u64, s8..s32)",
    "GOTO": "'goto' or 'gotol'",
    "KCALL": "name#id",
    "ANNOT": "<annotation>",
    "PCPREFIX": "pc prefix",
    "HEXBYTES": "instruction bytes",
    "OPCODE": "(opcode)",
    "FUNCHDR": "function header",
}


@cache
def _parser(dialect: str) -> lark.Lark:
    text = resources.files("pybpf.asm").joinpath(f"{dialect}.lark").read_text(encoding="utf-8")
    if dialect == "conformance":
        text += f"\nMNEMONIC.2: /{mnemonic_regex()}/\n"
    return lark.Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _describe(parser: lark.Lark, name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    for term in parser.terminals:
        if term.name == name and term.pattern.type == "str":
            return repr(term.pattern.value)
    return name.lower()


def _acceptable(e: UnexpectedToken) -> set[str]:
    """The terminals the parser could really take next (an LALR state's lookahead set also
    holds terminals that only fit after a reduction that this input cannot make)."""
    interactive = getattr(e, "interactive_parser", None)
    if interactive is None:
        return set()
    try:
        return set(interactive.accepts())
    except LarkError:
        return set()


def _parse(dialect: str, text: str) -> lark.Tree:
    """Parse ``text``; the one place where lark's exceptions become AsmError."""
    parser = _parser(dialect)
    try:
        return parser.parse(text)
    except UnexpectedInput as e:
        line, column = e.line, e.column
        if isinstance(e, UnexpectedCharacters):
            found = repr(text[e.pos_in_stream]) if 0 <= e.pos_in_stream < len(text) else "?"
            reason = f"unexpected character {found}"
            names = e.allowed or set()
        elif isinstance(e, UnexpectedToken):
            tok = e.token
            if tok.type == "$END":
                reason = "unexpected end of input"
                line = None  # lark places it on the last token; the end is after it
            elif tok.type == "_NL":
                reason = "unexpected end of line"
            elif tok.type in _TERMINAL_NAMES:
                reason = f"unexpected {_describe(parser, tok.type)} {str(tok)!r}"
            else:
                reason = f"unexpected {str(tok)!r}"
            names = _acceptable(e) or e.expected or set()
        else:
            reason = "unexpected end of input"
            names = getattr(e, "expected", None) or set()
        if line is None or line < 1:
            line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
        expected = sorted({_describe(parser, n) for n in names})
        raise AsmError(
            f"{dialect} syntax: {reason}", line=line, column=column, expected=expected
        ) from e
    except LarkError as e:
        raise AsmError(f"{dialect} syntax: {e}", line=1) from e


def parse(text: str, dialect: str) -> list[Item]:
    tree = _parse(dialect, text)
    if dialect == "conformance":
        return [_conformance_item(node) for node in tree.children if node is not None]
    return [_llvm_stmt(node) for node in tree.children if node is not None]


# --- conformance dialect --------------------------------------------------------------------

_OPERAND_FILLS: dict[str, frozenset[Kind]] = {
    "reg": frozenset({Kind.REG}),
    "mem": frozenset({Kind.MEM}),
    "num": frozenset({Kind.IMM, Kind.IMM64, Kind.TARGET}),
    "name": frozenset({Kind.TARGET}),
}

_OPERAND_NAMES = {"reg": "register", "mem": "memory operand", "num": "number", "name": "label"}

_CONF_REG = re.compile(r"%r([0-9]+)")


def _conformance_item(node: lark.Tree) -> Item:
    if node.data == "label":
        tok = node.children[0]
        return LabelDef(_label_name(tok), _pos(tok))
    mnemonic_tok, *rest = node.children
    operands = [op for op in rest if op is not None]
    word = " ".join(str(mnemonic_tok).split())
    rows = CONFORMANCE_MNEMONICS.get(word)
    if rows is None:
        close = difflib.get_close_matches(word, CONFORMANCE_MNEMONICS, n=5)
        raise _fail(f"unknown mnemonic {word!r}", mnemonic_tok, close)
    spec = _choose_row(word, rows, operands, mnemonic_tok)
    stmt = Stmt(spec, _pos(mnemonic_tok))
    for slot, operand in zip(conformance_slots(spec), operands, strict=False):
        _fill(stmt, slot.kind, slot.field, operand)
    return stmt


def _operand_pos(operand: lark.Tree) -> Pos:
    return Pos(operand.meta.line, operand.meta.column)


def _choose_row(
    word: str, rows: tuple[OpSpec, ...], operands: list[lark.Tree], at: lark.Token
) -> OpSpec:
    """The row whose operand layout the operands fit; else the error at the operand where
    the best-fitting layout goes wrong, naming what every layout accepts there."""
    best_index, expected = -1, set[str]()
    for spec in rows:
        slots = conformance_slots(spec)
        required = sum(1 for s in slots if not s.optional)
        index = 0
        while index < min(len(slots), len(operands)):
            if slots[index].kind not in _OPERAND_FILLS[operands[index].data]:
                break
            index += 1
        if index == len(operands) and len(operands) >= required:
            return spec
        if index > best_index:
            best_index, expected = index, set()
        if index == best_index:
            if index < len(slots):
                expected.add(slots[index].kind.value)
            else:
                expected.add("end of line")
    if best_index < len(operands):
        bad = operands[best_index]
        reason = f"{word}: unexpected {_OPERAND_NAMES[bad.data]} as operand {best_index + 1}"
        raise _fail(reason, _operand_pos(bad), sorted(expected))
    end = operands[-1].meta if operands else None
    where = Pos(end.end_line, end.end_column) if end else Pos(at.end_line or 0, at.end_column or 0)
    raise _fail(f"{word}: missing operand {best_index + 1}", where, sorted(expected))


def _conf_reg(tok: lark.Token) -> int:
    m = _CONF_REG.fullmatch(str(tok))
    if m is None or int(m.group(1)) > MAX_REG:
        raise _fail(f"bad register {str(tok)!r}", tok, [f"%r0..%r{MAX_REG}"])
    return int(m.group(1))


def _fill(stmt: Stmt, kind: Kind, name: str, operand: lark.Tree) -> None:
    ch = operand.children
    if kind is Kind.REG:
        stmt.fields[name] = _conf_reg(ch[0])
    elif kind is Kind.MEM:
        reg, sign, number = ch
        stmt.fields[name] = _conf_reg(reg)
        if number is not None:
            stmt.fields["offset"] = _check(_number(number, sign), S16, "offset", number)
    elif kind is Kind.TARGET:
        if operand.data == "name":
            stmt.target = Ref(str(ch[0]), 0, _pos(ch[0]))
        else:
            stmt.target = Ref(None, _number(ch[1], ch[0]), _operand_pos(operand))
    elif kind is Kind.IMM64:
        stmt.imm64 = _check(_number(ch[1], ch[0]), IMM64, "64-bit immediate", ch[1])
    elif name == "offset":
        stmt.fields[name] = _check(_number(ch[1], ch[0]), S16, "offset", ch[1])
    else:
        stmt.fields[name] = _check(_number(ch[1], ch[0]), IMM32, "immediate", ch[1])


# --- llvm dialect ---------------------------------------------------------------------------

_LLVM_REG = re.compile(r"([rw])([0-9]+)")


@dataclass(frozen=True, slots=True)
class _Reg:
    num: int
    wide: bool  # r (64-bit view) rather than w (32-bit view)
    tok: lark.Token


def _reg(tok: lark.Token) -> _Reg:
    m = _LLVM_REG.fullmatch(str(tok))
    if m is None or int(m.group(2)) > MAX_REG:
        raise _fail(f"bad register {str(tok)!r}", tok, [f"r0..r{MAX_REG}", f"w0..w{MAX_REG}"])
    return _Reg(int(m.group(2)), m.group(1) == "r", tok)


def _imm(node: lark.Tree) -> tuple[int, lark.Token]:
    sign, number = node.children
    return _number(number, sign), number


def _need_width(reg: _Reg, width: int, what: str) -> None:
    if reg.wide != (width == 64):
        want = ("r" if width == 64 else "w") + str(reg.num)
        raise _fail(f"{what} needs {want}, not {reg.tok}", reg.tok, [want])


def _row(shape: Shape, where: lark.Token | Pos, what: str, **want: object) -> OpSpec:
    spec = find(shape, **want)
    if spec is None:
        raise _fail(f"no such instruction: {what}", where)
    return spec


def _cast(node: lark.Tree) -> tuple[int, bool, lark.Token]:
    tok = node.children[0]
    text = str(tok)
    return int(text[1:]), text[0] == "s", tok


def _mem(stmt: Stmt, node: lark.Tree, reg_field: str) -> None:
    reg, sign, number = node.children
    stmt.fields[reg_field] = _reg(reg).num
    if number is not None:
        stmt.fields["offset"] = _check(_number(number, sign), S16, "offset", number)


def _target(node: lark.Tree) -> Ref:
    child = node.children[0]
    if child.data == "name":
        tok = child.children[0]
        return Ref(str(tok), 0, _pos(tok))
    if child.data == "pcrel":
        sign, number = child.children
        return Ref(None, _number(number, sign), Pos(child.meta.line, child.meta.column))
    value, _tok = _imm(child)
    return Ref(None, value, Pos(child.meta.line, child.meta.column))


def _llvm_stmt(node: lark.Tree) -> Item:
    _pc, _hex, opcode_tok, body = node.children
    if body.data == "label":
        tok = body.children[0]
        return LabelDef(_label_name(tok), _pos(tok))
    opcode = int(str(opcode_tok)[1:3], 16) if opcode_tok is not None else None
    stmt = _LLVM_BUILDERS[body.data](body, opcode)
    if opcode is not None and opcode != stmt.spec.opcode:
        raise _fail(
            f"opcode ({opcode:02x}) does not match the instruction ({stmt.spec.opcode:02x})",
            opcode_tok,
        )
    return stmt


def _start(body: lark.Tree) -> Pos:
    return Pos(body.meta.line, body.meta.column)


def _b_alu(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, op, value = body.children
    dst = _reg(dst_tok)
    width = 64 if dst.wide else 32
    sem = OPERATOR_ALU[str(op)]
    if isinstance(value, lark.Token):
        src = _reg(value)
        _need_width(src, width, f"{width}-bit {sem}")
        spec = _row(Shape.ALU_REG, op, f"{sem} register", sem=sem, width=width, ext=0)
        return Stmt(spec, _start(body), {"dst_reg": dst.num, "src_reg": src.num})
    imm, tok = _imm(value)
    spec = _row(Shape.ALU_IMM, op, f"{sem} immediate", sem=sem, width=width, ext=0)
    return Stmt(
        spec, _start(body), {"dst_reg": dst.num, "imm": _check(imm, IMM32, "immediate", tok)}
    )


def _b_assign(body: lark.Tree, opcode: int | None) -> Stmt:
    dst_tok, value, ll = body.children
    dst = _reg(dst_tok)
    if isinstance(value, lark.Token):
        if ll is not None:
            raise _fail("'ll' loads a 64-bit immediate, not a register", ll)
        src = _reg(value)
        width = 64 if dst.wide else 32
        _need_width(src, width, f"{width}-bit mov")
        spec = _row(Shape.ALU_REG, dst_tok, "mov register", sem="mov", width=width, ext=0)
        return Stmt(spec, _start(body), {"dst_reg": dst.num, "src_reg": src.num})
    imm, tok = _imm(value)
    lddw = find(Shape.LDDW, selector=("src_reg", 0))
    # `ll` marks lddw (llvm); the kernel log prints lddw without it but with its opcode
    # (18), and a value beyond 32 bits can only be an lddw.
    if lddw is not None and (
        ll is not None or opcode == lddw.opcode or (dst.wide and not IMM32[0] <= imm < IMM32[1])
    ):
        _need_width(dst, 64, "lddw")
        return Stmt(
            lddw, _start(body), {"dst_reg": dst.num}, _check(imm, IMM64, "64-bit immediate", tok)
        )
    width = 64 if dst.wide else 32
    spec = _row(Shape.ALU_IMM, dst_tok, "mov immediate", sem="mov", width=width, ext=0)
    return Stmt(
        spec, _start(body), {"dst_reg": dst.num, "imm": _check(imm, IMM32, "immediate", tok)}
    )


def _b_movsx(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, cast, src_tok = body.children
    dst, src = _reg(dst_tok), _reg(src_tok)
    width = 64 if dst.wide else 32
    _need_width(src, width, f"{width}-bit sign extension")
    ext = int(str(cast).strip("()s"))
    spec = _row(
        Shape.ALU_REG, cast, f"{width}-bit mov from (s{ext})", sem="movsx", width=width, ext=ext
    )
    return Stmt(spec, _start(body), {"dst_reg": dst.num, "src_reg": src.num})


def _same_reg(dst: _Reg, src: _Reg, what: str) -> None:
    if dst.num != src.num:
        raise _fail(
            f"{what} works in place: the source must be r{dst.num}", src.tok, [f"r{dst.num}"]
        )


def _b_neg(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, sign, src_tok = body.children
    if str(sign) != "-":
        raise _fail("expected '-' (negation)", sign, ["'-'"])
    dst, src = _reg(dst_tok), _reg(src_tok)
    width = 64 if dst.wide else 32
    _need_width(src, width, f"{width}-bit negation")
    _same_reg(dst, src, "negation")
    spec = _row(Shape.UNARY, dst_tok, "negation", sem="neg", width=width)
    return Stmt(spec, _start(body), {"dst_reg": dst.num})


def _b_endian(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, name, src_tok = body.children
    dst, src = _reg(dst_tok), _reg(src_tok)
    spec = find(Shape.END, name=str(name))
    if spec is None:
        names = sorted(op.name for op in _END_ROWS)
        raise _fail(f"unknown byte swap {str(name)!r}", name, names)
    _same_reg(dst, src, "a byte swap")
    return Stmt(spec, _start(body), {"dst_reg": dst.num})


def _b_load(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, cast, mem = body.children
    width, signed, tok = _cast(cast)
    dst = _reg(dst_tok)
    spec = _row(Shape.LDX, tok, f"load of {tok}", sem="ldxs" if signed else "ldx", width=width)
    if not dst.wide and (signed or width == 64):
        raise _fail(
            f"a load of {tok} sets the whole register: r{dst.num}", dst_tok, [f"r{dst.num}"]
        )
    stmt = Stmt(spec, _start(body), {"dst_reg": dst.num})
    _mem(stmt, mem, "src_reg")
    return stmt


def _packet_load(body: lark.Tree, shape: Shape, dst_tok: lark.Token, cast: lark.Tree) -> Stmt:
    width, signed, tok = _cast(cast)
    dst = _reg(dst_tok)
    if dst.num != 0 or not dst.wide:
        raise _fail("packet loads always load into r0", dst_tok, ["r0"])
    if signed:
        raise _fail("packet loads are unsigned", tok)
    return Stmt(_row(shape, tok, f"packet load of {tok}", width=width), _start(body))


def _b_ld_abs(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, cast, imm_node = body.children
    stmt = _packet_load(body, Shape.LD_ABS, dst_tok, cast)
    imm, tok = _imm(imm_node)
    stmt.fields["imm"] = _check(imm, IMM32, "immediate", tok)
    return stmt


def _b_ld_ind(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, cast, src_tok, sign, imm_node = body.children
    stmt = _packet_load(body, Shape.LD_IND, dst_tok, cast)
    stmt.fields["src_reg"] = _reg(src_tok).num
    if imm_node is not None:
        imm, tok = _imm(imm_node)
        imm = -imm if str(sign) == "-" else imm
        stmt.fields["imm"] = _check(imm, IMM32, "immediate", tok)
    return stmt


def _b_store(body: lark.Tree, _opcode: int | None) -> Stmt:
    cast, mem, value = body.children
    width, signed, tok = _cast(cast)
    if signed:
        raise _fail(f"stores take an unsigned type, not {tok}", tok)
    if isinstance(value, lark.Token):
        src = _reg(value)
        if width == 64:
            _need_width(src, 64, "a 64-bit store")
        stmt = Stmt(_row(Shape.STX, tok, f"store of {tok}", width=width), _start(body))
        stmt.fields["src_reg"] = src.num
    else:
        imm, num_tok = _imm(value)
        stmt = Stmt(_row(Shape.ST, tok, f"store of {tok}", width=width), _start(body))
        stmt.fields["imm"] = _check(imm, IMM32, "immediate", num_tok)
    _mem(stmt, mem, "dst_reg")
    return stmt


def _b_lock(body: lark.Tree, _opcode: int | None) -> Stmt:
    cast, mem, op, src_tok = body.children
    width, signed, tok = _cast(cast)
    sem = "atomic_" + OPERATOR_ALU[str(op)]
    spec = find(Shape.ATOMIC, sem=sem, width=width)
    if signed or spec is None:
        ops = sorted({lock_operator(o) for o in _LOCK_ROWS})
        raise _fail(f"no atomic {op} on {tok}", op, ops)
    src = _reg(src_tok)
    if width == 64:
        _need_width(src, 64, "a 64-bit atomic")
    stmt = Stmt(spec, _start(body), {"src_reg": src.num})
    _mem(stmt, mem, "dst_reg")
    return stmt


def _b_atomic_fn(body: lark.Tree, _opcode: int | None) -> Stmt:
    result_tok, name, *args = body.children
    rows = ATOMIC_FUNCTIONS.get(str(name))
    if rows is None:
        close = difflib.get_close_matches(str(name), ATOMIC_FUNCTIONS, n=5)
        raise _fail(
            f"unknown atomic operation {str(name)!r}", name, close or sorted(ATOMIC_FUNCTIONS)
        )
    if args[0].data == "cast":
        cast, mem, *regs = args
        width, signed, tok = _cast(cast)
        rows = [r for r in rows if r.width == width] if not signed else []
        if not rows:
            raise _fail(f"{name} does not operate on {tok}", tok)
    else:
        mem, *regs = args
        if len(rows) > 1:
            raise _fail(
                f"{name} needs a pointer cast: (u32 *) or (u64 *)",
                mem.children[0],
                ["(u32 *)", "(u64 *)"],
            )
    spec = rows[0]
    result = _reg(result_tok)
    values = [_reg(r) for r in regs]
    cmpxchg = spec.sem == "atomic_cmpxchg"
    if len(values) != (2 if cmpxchg else 1):
        raise _fail(f"{name} takes {3 if cmpxchg else 2} arguments", name)
    src = values[-1]
    if cmpxchg:
        # The kernel's compare-and-exchange compares with, and returns into, r0.
        for reg in (result, values[0]):
            if reg.num != 0:
                raise _fail(f"{name} compares with and returns into r0", reg.tok, ["r0", "w0"])
    elif result.num != src.num:
        raise _fail(
            f"{name} returns into its value register r{src.num}", result_tok, [f"r{src.num}"]
        )
    if spec.width == 64:
        for reg in (result, *values):
            _need_width(reg, 64, "a 64-bit atomic")
    stmt = Stmt(spec, _start(body), {"src_reg": src.num})
    _mem(stmt, mem, "dst_reg")
    return stmt


def _b_cond(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, op, value, goto, target = body.children
    if str(goto) != "goto":
        raise _fail("conditional jumps use 'goto'", goto, ["'goto'"])
    dst = _reg(dst_tok)
    width = 64 if dst.wide else 32
    sem = OPERATOR_JMP[str(op)]
    if isinstance(value, lark.Token):
        src = _reg(value)
        _need_width(src, width, f"a {width}-bit comparison")
        spec = _row(Shape.JMP_REG, op, f"jump if {op}", sem=sem, width=width)
        fields = {"dst_reg": dst.num, "src_reg": src.num}
    else:
        imm, tok = _imm(value)
        spec = _row(Shape.JMP_IMM, op, f"jump if {op}", sem=sem, width=width)
        fields = {"dst_reg": dst.num, "imm": _check(imm, IMM32, "immediate", tok)}
    return Stmt(spec, _start(body), fields, target=_target(target))


def _b_goto(body: lark.Tree, _opcode: int | None) -> Stmt:
    goto, target = body.children
    shape = Shape.JA32 if str(goto) == "gotol" else Shape.JA
    return Stmt(_row(shape, goto, str(goto)), _start(body), target=_target(target))


def _b_call(body: lark.Tree, _opcode: int | None) -> Stmt:
    callee, _annot = body.children
    pos = _start(body)
    if callee.data == "imm":
        imm, tok = _imm(callee)
        spec = _row(Shape.CALL, tok, "helper call", selector=("src_reg", 0))
        return Stmt(spec, pos, {"imm": _check(imm, IMM32, "helper id", tok)})
    if callee.data == "kcall":
        tok, offset = callee.children
        name, _, ident = str(tok).rpartition("#")
        imm = _check(int(ident), IMM32, "call id", tok)
        if name == KFUNC_NAME:
            spec = _row(Shape.KFUNC_CALL, tok, "kfunc call")
            off = 0
            if offset is not None:
                value, off_tok = _imm(offset)
                off = _check(value, S16, "kfunc module offset", off_tok)
            return Stmt(spec, pos, {"imm": imm, "offset": off})
        if offset is not None:
            raise _fail("helper calls take no module offset", offset.children[1])
        return Stmt(
            _row(Shape.CALL, tok, "helper call", selector=("src_reg", 0)), pos, {"imm": imm}
        )
    local = _LOCAL_CALL
    if callee.data == "name":
        tok = callee.children[0]
        return Stmt(local, pos, target=Ref(str(tok), 0, _pos(tok)))
    sign, number = callee.children
    return Stmt(local, pos, target=Ref(None, _number(number, sign), _pos(number)))


def _b_callx(body: lark.Tree, _opcode: int | None) -> Stmt:
    (reg_tok,) = body.children
    reg = _reg(reg_tok)
    return Stmt(_row(Shape.CALLX, reg_tok, "callx"), _start(body), {"dst_reg": reg.num})


def _b_exit(body: lark.Tree, _opcode: int | None) -> Stmt:
    return Stmt(_row(Shape.EXIT, _start(body), "exit"), _start(body))


def _b_ld_pseudo(body: lark.Tree, _opcode: int | None) -> Stmt:
    dst_tok, kind_node, value_node = body.children
    dst = _reg(dst_tok)
    _need_width(dst, 64, "lddw")
    kind, kind_tok = _imm(kind_node)
    spec = find(Shape.LDDW, selector=("src_reg", kind))
    if spec is None:
        kinds = sorted(str(op.selector[1]) for op in _LDDW_ROWS if op.selector)
        raise _fail(f"no 64-bit load of kind {kind}", kind_tok, kinds)
    value, tok = _imm(value_node)
    return Stmt(
        spec, _start(body), {"dst_reg": dst.num}, _check(value, IMM64, "64-bit immediate", tok)
    )


_END_ROWS = tuple(op for op in OPS if op.shape is Shape.END)
_LDDW_ROWS = tuple(op for op in OPS if op.shape is Shape.LDDW)
_LOCK_ROWS = tuple(
    op for op in OPS if op.shape is Shape.ATOMIC and op.selector and not op.selector[1] & BPF_FETCH
)
_LOCAL_CALL = next(op for op in OPS if is_local_call(op))

_LLVM_BUILDERS = {
    "alu": _b_alu,
    "assign": _b_assign,
    "movsx": _b_movsx,
    "neg": _b_neg,
    "endian": _b_endian,
    "load": _b_load,
    "ld_abs": _b_ld_abs,
    "ld_ind": _b_ld_ind,
    "store": _b_store,
    "lock": _b_lock,
    "atomic_fn": _b_atomic_fn,
    "cond": _b_cond,
    "goto": _b_goto,
    "call": _b_call,
    "callx": _b_callx,
    "exit": _b_exit,
    "ld_pseudo": _b_ld_pseudo,
}

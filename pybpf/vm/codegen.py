"""Translation of a BPF program into Python source: the interpreter's fast path.

Place in the pipeline: the interpreter (`interpreter.py`) hands a decoded, linked program to
`generate`, compiles the source once (cached by program bytes) and executes it per run.

Each BPF function becomes one Python function whose registers are local variables:
``f<entry>(r1, r2, r3, r4, r5, fp, st, n, lim, rs) -> (r0, n)``, where ``fp`` is the frame
pointer, ``st`` the top of the run's stack area, ``n`` the instructions executed so far,
``lim`` the budget and ``rs`` the run's `RunState` (slow paths: region checks, traps).

Control flow: blocks are emitted in pc order as a chain of ``if b == <pc>:`` guards, so a
forward jump is ``b = <target>`` and falls into the later guards. Every backward edge (in pc
order) belongs to a loop interval; intervals are merged until properly nested and each
becomes a ``while True:`` whose body is its blocks, so a backward jump is ``continue`` and a
jump out is ``break``. A loop entered only at its first block needs no guard on that block:
a tight loop runs as a plain Python while-loop. The budget is counted once per block and
checked at the targets of backward edges (every cycle passes one) and at the program's exit.

Memory: loads and stores go through prebuilt ``struct`` methods on the Arena's memoryview. An
access off r10 that provably stays inside the current frame (r10 never written in that
function) is emitted without a check; any other access is range-checked inline against the
live stack frames and against the region the function's last checked read (or write) was
found in, and otherwise validated by ``rs.check`` (the Arena's region registry), whose answer
becomes the new cached region (see `_address` for why the cache is as safe as the check).

``HANDLERS`` maps every semantics key of the opcode table to the function emitting it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pybpf.isa.cfg import Block, End, Function, ProgramCfg, jump_target
from pybpf.isa.instruction import Instruction
from pybpf.isa.opcodes import Shape

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
STACK_SIZE = 512
MAX_CALL_FRAMES = 8
# Function pointers (the value of an lddw.func) carry this tag above the target pc: no helper
# id and no Arena address (below 2**32) has it, so callx can tell them apart.
FUNC_PTR_TAG = 0xF1 << 56
# Python allows 20 statically nested blocks per function; loops nested deeper than this run
# through the enclosing loop's dispatch instead of a while-loop of their own.
MAX_LOOP_NESTING = 12
# The low bound of an empty region cache: above every address an access can compute (a u64
# register plus a 16-bit offset), so the cache test fails before it reads the high bounds,
# which therefore need no initial value.
_NO_REGION = 1 << 66
# The access sizes, in the order `cache_bounds` gives their high bounds.
CACHE_SIZES = (1, 2, 4, 8)


def cache_bounds(start: int, end: int) -> tuple[int, int, int, int, int]:
    """What a region cache holds for the region ``[start, end)``: its start, then for each
    size of `CACHE_SIZES` the highest address an access of that size may start at."""
    return start, end - 1, end - 2, end - 4, end - 8


_SIZES = {8: 1, 16: 2, 32: 4, 64: 8}
_CMP = {"jeq": "==", "jne": "!=", "jgt": ">", "jge": ">=", "jlt": "<", "jle": "<="}
_SCMP = {"jsgt": ">", "jsge": ">=", "jslt": "<", "jsle": "<="}
_BITOPS = {"or": "|", "and": "&", "xor": "^"}
_ATOMIC_OPS = {"add": "+", "or": "|", "and": "&", "xor": "^"}


def func_pointer(pc: int) -> int:
    """The value an ``lddw.func`` of the function at ``pc`` loads."""
    return FUNC_PTR_TAG | pc


def func_name(entry: int) -> str:
    return f"f{entry}"


@dataclass
class _Fn:
    """State while emitting one function."""

    fn: Function
    main: bool
    traced: bool
    lines: list[str] = field(default_factory=list)
    indent: int = 1
    stack_sizes: set[int] = field(default_factory=set)
    dynamic_mem: bool = False
    # Whether the function keeps region caches (it has checked accesses and is not traced).
    cached: bool = False
    # The pcs of checked accesses whose base may point into the stack (`_stack_bases`).
    stack_based: frozenset[int] = frozenset()
    calls: bool = False
    r10_fixed: bool = True
    rest: int = 0  # instructions of the current block after the one being emitted
    # A register copy folded into the next instruction: its left operand reads this instead.
    left: str | None = None

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)


Handler = Callable[["Generator", _Fn, int, Instruction], str | None]


def _src(insn: Instruction, bits: int) -> str:
    """The second operand: src_reg, or the immediate sign-extended and cut to ``bits``."""
    if insn.spec.shape in (Shape.ALU_REG, Shape.JMP_REG):
        return f"r{insn.src_reg}"
    return str(insn.imm & (M64 if bits == 64 else M32))


def _is_imm(insn: Instruction) -> bool:
    return insn.spec.shape in (Shape.ALU_IMM, Shape.JMP_IMM)


# ---- ALU ------------------------------------------------------------------------------------

_FUSABLE = frozenset({"add", "sub", "mul", "or", "and", "xor", "lsh", "rsh", "arsh"})


def _fuses(mov: Instruction, nxt: Instruction) -> bool:
    """Whether ``mov rD, rS`` can be folded into ``nxt`` (``rD = rS op x``): nxt is a 64-bit
    ALU operation on rD that reads rD only as its left operand."""
    spec = nxt.spec
    return (
        spec.sem in _FUSABLE
        and spec.width == 64
        and nxt.dst_reg == mov.dst_reg
        and (spec.shape is Shape.ALU_IMM or nxt.src_reg != mov.dst_reg)
    )


def _left(f: _Fn, insn: Instruction) -> str:
    left, f.left = f.left, None
    return left if left is not None else f"r{insn.dst_reg}"


def _alu_arith(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d, s = f"r{insn.dst_reg}", _src(insn, w)
    op = {"add": "+", "sub": "-", "mul": "*"}[insn.spec.sem]
    f.line(f"{d} = ({_left(f, insn)} {op} {s}) & {M64 if w == 64 else M32}")


def _alu_bit(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d, s = f"r{insn.dst_reg}", _src(insn, w)
    op = _BITOPS[insn.spec.sem]
    if w == 64:
        left = _left(f, insn)
        f.line(f"{d} {op}= {s}" if left == d else f"{d} = {left} {op} {s}")
    elif op == "&" and _is_imm(insn):
        f.line(f"{d} &= {s}")
    else:
        f.line(f"{d} = ({d} {op} {s}) & {M32}")


def _alu_div(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d, s = f"r{insn.dst_reg}", _src(insn, w)
    mod = insn.spec.sem == "mod"
    dl = d if w == 64 else f"({d} & {M32})"
    if _is_imm(insn):
        if s == "0":
            f.line(f"{d} = {dl}" if mod else f"{d} = 0")
        else:
            f.line(f"{d} = {dl} {'%' if mod else '//'} {s}")
        return
    sl = s if w == 64 else f"({s} & {M32})"
    if mod:
        f.line(f"{d} = {dl} % {sl} if {sl} else {dl}")
    else:
        f.line(f"{d} = {dl} // {sl} if {sl} else 0")


def _alu_sdiv(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d, s = f"r{insn.dst_reg}", _src(insn, w)
    f.line(f"{d} = {insn.spec.sem.upper()}{w}({d}, {s})")


def _alu_shift(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d = f"r{insn.dst_reg}"
    amount = str(insn.imm & (w - 1)) if _is_imm(insn) else f"(r{insn.src_reg} & {w - 1})"
    mask = M64 if w == 64 else M32
    sem = insn.spec.sem
    left = _left(f, insn)
    if sem == "lsh":
        f.line(f"{d} = ({left} << {amount}) & {mask}")
    elif sem == "rsh":
        f.line(f"{d} = {left} >> {amount}" if w == 64 else f"{d} = ({d} & {M32}) >> {amount}")
    else:
        sign = 1 << (w - 1)
        low = left if w == 64 else f"({d} & {M32})"
        f.line(f"{d} = ((({low} ^ {sign}) - {sign}) >> {amount}) & {mask}")


def _alu_neg(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    d = f"r{insn.dst_reg}"
    f.line(f"{d} = -{d} & {M64 if insn.spec.width == 64 else M32}")


def _alu_mov(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d, s = f"r{insn.dst_reg}", _src(insn, w)
    if w == 32 and not _is_imm(insn):
        s = f"{s} & {M32}"
    f.line(f"{d} = {s}")


def _alu_movsx(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    ext, w = insn.spec.ext, insn.spec.width
    sign = 1 << (ext - 1)
    d, s = f"r{insn.dst_reg}", f"r{insn.src_reg}"
    f.line(f"{d} = ((({s} & {(1 << ext) - 1}) ^ {sign}) - {sign}) & {M64 if w == 64 else M32}")


def _end(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    d = f"r{insn.dst_reg}"
    if insn.spec.sem == "le":
        if w < 64:
            f.line(f"{d} &= {(1 << w) - 1}")
        return
    nbytes = w // 8
    low = d if w == 64 else f"({d} & {(1 << w) - 1})"
    f.line(f"{d} = int.from_bytes({low}.to_bytes({nbytes}, 'little'), 'big')")


# ---- jumps (the handler returns the condition) -----------------------------------------------


def _jmp(g: Generator, f: _Fn, pc: int, insn: Instruction) -> str:
    w = insn.spec.width
    sem = insn.spec.sem
    d = f"r{insn.dst_reg}" if w == 64 else f"(r{insn.dst_reg} & {M32})"
    imm = _is_imm(insn)
    s = _src(insn, w)
    if w == 32 and not imm:
        s = f"({s} & {M32})"
    if sem == "jset":
        return f"{d} & {s}"
    if sem in _CMP:
        return f"{d} {_CMP[sem]} {s}"
    sign = 1 << (w - 1)
    rhs = str(int(s) ^ sign) if imm else f"({s} ^ {sign})"
    return f"({d} ^ {sign}) {_SCMP[sem]} {rhs}"


def _no_code(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    """ja and exit: the block structure emits them."""


# ---- 64-bit immediate loads ----------------------------------------------------------------


def _lddw(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    f.line(f"r{insn.dst_reg} = {insn.imm64}")


def _lddw_func(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    f.line(f"r{insn.dst_reg} = {func_pointer(pc + 1 + insn.imm)}")


def _lddw_resolved(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    f.line(f"r{insn.dst_reg} = C{pc}")
    g.constants.add(pc)


# ---- memory ---------------------------------------------------------------------------------


def _mem_base(insn: Instruction) -> int | None:
    """The register a load, store or atomic addresses memory through (None: not one)."""
    shape = insn.spec.shape
    if shape is Shape.LDX:
        return insn.src_reg
    if shape in (Shape.ST, Shape.STX, Shape.ATOMIC):
        return insn.dst_reg
    return None


def _checked(base: int, f: _Fn) -> bool:
    """Whether an access through ``base`` needs a run-time check (not a fixed-r10 one)."""
    return not (base == 10 and f.r10_fixed)


def _cache_names(kind: str) -> str:
    return ", ".join([f"{kind}lo", *(f"{kind}{size}" for size in CACHE_SIZES)])


# The region caches. A function that is not traced keeps, in locals, the bounds of the last
# region `RunState.check` accepted for a read (``qlo`` and ``q<size>`` = end - size) and for a
# write (``wlo``/``w<size>``); an access inside the cached region of its kind skips the check.
# ``lo <= a <= end - size`` is `Arena.find`'s containment test, and live regions never
# overlap, so on a hit `find` would return that same region. Skipping `check` is then exactly
# as strict as calling it because nothing its answer depends on can change before the cache
# is dropped:
# - the access kind: read and write caches are separate, and only a region accepted for a
#   write (so writable) enters ``w``;
# - the run's `regions` whitelist (fixed for the run), the region's kind and writability (a
#   `Region` is immutable): the stack area is never cached (`check` refuses kind "stack", so
#   other runs' stacks stay refused), nor is NULL (nothing below NULL_GUARD is allocated);
# - the region being live. The cache lives in one invocation and is dropped after every
#   helper, kfunc, bpf-to-bpf call and callx, so on this thread only the function's own BPF
#   code runs while it is used. Elsewhere, memory a running program can reach is released
#   with `Arena.defer_free`, which keeps it live until every epoch open at the time (this
#   run's, entered by `Interpreter.execute`) has exited: map values deleted, replaced or
#   evicted (maps/hash.py, maps/lpm.py), a test run's ctx and packet
#   (helpers/progtypes.py), the helper scratch buffer (helpers/context.py). `Arena.free` is
#   only for memory no running program can reach (its contract; in pybpf only
#   `run_program` and `Interpreter.close` call it, after the run). Should another thread
#   break that contract, a cached access still stays inside the Arena's mapping.
# New allocations never overlap a live region, so they cannot change an answer either.
# A traced function keeps no cache: tracing calls user code at every instruction.
def _address(g: Generator, f: _Fn, pc: int, base: int, off: int, size: int, write: bool) -> str:
    """Emit the bounds check of an access and return the address expression."""
    if not _checked(base, f):
        if off >= -STACK_SIZE and off + size <= 0:
            return f"r10 - {-off}"
        # Off the frame pointer but outside the frame: a stack overflow, whatever lies there.
        f.line(f"rs.fault(r10 + {off}, {size}, {int(write)}, {pc})")
        return f"r10 + {off}"
    f.dynamic_mem = True
    f.stack_sizes.add(size)
    a = f"r{base}"
    if off:
        a = "a"
        f.line(f"a = r{base} + {off}")
    stack = f"slo <= {a} <= s{size}"
    call = f"ck({a}, {size}, {int(write)}, {pc})"
    if not f.cached:
        f.line(f"if not {stack}: {call}")
        return a
    kind = "w" if write else "q"
    region = f"{kind}lo <= {a} <= {kind}{size}"
    # Which range is tried first only decides speed: a pointer derived from r10 usually
    # stays in the stack, any other one in a packet or map value.
    first, second = (stack, region) if pc in f.stack_based else (region, stack)
    f.line(f"if not ({first} or {second}): {_cache_names(kind)} = {call}")
    return a


def _drop_caches(f: _Fn) -> None:
    """After a call: the callee may have run code that changed the region registry."""
    if f.cached:
        f.line(f"qlo = wlo = {_NO_REGION}")


def _load(size: int, signed: bool, addr: str) -> str:
    if size == 1 and not signed:
        return f"VIEW[{addr}]"
    name = f"{'S' if signed else 'U'}{size}"
    value = f"{name}(VIEW, {addr})[0]"
    return f"{value} & {M64}" if signed else value


def _store(f: _Fn, size: int, addr: str, value: str) -> None:
    if size == 1:
        f.line(f"VIEW[{addr}] = {value}")
    else:
        f.line(f"P{size}(VIEW, {addr}, {value})")


def _ldx(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    size = _SIZES[insn.spec.width]
    addr = _address(g, f, pc, insn.src_reg, insn.offset, size, False)
    f.line(f"r{insn.dst_reg} = {_load(size, insn.spec.sem == 'ldxs', addr)}")


def _st(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    size = _SIZES[insn.spec.width]
    addr = _address(g, f, pc, insn.dst_reg, insn.offset, size, True)
    _store(f, size, addr, str(insn.imm & ((1 << insn.spec.width) - 1)))


def _stx(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    size = _SIZES[insn.spec.width]
    addr = _address(g, f, pc, insn.dst_reg, insn.offset, size, True)
    value = f"r{insn.src_reg}"
    _store(f, size, addr, value if size == 8 else f"{value} & {(1 << insn.spec.width) - 1}")


def _atomic(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    w = insn.spec.width
    size = _SIZES[w]
    mask = M64 if w == 64 else M32
    addr = _address(g, f, pc, insn.dst_reg, insn.offset, size, True)
    sem = insn.spec.sem.removeprefix("atomic_")
    s = f"r{insn.src_reg}"
    f.line("with ALOCK:")
    f.indent += 1
    f.line(f"t = U{size}(VIEW, {addr})[0]")
    if sem == "cmpxchg":
        r0 = "r0" if w == 64 else f"(r0 & {M32})"
        f.line(f"if t == {r0}: P{size}(VIEW, {addr}, {s} & {mask})")
    elif sem == "xchg":
        f.line(f"P{size}(VIEW, {addr}, {s} & {mask})")
    else:
        op = _ATOMIC_OPS[sem.removeprefix("fetch_")]
        f.line(f"P{size}(VIEW, {addr}, (t {op} {s}) & {mask})")
    f.indent -= 1
    if sem == "cmpxchg":
        f.line("r0 = t")
    elif sem == "xchg" or sem.startswith("fetch_"):
        f.line(f"{s} = t")


def _ld_packet(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    size = _SIZES[insn.spec.width]
    off = str(insn.imm) if insn.spec.sem == "ld_abs" else f"r{insn.src_reg} + {insn.imm}"
    f.line(f"r0 = rs.load_packet({off}, {size}, {pc})")
    # n already counts the whole block; the instructions after this one never run.
    f.line(f"if r0 < 0: rs.abort(n - {f.rest})")


# ---- calls ----------------------------------------------------------------------------------

_ARGS = "r1, r2, r3, r4, r5"


def _local_call(f: _Fn, pc: int, callee: str) -> None:
    f.calls = True
    f.line(f"if fp < fmin: rs.too_deep({pc})")
    f.line(f"r0, n = {callee}({_ARGS}, fp - {STACK_SIZE}, st, n, lim, rs)")
    _drop_caches(f)


class ReplaceFrame(Exception):
    """Raised by a helper to replace the frame of the BPF function calling it (what
    bpf_tail_call does inside a subprogram): that function ends at once and returns what
    ``run()`` gives, ``(r0, instructions executed)``. Only functions other than the
    program's main one catch it; in the main function it ends the whole execution, and the
    runtime that raised it replaces the program."""

    def __init__(self, run: Callable[[], tuple[int, int]]) -> None:
        super().__init__("frame replaced")
        self.run = run


def _helper_call(f: _Fn, call: str) -> None:
    """``r0 = call``, after telling the run where the caller's frame is (helpers that call
    back into the program, such as bpf_loop, put the callback's frame below it)."""
    f.line("rs.fp = fp")
    if f.main:
        f.line(f"r0 = {call} & {M64}")
    else:
        # try costs nothing on the path without an exception (Python 3.11+).
        f.line("try:")
        f.line(f"    r0 = {call} & {M64}")
        f.line("except ReplaceFrame as j:")
        f.line("    r0, k = j.run()")
        # n already counts the whole block; the instructions after the call never run.
        f.line(f"    return r0 & {M64}, n - {f.rest} + k")
    _drop_caches(f)


def _call_helper(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    g.helpers.add(insn.imm)
    _helper_call(f, f"H{insn.imm}({_ARGS})")


def _call_kfunc(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    g.kfuncs.add(insn.imm)
    f.line("rs.fp = fp")
    f.line(f"r0 = K{insn.imm}({_ARGS}) & {M64}")
    _drop_caches(f)


def _call_local(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    target = jump_target(pc, insn)
    if target is None or g.cfg.function_at(target) is None:
        f.line(f"rs.trap({pc}, 'call to pc {target}, which starts no instruction')")
        return
    _local_call(f, pc, func_name(target))


def _callx(g: Generator, f: _Fn, pc: int, insn: Instruction) -> None:
    f.line(f"t = FUNCS.get(r{insn.dst_reg})")
    f.line("if t is None:")
    f.indent += 1
    _helper_call(f, f"rs.helper({pc}, r{insn.dst_reg})({_ARGS})")
    f.indent -= 1
    f.line("else:")
    f.indent += 1
    _local_call(f, pc, "t")
    f.indent -= 1


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(("add", "sub", "mul"), _alu_arith),
    **dict.fromkeys(("or", "and", "xor"), _alu_bit),
    **dict.fromkeys(("div", "mod"), _alu_div),
    **dict.fromkeys(("sdiv", "smod"), _alu_sdiv),
    **dict.fromkeys(("lsh", "rsh", "arsh"), _alu_shift),
    "neg": _alu_neg,
    "mov": _alu_mov,
    "movsx": _alu_movsx,
    **dict.fromkeys(("le", "be", "bswap"), _end),
    **dict.fromkeys((*_CMP, *_SCMP, "jset"), _jmp),
    **dict.fromkeys(("ja", "exit"), _no_code),
    "lddw": _lddw,
    "lddw_func": _lddw_func,
    **dict.fromkeys(
        (
            "lddw_map_fd",
            "lddw_map_value",
            "lddw_btf_id",
            "lddw_map_idx",
            "lddw_map_idx_value",
        ),
        _lddw_resolved,
    ),
    "ldx": _ldx,
    "ldxs": _ldx,
    "st": _st,
    "stx": _stx,
    **dict.fromkeys(
        (
            "atomic_add",
            "atomic_or",
            "atomic_and",
            "atomic_xor",
            "atomic_fetch_add",
            "atomic_fetch_or",
            "atomic_fetch_and",
            "atomic_fetch_xor",
            "atomic_xchg",
            "atomic_cmpxchg",
        ),
        _atomic,
    ),
    **dict.fromkeys(("ld_abs", "ld_ind"), _ld_packet),
    "call_helper": _call_helper,
    "call_kfunc": _call_kfunc,
    "call_local": _call_local,
    "callx": _callx,
}


# ---- structure ------------------------------------------------------------------------------


_DST_WRITERS = frozenset(
    {Shape.ALU_IMM, Shape.ALU_REG, Shape.UNARY, Shape.END, Shape.LDDW, Shape.LDX}
)
_R0_WRITERS = frozenset({Shape.CALL, Shape.KFUNC_CALL, Shape.CALLX, Shape.LD_ABS, Shape.LD_IND})


def _writes(insn: Instruction) -> int | None:
    """The register an instruction writes besides memory, if any (r0 for calls)."""
    spec = insn.spec
    if spec.shape in _DST_WRITERS:
        return insn.dst_reg
    if spec.shape in _R0_WRITERS or spec.sem == "atomic_cmpxchg":
        return 0
    if spec.sem == "atomic_xchg" or spec.sem.startswith("atomic_fetch_"):
        return insn.src_reg
    return None


_CALL_CLOBBERS = 0b111111  # r0-r5


def _stack_bases(fn: Function) -> frozenset[int]:
    """The pcs of loads and stores whose base register may hold r10 plus something: a
    forward may-analysis (copies and 64-bit add/sub keep the property, calls clobber r0-r5,
    any other write clears it). A guess for ordering checks, never for safety."""
    state: dict[int, int] = {fn.entry: 1 << 10}
    found: set[int] = set()
    changed = True
    while changed:
        changed = False
        for start, block in fn.blocks.items():
            regs = state.get(start)
            if regs is None:
                continue
            for pc, insn in block.insns:
                spec = insn.spec
                base = _mem_base(insn)
                if base is not None and regs >> base & 1:
                    found.add(pc)
                dst = _writes(insn)
                if spec.shape in (Shape.CALL, Shape.KFUNC_CALL, Shape.CALLX):
                    regs &= ~_CALL_CLOBBERS
                elif dst is None:
                    continue
                elif spec.width == 64 and spec.shape is Shape.ALU_REG and spec.sem == "mov":
                    regs = regs & ~(1 << dst) | (regs >> insn.src_reg & 1) << dst
                elif spec.width == 64 and spec.sem in ("add", "sub"):
                    if spec.shape is Shape.ALU_REG and spec.sem == "add":
                        regs |= (regs >> insn.src_reg & 1) << dst
                else:
                    regs &= ~(1 << dst)
            for target in block.succs:
                if target in fn.blocks:
                    old = state.get(target, 0)
                    if old | regs != old or target not in state:
                        state[target] = old | regs
                        changed = True
    return frozenset(found)


@dataclass
class _Node:
    """A loop interval over block indices [lo, hi] (or the whole function when ``top``)."""

    lo: int
    hi: int
    top: bool = False
    children: list[_Node] = field(default_factory=list)
    parent: _Node | None = None
    header_free: bool = False  # the first block needs no guard


def _laminar(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge partially overlapping intervals until every two are disjoint or nested."""
    merged = sorted(set(intervals))
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int]] = []
        for lo, hi in merged:
            for i, (olo, ohi) in enumerate(out):
                if olo < lo <= ohi < hi or lo < olo <= hi < ohi:
                    out[i] = (min(lo, olo), max(hi, ohi))
                    changed = True
                    break
            else:
                out.append((lo, hi))
        merged = sorted(set(out))
    return merged


class Generator:
    """Builds the Python source of a whole program."""

    def __init__(self, cfg: ProgramCfg, *, traced: bool) -> None:
        self.cfg = cfg
        self.traced = traced
        self.helpers: set[int] = set()
        self.kfuncs: set[int] = set()
        self.constants: set[int] = set()

    def source(self) -> str:
        parts = [self._function(fn, fn is self.cfg.functions[0]) for fn in self.cfg.functions]
        return "\n\n".join(parts) + "\n"

    # -- one function --

    def _function(self, fn: Function, main: bool) -> str:
        f = _Fn(fn, main, self.traced)
        insns = [insn for b in fn.blocks.values() for _, insn in b.insns]
        f.r10_fixed = all(_writes(insn) != 10 for insn in insns)
        f.cached = not self.traced and any(
            (base := _mem_base(insn)) is not None and _checked(base, f) for insn in insns
        )
        if f.cached:
            f.stack_based = _stack_bases(fn)
        order = list(fn.blocks)
        self._order = order
        self._index = {start: i for i, start in enumerate(order)}
        self._back_targets = {t for _, t in fn.back_edges()}
        self._preds = fn.preds()
        self._fn = fn
        top = self._tree(fn, order)
        self._node_of = self._innermost(top, len(order))
        self._emit_items(f, top, top.lo, top.hi)
        head = [
            f"def {func_name(fn.entry)}(r1, r2, r3, r4, r5, fp, st, n, lim, rs):",
            "    r0 = r6 = r7 = r8 = r9 = 0",
            "    r10 = fp",
            f"    b = {fn.entry}",
        ]
        if f.dynamic_mem:
            head.append(f"    slo = fp - {STACK_SIZE}")
            head += [f"    s{size} = st - {size}" for size in sorted(f.stack_sizes)]
            head.append("    ck = rs.check")
        if f.cached:
            head.append(f"    qlo = wlo = {_NO_REGION}")
        if f.calls:
            head.append(f"    fmin = st - {(MAX_CALL_FRAMES - 2) * STACK_SIZE}")
        if self.traced:
            head.append("    tr = rs.trace")
        return "\n".join(head + f.lines)

    def _tree(self, fn: Function, order: list[int]) -> _Node:
        idx = self._index
        intervals = [(idx[t], idx[s]) for s, t in fn.back_edges()]
        top = _Node(0, len(order) - 1, top=True)
        for lo, hi in sorted(_laminar(intervals), key=lambda iv: (iv[0], -iv[1])):
            parent = top
            depth = 0
            while True:
                inner = next((c for c in parent.children if c.lo <= lo and hi <= c.hi), None)
                if inner is None:
                    break
                parent = inner
                depth += 1
            if depth < MAX_LOOP_NESTING:
                node = _Node(lo, hi, parent=parent)
                parent.children.append(node)
        self._set_header_free(top)
        return top

    def _set_header_free(self, node: _Node) -> None:
        for child in node.children:
            self._set_header_free(child)
        if node.top:
            return
        order = self._order
        lo_pc, hi_pc = order[node.lo], order[node.hi]
        header = lo_pc
        free = all(child.lo != node.lo for child in node.children)
        for start, block in self._fn.blocks.items():
            inside = lo_pc <= start <= hi_pc
            for t in block.succs:
                if t == header or not lo_pc <= t <= hi_pc or t not in self._fn.blocks:
                    continue
                if not (inside and t > start):
                    free = False
        node.header_free = free

    def _innermost(self, top: _Node, count: int) -> list[_Node]:
        nodes = [top] * count

        def walk(node: _Node) -> None:
            for i in range(node.lo, node.hi + 1):
                nodes[i] = node
            for child in node.children:
                walk(child)

        walk(top)
        return nodes

    # -- sequences, loops and blocks --

    def _emit_items(self, f: _Fn, node: _Node, lo: int, hi: int) -> None:
        i = lo
        children = {c.lo: c for c in node.children}
        while i <= hi:
            child = children.get(i)
            if child is not None:
                self._emit_loop(f, child, node)
                i = child.hi + 1
                continue
            if not self._inlined(i):
                first = not node.top and i == node.lo and node.header_free
                i = self._emit_block(f, i, guard=not first)
            else:
                i += 1

    def _emit_loop(self, f: _Fn, node: _Node, parent: _Node) -> None:
        order = self._order
        lo_pc, hi_pc = order[node.lo], order[node.hi]
        f.line(f"if b == {lo_pc}:" if lo_pc == hi_pc else f"if {lo_pc} <= b <= {hi_pc}:")
        f.indent += 1
        f.line("while True:")
        f.indent += 1
        self._emit_items(f, node, node.lo, node.hi)
        f.indent -= 1
        if not parent.top:
            p_lo, p_hi = order[parent.lo], order[parent.hi]
            leaves = any(
                t in self._fn.blocks and not p_lo <= t <= p_hi
                for start in order[node.lo : node.hi + 1]
                for t in self._fn.blocks[start].succs
            )
            if leaves:
                f.line(f"if not {p_lo} <= b <= {p_hi}: break")
        f.indent -= 1

    def _inlined(self, i: int) -> bool:
        """Whether block ``i`` is emitted inside its predecessor's code (no guard)."""
        if i == 0:
            return False
        order = self._order
        start = order[i]
        node = self._node_of[i]
        if not node.top and node.lo == i:
            return False
        prev = self._fn.blocks[order[i - 1]]
        if self._preds[start] != [prev.start] or prev.end != start:
            return False
        if self._node_of[i - 1] is not node:
            return False
        if prev.kind is End.FALL:
            return True
        if prev.kind is End.COND and prev.succs[1] == start and prev.succs[0] != start:
            return self._action(prev.start, prev.succs[0])[0] != "seq"
        return False

    def _action(self, source: int, target: int) -> tuple[str, str]:
        """How the edge source -> target is taken: (kind, statement)."""
        fn = self._fn
        if target not in fn.blocks:
            if fn.entry <= target < fn.end and target in self.cfg.insns:
                return "trap", f"rs.trap({source}, 'unreachable block {target}')"
            what = "the end of the function" if target == fn.end else f"pc {target}"
            return "trap", (
                f"rs.trap({self._fn.blocks[source].last_pc}, "
                f"'control leaves the function for {what}')"
            )
        node = self._node_of[self._index[source]]
        order = self._order
        lo_pc, hi_pc = order[node.lo], order[node.hi]
        if not lo_pc <= target <= hi_pc:
            return "break", f"b = {target}; break"
        if target > source:
            return "seq", f"b = {target}"
        if target == lo_pc and node.header_free:
            return "cont", "continue"
        return "cont", f"b = {target}; continue"

    def _emit_block(self, f: _Fn, i: int, *, guard: bool) -> int:
        """Emit block ``i`` (and the blocks inlined after it); return the next index."""
        block = self._fn.blocks[self._order[i]]
        if guard:
            f.line(f"if b == {block.start}:")
            f.indent += 1
        base_indent = f.indent
        while True:
            self._emit_body(f, block)
            nxt = i + 1
            if nxt < len(self._order) and self._inlined(nxt):
                i = nxt
                block = self._fn.blocks[self._order[i]]
                continue
            break
        f.indent = base_indent - (1 if guard else 0)
        return i + 1

    def _emit_body(self, f: _Fn, block: Block) -> None:
        count = len(block.insns)
        f.line(f"n += {count}")
        if block.start in self._back_targets:
            f.line(f"if n > lim: rs.exhaust({block.start})")
        cond = ""
        for k, (pc, insn) in enumerate(block.insns):
            f.rest = count - k - 1
            if self.traced:
                f.line(f"tr({pc}, INSNS[{pc}], [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10])")
            elif (
                insn.spec.sem == "mov"
                and insn.spec.width == 64
                and insn.spec.shape is Shape.ALU_REG
                and f.rest
                and _fuses(insn, block.insns[k + 1][1])
            ):
                f.left = f"r{insn.src_reg}"
                continue
            cond = HANDLERS[insn.spec.sem](self, f, pc, insn) or ""
        last = block.last_pc
        if block.kind is End.EXIT:
            if f.main:
                f.line(f"if n > lim: rs.exhaust({last})")
            f.line("return r0, n")
            return
        if block.kind is End.COND:
            taken_kind, taken = self._action(block.start, block.succs[0])
            fall_target = block.succs[1]
            nxt = self._index.get(fall_target)
            if nxt is not None and nxt == self._index[block.start] + 1 and self._inlined(nxt):
                f.line(f"if {cond}: {taken}")
                return
            fall_kind, fall = self._action(block.start, fall_target)
            if taken_kind != "seq":
                f.line(f"if {cond}: {taken}")
                f.line(fall)
            elif fall_kind != "seq":
                f.line(f"if not ({cond}): {fall}")
                f.line(taken)
            else:
                f.line(f"b = {block.succs[0]} if {cond} else {fall_target}")
            return
        target = block.succs[0]
        if block.kind is End.FALL:
            nxt = self._index.get(target)
            if nxt is not None and nxt == self._index[block.start] + 1 and self._inlined(nxt):
                return
        f.line(self._action(block.start, target)[1])


def generate(cfg: ProgramCfg, *, traced: bool = False) -> tuple[str, Generator]:
    """The Python source of ``cfg`` and the generator (which names the globals it needs:
    ``helpers``, ``kfuncs``, ``constants``)."""
    gen = Generator(cfg, traced=traced)
    return gen.source(), gen

"""Where a program touches its context: a static scan standing in for the verifier's ctx facts.

Place in the pipeline: run on a linked program (subprograms appended) before it is prepared.
The kernel learns two things about context accesses while verifying: the furthest byte any
access reaches (``prog->aux->max_ctx_offset``, which BPF_PROG_TEST_RUN of syscall and
raw_tracepoint programs compares with the user's ctx size) and which loads and stores go
through the ctx pointer, which ``convert_ctx_access`` rewrites to the kernel's own fields
(``__sk_buff.tc_classid`` is a u16 in the qdisc cb, so a u32 store keeps 16 bits).
pybpf has no verifier yet, so :func:`ctx_accesses` finds them by a forward data-flow scan:
the ctx pointer is r1 at the program's entry and follows register copies, constant
additions, 8-byte stack spills and fills through r10, and bpf-to-bpf calls (r1-r5 of the
call site); a helper or kfunc call clobbers r0-r5. Limitations, all of them places where
the kernel verifier knows more: a ctx pointer passed through memory other than the stack
slot it was spilled to, a callback given the ctx, or a helper reading the ctx as memory is
not seen; a pointer the scan believes to be ctx on only some paths counts as ctx (the
kernel refuses an instruction used with the ctx and another pointer, so for programs it
accepts the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pybpf.isa import Instruction
from pybpf.isa.cfg import Function, build_cfg
from pybpf.isa.opcodes import Shape

_MEM_SHAPES = frozenset({Shape.LDX, Shape.ST, Shape.STX, Shape.ATOMIC})
_FP = 10

# A register file (index -> ctx offset it holds) and spilled ctx pointers (stack offset ->
# ctx offset); absent means "not the ctx".
_State = tuple[dict[int, int], dict[int, int]]


@dataclass(frozen=True, slots=True)
class CtxAccess:
    """One load or store through the ctx pointer: ctx bytes ``[offset, offset + size)``."""

    offset: int
    size: int
    write: bool


def _merge(into: _State, other: _State) -> bool:
    """Add ``other``'s facts to ``into`` (a conflict forgets the fact); True if it changed."""
    changed = False
    for mine, theirs in zip(into, other, strict=True):
        for key, value in theirs.items():
            if key not in mine:
                mine[key] = value
                changed = True
        for key in [k for k, v in mine.items() if k in theirs and theirs[k] != v]:
            del mine[key]
            changed = True
    return changed


def _transfer(
    pc: int,
    insn: Instruction,
    regs: dict[int, int],
    stack: dict[int, int],
    found: dict[int, CtxAccess],
) -> dict[int, int] | None:
    """Apply one instruction; record a ctx access in ``found``. Returns the r1-r5 facts a
    bpf-to-bpf call passes to its callee (None for other instructions)."""
    spec = insn.spec
    shape, dst, src = spec.shape, insn.dst_reg, insn.src_reg
    if shape in _MEM_SHAPES:
        base = src if shape is Shape.LDX else dst
        size = spec.width // 8
        if base in regs:
            found[pc] = CtxAccess(regs[base] + insn.offset, size, shape is not Shape.LDX)
        if base == _FP and shape is not Shape.LDX:
            lo = insn.offset
            for slot in [s for s in stack if s < lo + size and lo < s + 8]:
                del stack[slot]
            if shape is Shape.STX and size == 8 and src in regs:
                stack[lo] = regs[src]
        if shape is Shape.LDX:
            regs.pop(dst, None)
            if src == _FP and size == 8 and insn.offset in stack:
                regs[dst] = stack[insn.offset]
        elif shape is Shape.ATOMIC:
            regs.pop(src, None)  # the fetching forms load into src, cmpxchg into r0
            regs.pop(0, None)
        return None
    if shape in (Shape.CALL, Shape.KFUNC_CALL, Shape.CALLX):
        passed = {r: off for r, off in regs.items() if 1 <= r <= 5}
        for r in range(6):
            regs.pop(r, None)
        return passed if spec.sem == "call_local" else None
    if shape in (Shape.ALU_IMM, Shape.ALU_REG, Shape.UNARY, Shape.END, Shape.LDDW):
        moved = regs.get(src) if spec.sem == "mov" and spec.width == 64 else None
        if shape is Shape.ALU_REG and moved is not None:
            regs[dst] = moved
        elif (
            shape is Shape.ALU_IMM
            and spec.width == 64
            and dst in regs
            and spec.sem
            in (
                "add",
                "sub",
            )
        ):
            regs[dst] += insn.imm if spec.sem == "add" else -insn.imm
        else:
            regs.pop(dst, None)
    elif shape in (Shape.LD_ABS, Shape.LD_IND):
        for r in range(6):
            regs.pop(r, None)
    return None


def _scan_function(
    fn: Function, entry: _State, found: dict[int, CtxAccess], calls: dict[int, dict[int, int]]
) -> None:
    states: dict[int, _State] = {fn.entry: ({**entry[0]}, {**entry[1]})}
    work = [fn.entry]
    while work:
        start = work.pop()
        regs, stack = ({**states[start][0]}, {**states[start][1]})
        block = fn.blocks[start]
        for pc, insn in block.insns:
            passed = _transfer(pc, insn, regs, stack, found)
            if passed is not None:
                target = pc + 1 + insn.imm
                calls[target] = {**calls.get(target, {}), **passed}
        for succ in block.succs:
            if succ not in fn.blocks:
                continue
            if succ not in states:
                states[succ] = ({**regs}, {**stack})
                work.append(succ)
            elif _merge(states[succ], (regs, stack)):
                work.append(succ)


def ctx_accesses(insns: Sequence[Instruction]) -> dict[int, CtxAccess]:
    """pc -> the ctx access at that pc, for every load/store the scan sees through the ctx."""
    if not insns:
        return {}
    cfg = build_cfg(insns)
    found: dict[int, CtxAccess] = {}
    calls: dict[int, dict[int, int]] = {}
    entries: dict[int, dict[int, int]] = {0: {1: 0}}
    while True:
        for fn in cfg.functions:
            if fn.entry in entries and fn.entry in fn.blocks:
                _scan_function(fn, (entries[fn.entry], {}), found, calls)
        grown = {e: {**entries.get(e, {}), **facts} for e, facts in calls.items()}
        if all(entries.get(e) == facts for e, facts in grown.items()):
            return found
        entries.update(grown)


def max_ctx_offset(insns: Sequence[Instruction]) -> int:
    """The end of the furthest ctx byte the program accesses (0 when it never does)."""
    return max((a.offset + a.size for a in ctx_accesses(insns).values()), default=0)

"""Functions, basic blocks and control-flow edges of a decoded program (pure data).

Place in the pipeline: built from `Instruction` lists (the output of the decoder or the
linker); consumed by the interpreter's code generator, and meant for the verifier and the JIT.

A program is split into functions at its entry (pc 0) and at every target of a bpf-to-bpf
call or of a function-pointer load (``lddw.func``); each function spans the slots up to the
next function's entry, as the kernel lays subprograms out. Inside a function, a block starts
at the entry, at every jump target and after every jump or exit; calls do not end blocks
(they return). Edges are kept even when they lead nowhere valid (out of the function, into
the second slot of an lddw): the consumer decides what such an edge means (the verifier
rejects it, the interpreter traps when it is taken).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pybpf.isa.instruction import Instruction, with_pcs
from pybpf.isa.opcodes import Shape

_COND_SHAPES = frozenset({Shape.JMP_IMM, Shape.JMP_REG})


class End(StrEnum):
    """How a block ends."""

    FALL = "fall"  # runs into the next block (which starts at a jump target)
    JUMP = "jump"  # unconditional jump (ja, gotol)
    COND = "cond"  # conditional jump: succs = (taken, fallthrough)
    EXIT = "exit"  # exit: returns from the function


@dataclass(frozen=True, slots=True)
class Block:
    """A maximal straight-line run of instructions. ``end`` is the pc after the last slot;
    ``succs`` are target pcs (for COND: the taken target first, then the fallthrough)."""

    start: int
    end: int
    insns: tuple[tuple[int, Instruction], ...]
    kind: End
    succs: tuple[int, ...]

    @property
    def last_pc(self) -> int:
        return self.insns[-1][0]


@dataclass(frozen=True, slots=True)
class Function:
    """One BPF function: the slots ``[entry, end)`` and the blocks reachable from ``entry``,
    keyed and ordered by their start pc."""

    entry: int
    end: int
    blocks: dict[int, Block]

    def valid_target(self, pc: int) -> bool:
        """Whether ``pc`` starts a block of this function (a jump there is well-formed)."""
        return pc in self.blocks

    def preds(self) -> dict[int, list[int]]:
        """Block start -> starts of the blocks with an edge to it (in pc order)."""
        preds: dict[int, list[int]] = {start: [] for start in self.blocks}
        for start, block in self.blocks.items():
            for target in block.succs:
                if target in preds:
                    preds[target].append(start)
        return preds

    def back_edges(self) -> list[tuple[int, int]]:
        """Edges (source block start, target block start) that do not go forward in pc
        order. Every cycle contains one, so counting at their targets bounds any loop."""
        return [
            (start, target)
            for start, block in self.blocks.items()
            for target in block.succs
            if target in self.blocks and target <= start
        ]


@dataclass(frozen=True, slots=True)
class ProgramCfg:
    """The functions of a program (the main one first), and its instructions by pc."""

    insns: dict[int, Instruction]
    nslots: int
    functions: tuple[Function, ...]

    def function_at(self, entry: int) -> Function | None:
        for fn in self.functions:
            if fn.entry == entry:
                return fn
        return None


def jump_target(pc: int, insn: Instruction) -> int | None:
    """The pc a jump, a local call or a function-pointer load refers to, else None."""
    spec = insn.spec
    if spec.shape is Shape.JA32:
        return pc + 1 + insn.imm
    if spec.shape in (Shape.JA, *_COND_SHAPES):
        return pc + 1 + insn.offset
    if spec.sem in ("call_local", "lddw_func"):
        return pc + 1 + insn.imm
    return None


def _branch_target(pc: int, insn: Instruction) -> int:
    if insn.spec.shape is Shape.JA32:
        return pc + 1 + insn.imm
    return pc + 1 + insn.offset


def function_entries(insns: dict[int, Instruction]) -> list[int]:
    """pc 0 and every valid target of a local call or of ``lddw.func``, sorted."""
    entries = {0}
    for pc, insn in insns.items():
        if insn.spec.sem in ("call_local", "lddw_func"):
            target = jump_target(pc, insn)
            if target in insns:
                entries.add(target)
    return sorted(entries)


def _blocks(insns: dict[int, Instruction], entry: int, end: int) -> dict[int, Block]:
    pcs = [pc for pc in insns if entry <= pc < end]
    leaders = {entry}
    for pc in pcs:
        insn = insns[pc]
        shape = insn.spec.shape
        if shape in (Shape.JA, Shape.JA32, Shape.EXIT, *_COND_SHAPES):
            leaders.add(pc + insn.slots)
            target = jump_target(pc, insn)
            if target is not None and entry <= target < end and target in insns:
                leaders.add(target)
    blocks: dict[int, Block] = {}
    todo = [entry]
    while todo:
        start = todo.pop()
        if start in blocks or start not in insns or not entry <= start < end:
            continue
        body: list[tuple[int, Instruction]] = []
        pc = start
        while True:
            insn = insns[pc]
            body.append((pc, insn))
            nxt = pc + insn.slots
            shape = insn.spec.shape
            if shape is Shape.EXIT:
                kind, succs = End.EXIT, ()
                break
            if shape in (Shape.JA, Shape.JA32):
                kind, succs = End.JUMP, (_branch_target(pc, insn),)
                break
            if shape in _COND_SHAPES:
                kind, succs = End.COND, (_branch_target(pc, insn), nxt)
                break
            if nxt in leaders or nxt not in insns or nxt >= end:
                kind, succs = End.FALL, (nxt,)
                break
            pc = nxt
        blocks[start] = Block(start, body[-1][0] + body[-1][1].slots, tuple(body), kind, succs)
        todo.extend(s for s in succs if s in leaders and s not in blocks)
    return dict(sorted(blocks.items()))


def build_cfg(insns: Sequence[Instruction]) -> ProgramCfg:
    """Split ``insns`` (validated by the decoder) into functions and basic blocks."""
    by_pc = dict(with_pcs(insns))
    nslots = sum(insn.slots for insn in insns)
    entries = function_entries(by_pc)
    bounds = [*entries[1:], nslots]
    functions = tuple(
        Function(entry, end, _blocks(by_pc, entry, end))
        for entry, end in zip(entries, bounds, strict=True)
    )
    return ProgramCfg(by_pc, nslots, functions)

"""The interpreter's region caches (generated code remembers the region its last checked read
and write were in) refuse exactly what `RunState.check` refuses: after a program has used a
packet or map-value-like region, an access to the unallocated bytes beside it, a write to a
read-only region it has read, an access straddling its end (into a free gap or into the next
live region), a region outside the run's whitelist, another run's stack, the stack below
the frame and NULL each still raise `MemoryAccessError` with the right pc/address/size/write.
Hypothesis compares random programs over a few regions traced (which checks every access) and
untraced."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.errors import MemoryAccessError
from pybpf.isa import Instruction
from pybpf.memory import Arena, Region
from pybpf.vm import Interpreter, RunState
from pybpf.vm.codegen import CACHE_SIZES, cache_bounds
from tests.test_vm_semantics import EXIT, ins, reg

Fault = tuple[int, int, int, bool]


@pytest.fixture(scope="module")
def arena() -> Iterator[Arena]:
    with Arena(1 << 24) as a:
        yield a


@dataclass
class Layout:
    """``value`` (12 bytes: 4 unallocated bytes follow it), ``packet`` (16 bytes, right
    after, read-only) and ``other`` (8 bytes, right after the packet)."""

    value: Region
    packet: Region
    other: Region


@pytest.fixture
def layout(arena: Arena) -> Iterator[Layout]:
    value = arena.alloc(12, kind="map_value")
    packet = arena.alloc(16, kind="packet", writable=False)
    other = arena.alloc(8, kind="map_value")
    assert arena.find(value.end, 1) is None
    assert (packet.start, other.start) == (value.start + 16, packet.end)
    yield Layout(value, packet, other)
    for r in (value, packet, other):
        arena.free(r)


def fault(
    arena: Arena, prog: Sequence[Instruction], *args: int, regions: Sequence[Region] | None = None
) -> Fault:
    """The fault of ``prog`` run untraced, after checking that the traced run agrees."""
    interp = Interpreter([*prog, EXIT], arena=arena)
    seen: list[Fault] = []
    try:
        for trace in (None, lambda pc, insn, r: None):
            with pytest.raises(MemoryAccessError) as e:
                interp.execute(*args, trace=trace, regions=regions)
            seen.append((e.value.pc, e.value.address, e.value.size, e.value.write))
    finally:
        interp.close()
    assert seen[0] == seen[1]
    return seen[0]


def test_cache_bounds_follow_the_sizes() -> None:
    assert cache_bounds(100, 200) == (100, *(200 - s for s in CACHE_SIZES))


def test_unallocated_bytes_after_a_cached_region(layout: Layout, arena: Arena) -> None:
    v = layout.value
    prog = [ins("ldxw", 0, 1), ins("ldxw", 0, 1, off=8), ins("ldxb", 0, 1, off=12)]
    assert fault(arena, prog, v.start) == (2, v.end, 1, False)
    prog = [ins("stw", 1, imm=1), ins("stw", 1, off=8, imm=1), ins("sth", 1, off=14, imm=1)]
    assert fault(arena, prog, v.start) == (2, v.start + 14, 2, True)


def test_write_after_read_of_a_read_only_region(layout: Layout, arena: Arena) -> None:
    p = layout.packet
    prog = [ins("ldxdw", 0, 1), ins("ldxdw", 0, 1, off=8), ins("stb", 1, off=3, imm=7)]
    assert fault(arena, prog, p.start) == (2, p.start + 3, 1, True)
    # a writable region in the write cache does not let a write into the packet through
    v = layout.value
    prog = [ins("stw", 2, imm=1), ins("ldxw", 0, 1), reg("stxw", 1, 0, off=4)]
    assert fault(arena, prog, p.start, v.start) == (2, p.start + 4, 4, True)
    atomic = ins("lock add", 1, 0, off=8)
    assert fault(arena, [ins("ldxdw", 0, 1), atomic], p.start) == (1, p.start + 8, 8, True)


@pytest.mark.parametrize(
    ("which", "size", "off", "write"),
    [
        ("value", 8, 8, False),  # into the free gap after the value
        ("value", 4, 10, True),
        ("packet", 2, 15, False),  # into the next live region
        ("packet", 8, 12, False),
        ("other", 4, 6, True),  # into whatever follows the last region
    ],
)
def test_across_the_end_of_a_cached_region(
    layout: Layout, arena: Arena, which: str, size: int, off: int, write: bool
) -> None:
    r: Region = getattr(layout, which)
    width = {1: "b", 2: "h", 4: "w", 8: "dw"}[size]
    first = ins("stb", 1, imm=1) if write else ins("ldxb", 0, 1)
    access = ins(f"st{width}", 1, off=off, imm=1) if write else ins(f"ldx{width}", 0, 1, off=off)
    assert fault(arena, [first, access], r.start) == (1, r.start + off, size, write)


def test_a_loop_faults_at_the_first_access_past_the_end(layout: Layout, arena: Arena) -> None:
    v = layout.value
    loop = [
        ins("mov", 0, imm=0),  # 0
        ins("ldxdw", 2, 1),  # 1: walks 8 bytes at a time, 4 apart: 0, 4, then 8 straddles
        reg("add", 0, 2),  # 2
        ins("add", 1, imm=4),  # 3
        ins("ja", off=-4),  # 4
    ]
    assert fault(arena, loop, v.start) == (1, v.start + 8, 8, False)


def test_whitelist_null_and_stacks_after_a_cached_region(layout: Layout, arena: Arena) -> None:
    v, p = layout.value, layout.packet
    prog = [ins("ldxw", 0, 1), ins("ldxw", 0, 2)]
    assert fault(arena, prog, v.start, p.start, regions=[v]) == (1, p.start, 4, False)
    prog = [ins("ldxw", 0, 1), ins("mov", 1, imm=0), ins("ldxw", 0, 1, off=8)]
    assert fault(arena, prog, v.start) == (2, 8, 4, False)
    other_stack = arena.alloc(64, kind="stack")
    try:
        prog = [ins("stw", 1, imm=1), ins("stw", 2, off=8, imm=1)]
        assert fault(arena, prog, v.start, other_stack.start) == (
            1,
            other_stack.start + 8,
            4,
            True,
        )
    finally:
        arena.free(other_stack)


def test_stack_below_the_frame_after_a_cached_region(layout: Layout, arena: Arena) -> None:
    v = layout.value
    prog = [
        ins("ldxw", 0, 1),  # 0
        reg("mov", 1, 10),  # 1
        ins("sub", 1, imm=520),  # 2
        ins("ldxw", 0, 1),  # 3
    ]
    interp = Interpreter([*prog, EXIT], arena=arena)
    regs: list[int] = []
    try:
        with pytest.raises(MemoryAccessError) as e:
            interp.execute(v.start, trace=lambda pc, insn, r: regs.__setitem__(slice(None), r))
        traced = (e.value.pc, e.value.address, e.value.size, e.value.write)
        assert traced == (3, regs[10] - 520, 4, False)
        with pytest.raises(MemoryAccessError) as e:
            interp.execute(v.start)
        assert (e.value.pc, e.value.address, e.value.size, e.value.write) == traced
    finally:
        interp.close()


def test_the_cache_is_dropped_after_a_helper_call(arena: Arena) -> None:
    """A helper that (against the Arena's contract) frees memory the program holds: the
    access after the call is checked again, as it was before there were caches."""
    gone = arena.alloc(8, kind="map_value")

    def free_it(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        arena.free(gone)
        return 0

    prog = [reg("mov", 6, 1), ins("ldxdw", 0, 6), ins("call", imm=1), ins("ldxdw", 0, 6), EXIT]
    interp = Interpreter(prog, arena=arena, helpers={1: free_it})
    try:
        with pytest.raises(MemoryAccessError) as e:
            interp.execute(gone.start)
        assert (e.value.pc, e.value.address, e.value.size, e.value.write) == (
            3,
            gone.start,
            8,
            False,
        )
    finally:
        interp.close()


def test_a_loop_over_a_region_checks_it_once(
    layout: Layout, arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = RunState.check

    def counting(self: RunState, address: int, size: int, write: int, pc: int) -> tuple[int, ...]:
        calls.append(pc)
        return real(self, address, size, write, pc)

    monkeypatch.setattr(RunState, "check", counting)
    p = layout.packet
    loop = [
        ins("mov", 0, imm=0),  # 0
        ins("mov", 3, imm=0),  # 1
        reg("mov", 4, 1),  # 2
        reg("add", 4, 3),  # 3
        ins("ldxb", 4, 4),  # 4
        reg("add", 0, 4),  # 5
        ins("add", 3, imm=1),  # 6
        ins("jlt", 3, off=-6, imm=16),  # 7
    ]
    arena.view[p.start : p.end] = bytes(range(16))
    interp = Interpreter([*loop, EXIT], arena=arena)
    try:
        assert interp.run(p.start) == sum(range(16))
        assert calls == [4]
    finally:
        interp.close()


# ---- traced (every access checked) vs untraced (cached), on random programs ----

_WIDTH = {1: "b", 2: "h", 4: "w", 8: "dw"}
# r1, r2, r3: the regions; r4: the stack frame; r6: a pointer the program moves around
_BASES = st.sampled_from([1, 2, 3, 4, 6])
_KINDS = ["load", "load", "load", "store", "storex", "atomic", "move", "step", "call"]


def _op(draw: st.DrawFn, sizes: tuple[int, int, int]) -> list[Instruction]:
    kind = draw(st.sampled_from(_KINDS))
    base, size = draw(_BASES), draw(st.sampled_from(sorted(_WIDTH)))
    if base == 2 and kind in ("store", "storex", "atomic") and draw(st.integers(0, 3)):
        kind = "load"  # a write to the read-only region ends the program: not too often
    # mostly inside a region (so that programs run on), else around its end or anywhere
    end = sizes[base - 1] if base <= 3 else 32
    inside = st.integers(0, max(end - size, 0))
    off = draw(inside | inside | st.integers(end - size - 2, end + 1) | st.integers(-12, 44))
    if kind == "load":
        return [ins(f"ldx{_WIDTH[size]}", 7, base, off=off), reg("add", 8, 7)]
    if kind == "store":
        return [ins(f"st{_WIDTH[size]}", base, off=off, imm=draw(st.integers(-128, 127)))]
    if kind == "storex":
        return [reg(f"stx{_WIDTH[size]}", base, 8, off=off)]
    if kind == "atomic":
        name = draw(st.sampled_from(["lock add", "lock fetch or32", "lock xchg", "lock add32"]))
        return [ins(name, base, 8, off=off)]
    if kind == "move":
        return [reg("mov", 6, draw(st.sampled_from([1, 2, 3, 4]))), ins("add", 6, imm=off)]
    if kind == "step":
        return [ins("add", 6, imm=draw(st.integers(-4, 8)))]
    return [ins("call", imm=1)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[tuple[int, int, int], list[Instruction]]:
    """Region sizes, and a loop (1-4 rounds) over random loads, stores and atomics through
    the regions, the stack and a moving pointer, with helper calls between them; r0 = the
    sum of the loads."""
    size = st.integers(8, 40) | st.integers(1, 40)
    sizes = (draw(size), draw(size), draw(size))
    body = [i for _ in range(draw(st.integers(1, 10))) for i in _op(draw, sizes)]
    return sizes, [
        reg("mov", 4, 10),
        ins("add", 4, imm=-64),
        reg("mov", 6, 1),
        ins("mov", 8, imm=0),
        ins("mov", 9, imm=draw(st.integers(1, 4))),
        *body,
        ins("sub", 9, imm=1),
        ins("jne", 9, off=-(len(body) + 2), imm=0),
        reg("mov", 0, 8),
        EXIT,
    ]


@settings(max_examples=200, deadline=None)
@given(case=cases(), whitelist=st.booleans())
def test_traced_and_untraced_agree(
    arena: Arena, case: tuple[tuple[int, int, int], list[Instruction]], whitelist: bool
) -> None:
    sizes, prog = case
    writable = (True, False, True)
    regions = [
        arena.alloc(n, kind="map_value", writable=w) for n, w in zip(sizes, writable, strict=True)
    ]
    interp = Interpreter(prog, arena=arena, helpers={1: lambda *args: 0})
    try:
        outcomes = []
        for trace in (None, lambda pc, insn, r: None):
            for k, r in enumerate(regions):
                arena.view[r.start : r.end] = bytes((k * 37 + i) & 255 for i in range(r.size))
            try:
                out: tuple[object, ...] = (
                    "ok",
                    interp.execute(
                        *(r.start for r in regions),
                        trace=trace,
                        regions=regions[:2] if whitelist else None,
                    ).r0,
                )
            except MemoryAccessError as e:
                out = ("fault", e.pc, e.address, e.size, e.write)
            outcomes.append((*out, *(bytes(arena.view[r.start : r.end]) for r in regions)))
        assert outcomes[0] == outcomes[1]
    finally:
        interp.close()
        for r in regions:
            arena.free(r)

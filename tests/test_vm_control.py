"""Interpreter control flow, limits and faults: local calls and callx, call depth, the
instruction budget, memory-safety traps with their pc/address/size, LD_ABS/LD_IND, tracing,
linking errors and atomicity across threads."""

from __future__ import annotations

import threading

import pytest

from pybpf.errors import ExhaustionError, LinkError, MemoryAccessError, Trap
from pybpf.isa import BY_NAME, Instruction
from pybpf.vm import Interpreter, func_pointer, run_program, shared_arena
from tests.test_vm_semantics import EXIT, ins, lddw, reg

M64 = (1 << 64) - 1


def call_local(pc: int, target: int) -> Instruction:
    return ins("call.local", imm=target - pc - 1)


def lddw_func(dst: int, pc: int, target: int) -> Instruction:
    return Instruction(BY_NAME["lddw.func"][0].opcode, dst, 4, 0, target - pc - 1)


def recursion(depth_arg: int) -> list[Instruction]:
    """main: r0 = f(depth_arg) where f(k) = 0 if k == 0 else f(k - 1) + 1."""
    return [
        ins("mov", 1, imm=depth_arg),  # 0
        call_local(1, 3),  # 1
        EXIT,  # 2
        ins("jne", 1, off=2, imm=0),  # 3: f
        ins("mov", 0, imm=0),  # 4
        EXIT,  # 5
        ins("sub", 1, imm=1),  # 6
        call_local(7, 3),  # 7
        ins("add", 0, imm=1),  # 8
        EXIT,  # 9
    ]


def test_local_calls_up_to_eight_frames() -> None:
    # main + f(6) .. f(0) = 8 frames
    assert run_program(recursion(6)).r0 == 6


def test_ninth_frame_is_exhaustion() -> None:
    with pytest.raises(ExhaustionError) as e:
        run_program(recursion(7))
    assert e.value.pc == 7 and e.value.limit == 8


def test_callee_saved_registers_and_fresh_frame() -> None:
    prog = [
        *[ins("mov", r, imm=r * 11) for r in range(6, 10)],  # 0-3
        ins("stdw", 10, off=-8, imm=1234),  # 4
        ins("mov", 1, imm=5),  # 5
        call_local(6, 13),  # 6
        reg("add", 0, 6),  # 7
        reg("add", 0, 7),  # 8
        reg("add", 0, 8),  # 9
        reg("add", 0, 9),  # 10
        ins("ldxdw", 1, 10, off=-8),  # 11
        EXIT,  # 12 (r0 = callee + 330; the caller's frame kept 1234 in r1)
        *[ins("mov", r, imm=0) for r in range(6, 10)],  # 13-16
        ins("stdw", 10, off=-8, imm=99),  # 17: the callee's own frame
        reg("mov", 0, 1),  # 18
        ins("mul", 0, imm=2),  # 19
        EXIT,  # 20
    ]
    regs_at_exit: list[list[int]] = []

    def trace(pc: int, insn: Instruction, regs: list[int]) -> None:
        if pc == 12:
            regs_at_exit.append(regs)

    assert run_program(prog, trace=trace).r0 == 10 + 66 + 77 + 88 + 99
    assert regs_at_exit[0][1] == 1234


def test_callx_function_pointer_and_helper() -> None:
    prog = [
        lddw_func(2, 0, 5),  # 0-1
        ins("mov", 1, imm=20),  # 2
        ins("callx", 2),  # 3
        EXIT,  # 4
        reg("mov", 0, 1),  # 5
        ins("add", 0, imm=1),  # 6
        EXIT,  # 7
    ]
    assert run_program(prog).r0 == 21
    helper = [ins("mov", 1, imm=7), ins("mov", 3, imm=9), ins("callx", 3), EXIT]
    assert run_program(helper, helpers={9: lambda a, b, c, d, e: a * 3}).r0 == 21
    assert func_pointer(5) >> 32 and func_pointer(5) & 0xFFFFFFFF == 5


def test_callx_to_unknown_value_traps() -> None:
    with pytest.raises(Trap) as e:
        run_program([ins("mov", 3, imm=77), ins("callx", 3), EXIT])
    assert e.value.pc == 1


def test_helper_result_is_masked_and_args_passed() -> None:
    seen: list[tuple[int, ...]] = []

    def helper(*args: int) -> int:
        seen.append(args)
        return -1

    prog = [*[ins("mov", r, imm=r) for r in range(1, 6)], ins("call", imm=42), EXIT]
    assert run_program(prog, helpers={42: helper}).r0 == M64
    assert seen == [(1, 2, 3, 4, 5)]


def test_unknown_helper_is_a_link_error_at_prepare() -> None:
    with pytest.raises(LinkError) as e:
        Interpreter([ins("mov", 0, imm=0), ins("call", imm=1234), EXIT])
    assert e.value.pc == 1


def test_map_lddw_needs_a_resolver() -> None:
    prog = [Instruction(0x18, 0, 1, 0, 7), EXIT]
    with pytest.raises(LinkError) as e:
        Interpreter(prog)
    assert e.value.pc == 0
    interp = Interpreter(prog, resolve=lambda pc, insn: 0x1000 + insn.imm)
    assert interp.run() == 0x1007


def test_kfunc_call() -> None:
    prog = [ins("mov", 1, imm=4), ins("call.kfunc", imm=555), EXIT]
    assert Interpreter(prog, kfuncs={555: lambda a, b, c, d, e: a + 1}).run() == 5
    with pytest.raises(LinkError):
        Interpreter(prog)


def test_budget_catches_ja_minus_one() -> None:
    with pytest.raises(ExhaustionError) as e:
        run_program([ins("ja", off=-1)], budget=1000)
    assert e.value.limit == 1000 and e.value.pc == 0


def test_budget_is_exact_on_completion() -> None:
    prog = [ins("mov", 0, imm=1), ins("add", 0, imm=1), EXIT]
    assert run_program(prog, budget=3).insns == 3
    with pytest.raises(ExhaustionError):
        run_program(prog, budget=2)
    assert run_program(prog, budget=None).r0 == 2


def test_insn_count_of_a_loop() -> None:
    prog = [
        ins("mov", 0, imm=0),
        ins("mov", 1, imm=10),
        reg("add", 0, 1),
        ins("sub", 1, imm=1),
        ins("jne", 1, off=-3, imm=0),
        EXIT,
    ]
    out = run_program(prog)
    assert (out.r0, out.insns) == (55, 2 + 3 * 10 + 1)


def test_trace_sees_every_pc_in_order() -> None:
    prog = [
        ins("mov", 0, imm=0),
        ins("mov", 1, imm=3),
        reg("add", 0, 1),
        ins("sub", 1, imm=1),
        ins("jne", 1, off=-3, imm=0),
        EXIT,
    ]
    pcs: list[int] = []
    r0s: list[int] = []

    def trace(pc: int, insn: Instruction, regs: list[int]) -> None:
        pcs.append(pc)
        r0s.append(regs[0])
        assert insn == prog[pc]

    assert run_program(prog, trace=trace).r0 == 6
    assert pcs == [0, 1, *[2, 3, 4] * 3, 5]
    assert r0s[-1] == 6


def test_falling_off_the_end_traps() -> None:
    with pytest.raises(Trap) as e:
        run_program([ins("mov", 0, imm=1)])
    assert e.value.pc == 0


def test_jump_out_of_the_program_traps_when_taken() -> None:
    prog = [ins("mov", 0, imm=1), ins("jeq", 0, off=5, imm=2), EXIT]
    assert run_program(prog).r0 == 1
    with pytest.raises(Trap) as e:
        run_program([ins("mov", 0, imm=2), *prog[1:]])
    assert e.value.pc == 1


# ---- memory safety ----


def _fault(prog: list[Instruction], **kw: object) -> tuple[MemoryAccessError, list[int]]:
    regs: list[int] = []

    def trace(pc: int, insn: Instruction, r: list[int]) -> None:
        regs[:] = r

    with pytest.raises(MemoryAccessError) as e:
        run_program(prog, trace=trace, **kw)
    with pytest.raises(MemoryAccessError) as untraced:
        run_program(prog, **kw)
    assert (untraced.value.pc, untraced.value.size) == (e.value.pc, e.value.size)
    return e.value, regs


def test_null_read() -> None:
    err, _ = _fault([ins("mov", 1, imm=0), ins("ldxw", 0, 1, off=16), EXIT])
    assert (err.pc, err.address, err.size, err.write) == (1, 16, 4, False)


def test_out_of_bounds_of_mem() -> None:
    err, regs = _fault([ins("ldxdw", 0, 1, off=4), EXIT], mem=bytes(8))
    assert (err.pc, err.address, err.size, err.write) == (0, regs[1] + 4, 8, False)


def test_far_address_outside_the_arena() -> None:
    err, _ = _fault([lddw(1, 1 << 40), ins("stb", 1, imm=1), EXIT])
    assert (err.pc, err.address, err.size, err.write) == (2, 1 << 40, 1, True)


def test_read_only_region_refuses_writes() -> None:
    arena = shared_arena()
    region = arena.alloc(16, kind="ctx", writable=False)
    try:
        interp = Interpreter([ins("ldxdw", 0, 1), ins("stw", 1, off=8, imm=1), EXIT], arena=arena)
        with pytest.raises(MemoryAccessError) as e:
            interp.run(region.start)
        assert (e.value.pc, e.value.address, e.value.size, e.value.write) == (
            1,
            region.start + 8,
            4,
            True,
        )
    finally:
        arena.free(region)


def test_regions_restrict_a_run() -> None:
    arena = shared_arena()
    a, b = arena.alloc(8), arena.alloc(8)
    try:
        interp = Interpreter([ins("ldxdw", 0, 1), EXIT], arena=arena)
        assert interp.run(b.start, regions=[b]) == 0
        with pytest.raises(MemoryAccessError):
            interp.run(a.start, regions=[b])
    finally:
        arena.free(a)
        arena.free(b)


def test_stack_underflow_static() -> None:
    err, regs = _fault([ins("ldxdw", 0, 10, off=-520), EXIT])
    assert (err.pc, err.address, err.size, err.write) == (0, regs[10] - 520, 8, False)


def test_stack_overflow_static() -> None:
    err, regs = _fault([ins("stxdw", 10, 1, off=0), EXIT])
    assert (err.pc, err.address, err.size, err.write) == (0, regs[10], 8, True)


def test_stack_underflow_dynamic() -> None:
    prog = [reg("mov", 1, 10), ins("sub", 1, imm=600), ins("ldxb", 0, 1), EXIT]
    err, regs = _fault(prog)
    assert (err.pc, err.address, err.size) == (2, regs[10] - 600, 1)


def test_callee_cannot_touch_frames_below_it() -> None:
    prog = [
        call_local(0, 2),  # 0
        EXIT,  # 1
        reg("mov", 1, 10),  # 2
        ins("sub", 1, imm=520),  # 3: below the callee's frame
        ins("ldxdw", 0, 1),  # 4
        EXIT,  # 5
    ]
    with pytest.raises(MemoryAccessError) as e:
        run_program(prog)
    assert e.value.pc == 4


def test_callee_may_use_a_pointer_to_the_callers_frame() -> None:
    prog = [
        ins("stdw", 10, off=-8, imm=41),  # 0
        reg("mov", 1, 10),  # 1
        ins("add", 1, imm=-8),  # 2
        call_local(3, 5),  # 3
        EXIT,  # 4
        ins("ldxdw", 0, 1),  # 5
        ins("add", 0, imm=1),  # 6
        EXIT,  # 7
    ]
    assert run_program(prog).r0 == 42


# ---- legacy packet access ----

PACKET = bytes([0x11, 0x22, 0x33, 0x44, 0x55])


@pytest.mark.parametrize(
    ("prog", "expected"),
    [
        ([ins("ldabsh", imm=1)], 0x2233),
        ([ins("ldabsw", imm=1)], 0x22334455),
        ([ins("ldabsb", imm=4)], 0x55),
        ([ins("mov", 1, imm=2), ins("ldindh", src=1, imm=1)], 0x4455),
        ([ins("mov", 1, imm=-1), ins("ldindb", src=1, imm=1)], 0x11),
        ([ins("ldabsw", imm=2), ins("mov", 0, imm=7)], 0),
        ([ins("ldabsb", imm=5), ins("mov", 0, imm=7)], 0),
        ([ins("mov", 1, imm=4), ins("ldindh", src=1, imm=0), ins("mov", 0, imm=7)], 0),
        ([ins("ldabsb", imm=-1), ins("mov", 0, imm=7)], 0),
    ],
)
def test_ld_abs_ind(prog: list[Instruction], expected: int) -> None:
    assert run_program([*prog, EXIT], packet=PACKET).r0 == expected


def test_ld_abs_out_of_bounds_counts_and_ends() -> None:
    out = run_program(
        [ins("mov", 0, imm=9), ins("ldabsw", imm=8), ins("mov", 0, imm=7), EXIT], packet=PACKET
    )
    assert (out.r0, out.insns) == (0, 2)


def test_ld_abs_without_packet_traps() -> None:
    with pytest.raises(Trap) as e:
        run_program([ins("ldabsb", imm=0), EXIT])
    assert e.value.pc == 0


# ---- threads ----


def test_atomics_are_atomic_across_threads() -> None:
    arena = shared_arena()
    cell = arena.alloc(8)
    rounds = 3000
    prog = [
        ins("mov", 2, imm=rounds),  # 0
        ins("mov", 3, imm=1),  # 1
        ins("lock add", 1, 3),  # 2
        ins("ldxdw", 4, 1),  # 3: plain read between the atomics invites interleaving
        ins("sub", 2, imm=1),  # 4
        ins("jne", 2, off=-4, imm=0),  # 5
        EXIT,  # 6
    ]
    interp = Interpreter(prog, arena=arena)
    try:
        threads = [threading.Thread(target=interp.run, args=(cell.start,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert int.from_bytes(arena.read(cell.start, 8), "little") == 4 * rounds
    finally:
        arena.free(cell)

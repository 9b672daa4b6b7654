"""The helper binding protocol end to end on the interpreter: bound r1..r5 closures, and the
call_function hook routed to the running interpreter for bpf_loop callbacks."""

from __future__ import annotations

from pybpf.helpers import DEFAULT_HELPERS, Environment, RunContext, bind
from pybpf.isa.instruction import Instruction as I
from pybpf.memory import Arena
from pybpf.vm import Interpreter, current_run

# r1 = 10; r2 = &callback; r3 = r4 = 0; r0 = bpf_loop(r1, r2, r3, r4); exit.
# callback(i, ctx): return i == 2 (stop after the third iteration).
LOOP_PROG = [
    I(0xB7, 1, 0, 0, 10),
    I(0x18, 2, 4, 0, 5, 0),  # lddw r2, func at pc 1 + 1 + 5 = 7 (the lddw fills pcs 1-2)
    I(0xB7, 3, 0, 0, 0),
    I(0xB7, 4, 0, 0, 0),
    I(0x85, 0, 0, 0, 181),
    I(0x95),
    I(0xB7, 0, 0, 0, 0),
    I(0x55, 1, 0, 1, 2),
    I(0xB7, 0, 0, 0, 1),
    I(0x95),
]

# r0 = ktime_get_ns(); r6 = r0; r0 = ktime_get_ns(); r0 -= r6; exit.
CLOCK_PROG = [
    I(0x85, 0, 0, 0, 5),
    I(0xBF, 6, 0, 0, 0),
    I(0x85, 0, 0, 0, 5),
    I(0x1F, 0, 6, 0, 0),
    I(0x95),
]


def test_bpf_loop_callback_through_the_interpreter() -> None:
    with Arena(1 << 26) as arena:
        run = RunContext(arena)
        run.install_call_function(lambda fp, *args: current_run().call_function(fp, *args))
        vm = Interpreter(LOOP_PROG, helpers=bind(DEFAULT_HELPERS, run), arena=arena)
        assert vm.run() == 3


def test_clock_helper_through_the_interpreter() -> None:
    with Arena(1 << 26) as arena:
        run = RunContext(arena, env=Environment(clock_step_ns=250))
        vm = Interpreter(CLOCK_PROG, helpers=bind(DEFAULT_HELPERS, run), arena=arena)
        assert vm.run() == 250

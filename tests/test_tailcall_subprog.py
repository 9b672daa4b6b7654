"""Tail calls made inside bpf-to-bpf subprograms: the VM's frame-replacement protocol
(`ReplaceFrame` caught at a subprogram's helper call site) and the runtime's use of it for
bpf_tail_call, checked against what the C of `tests/kernel/tailcall_subprog.c` computes (the
kernel goldens of the same object replay in `tests/kernel/test_kernel_golden.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pybpf
from pybpf.asm import assemble
from pybpf.errors import MemoryAccessError
from pybpf.vm import HelperFn, Interpreter, ReplaceFrame

OBJ = Path(__file__).parent / "kernel" / "tailcall_subprog.o"
BSS = "tailcall.bss"  # libbpf names it after the object's first 8 characters

# main keeps values in r6-r9 and on its stack, calls a subprogram whose helper call replaces
# its frame; the subprogram's code after the helper must not run.
_PROGRAM = """
mov %r6, 6
mov %r7, 7
mov %r8, 8
mov %r9, 9
stxdw [%r10-8], %r9
call local sub
add %r0, %r6
add %r0, %r7
add %r0, %r8
ldxdw %r1, [%r10-8]
add %r0, %r1
exit
sub:
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
stxdw [%r10-8], %r9
call 1
mov %r0, 1000000
exit
"""


def _replacing(value: int, calls: list[int]) -> HelperFn:
    def helper(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        calls.append(r1)
        raise ReplaceFrame(lambda: (value, 5))

    return helper


def test_replace_frame_in_subprogram_returns_to_the_call_site() -> None:
    calls: list[int] = []
    interp = Interpreter(assemble(_PROGRAM), helpers={1: _replacing(100, calls)})
    ex = interp.execute()
    assert ex.r0 == 100 + 6 + 7 + 8 + 9
    assert len(calls) == 1
    # main's 12 instructions and the subprogram's 6 up to the helper, plus the 5 reported.
    assert ex.insns == 12 + 6 + 5


def test_replace_frame_in_main_function_ends_the_execution() -> None:
    interp = Interpreter(assemble("mov %r0, 3\ncall 1\nexit"), helpers={1: _replacing(1, [])})
    with pytest.raises(ReplaceFrame):
        interp.execute()


def test_replace_frame_traced_matches_untraced() -> None:
    interp = Interpreter(assemble(_PROGRAM), helpers={1: _replacing(100, [])})
    seen: list[int] = []
    ex = interp.execute(trace=lambda pc, insn, regs: seen.append(pc))
    assert ex.r0 == 130
    assert 17 in seen  # the subprogram's helper call
    assert 18 not in seen  # and its `mov %r0, 1000000`, which never runs


@pytest.fixture(scope="module")
def obj() -> Iterator[pybpf.Object]:
    with pybpf.load_object(OBJ) as o:
        yield o


def _packet(slot: int, which: int) -> bytes:
    return bytes([slot, which]) + bytes(12)


@pytest.mark.parametrize("which", [0, 1], ids=["static", "global"])
@pytest.mark.parametrize(
    ("slot", "result", "byte1", "tail_calls"),
    [
        (0, 40, 0xAA, 1),  # target_a returns 40 and writes byte 1
        (1, None, None, 0),  # empty slot: the subprogram's own fallback
        (2, 40, 0xAA, 2),  # chain_b tail-calls target_a from its main function
        (3, 43, 0xAA, 2),  # nested_c's subprogram tail-calls target_a; nested_c adds 3
        (9, None, None, 0),  # index out of range
    ],
)
def test_subprogram_tail_call_returns_to_caller(
    obj: pybpf.Object,
    which: int,
    slot: int,
    result: int | None,
    byte1: int | None,
    tail_calls: int,
) -> None:
    fallback = 9 if which else 7
    r = fallback if result is None else result
    b = which if byte1 is None else byte1
    res = obj.programs["sub_entry"].run(data=_packet(slot, which))
    # sub_entry adds 500000 if its stack or callee-saved registers changed across the call.
    assert res.retval == r * 1000 + slot + 100 * b
    assert res.tail_calls == tail_calls
    assert res.program == "sub_entry"
    assert obj.maps[BSS][0]["after"] == 1  # the caller ran on after the call


def test_limit_counts_tail_calls_from_subprograms(obj: pybpf.Object) -> None:
    obj.maps["loop_jumps"][0] = obj.programs["sub_loop"]
    obj.maps[BSS][0] = {"hops": 0, "after": 0}
    res = obj.programs["sub_loop"].run(data=bytes(14))
    # 1 + MAX_TAIL_CALL_CNT (33) runs of sub_loop, each adding 1 to the innermost fallback.
    assert (res.retval, res.tail_calls) == (1000 + 34, 33)
    assert obj.maps[BSS][0]["hops"] == 34
    res = obj.programs["main_then_sub"].run(data=bytes(14))
    # The main-level tail call uses one of the 33: sub_loop runs 33 times.
    assert (res.retval, res.tail_calls) == (1000 + 33, 33)
    assert obj.maps[BSS][0]["hops"] == 100 + 33


def test_trap_in_the_replacement_propagates() -> None:
    def helper(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        def run() -> tuple[int, int]:
            raise MemoryAccessError(pc=3, address=0, size=1, write=False)

        raise ReplaceFrame(run)

    interp = Interpreter(assemble(_PROGRAM), helpers={1: helper})
    with pytest.raises(MemoryAccessError):
        interp.execute()

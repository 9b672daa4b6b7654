"""The static ctx-access scan: which loads/stores go through the ctx pointer and how far the
program reaches into its ctx (the kernel verifier's ``max_ctx_offset``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pybpf.asm import assemble_insns
from pybpf.helpers.ctxaccess import CtxAccess, ctx_accesses, max_ctx_offset
from pybpf.loader import load_spec

KERNEL = Path(__file__).parent / "kernel"


def scan(text: str) -> dict[int, CtxAccess]:
    return ctx_accesses(assemble_insns(text, "conformance"))


def test_direct_and_copied_ctx_pointers() -> None:
    found = scan(
        """
        ldxw %r2, [%r1+4]
        mov %r6, %r1
        stxdw [%r6+8], %r2
        mov %r1, 0
        ldxw %r0, [%r6+16]
        ldxw %r3, [%r1+0]
        exit
        """
    )
    assert found == {
        0: CtxAccess(4, 4, False),
        2: CtxAccess(8, 8, True),
        4: CtxAccess(16, 4, False),
    }  # pc 5 reads through r1 after it was overwritten: not the ctx


def test_spills_constant_offsets_and_helper_calls() -> None:
    found = scan(
        """
        stxdw [%r10-8], %r1
        call 5
        ldxdw %r2, [%r10-8]
        add %r2, 8
        stw [%r2+4], 7
        ldxw %r0, [%r1+0]
        stxdw [%r10-8], %r0
        ldxdw %r3, [%r10-8]
        ldxw %r0, [%r3+0]
        exit
        """
    )
    # r1 was clobbered by the call; the slot was overwritten by a non-ctx value at pc 6
    assert found == {4: CtxAccess(12, 4, True)}


def test_ctx_passed_to_a_subprogram_and_joined_paths() -> None:
    found = scan(
        """
        mov %r6, %r1
        jeq %r2, 0, skip
        mov %r6, 0
        skip:
        mov %r1, %r6
        call local sub
        exit
        sub:
        ldxb %r0, [%r1+40]
        exit
        """
    )
    assert found == {6: CtxAccess(40, 1, False)}  # ctx on one of the joined paths counts


@pytest.mark.parametrize(("prog", "reach"), [("multiply", 31), ("reverse", 64)])
def test_max_ctx_offset_of_compiled_programs(prog: str, reach: int) -> None:
    # multiply writes ctx->text[0..10] (bytes 20..30); reverse copies the 64-byte ctx whole
    spec = load_spec(KERNEL / "syscall.o")
    assert max_ctx_offset(spec.programs[prog].insns) == reach


def test_no_ctx_access() -> None:
    assert max_ctx_offset(assemble_insns("mov %r0, 0\nexit\n", "conformance")) == 0
    assert max_ctx_offset([]) == 0

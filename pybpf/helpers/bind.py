"""Binding declarations to a run: the r1..r5 closures the interpreter and the JIT call.

Place in the pipeline: the VM calls :func:`bind` once per run (or per RunContext) and
dispatches ``call imm`` to ``helpers[imm]``; kfunc calls, which the loader resolves by BTF
name, go through :func:`bind_kfuncs`. A closure returns r0 as an unsigned 64-bit value (a
negative errno from an implementation becomes its two's complement).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pybpf.helpers.context import MASK64, RunContext
from pybpf.helpers.decl import HelperSet, Impl

HelperFn = Callable[[int, int, int, int, int], int]


def _closure(impl: Impl, run: RunContext) -> HelperFn:
    def call(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return impl(run, r1, r2, r3, r4, r5) & MASK64

    return call


def bind(helper_set: HelperSet, run: RunContext) -> Mapping[int, HelperFn]:
    """Helper id -> closure over ``run`` for every helper of ``helper_set`` with an id."""
    return {hid: _closure(d.impl, run) for hid, d in helper_set.by_id.items()}


def bind_kfuncs(helper_set: HelperSet, run: RunContext) -> Mapping[str, HelperFn]:
    """Kfunc BTF name (and every alias) -> closure over ``run``."""
    return {n: _closure(k.impl, run) for k in helper_set.kfuncs for n in k.names}


def bind_by_name(helper_set: HelperSet, run: RunContext) -> Mapping[str, HelperFn]:
    """Every declaration by name (helpers without a kernel id included)."""
    return {n: _closure(d.impl, run) for n, d in helper_set.by_name.items()}

"""The bpf_wq kfuncs: bpf_wq_init, bpf_wq_set_callback (bpf_wq_set_callback_impl), bpf_wq_start.

Place in the pipeline: kfunc declarations collected into ``DEFAULT_HELPERS`` by
:mod:`pybpf.helpers.table`, resolved by BTF name from the loader's kfunc call relocations.
A ``struct bpf_wq`` lives in a map value; its state is kept in the runtime's SharedState.
``bpf_wq_start`` queues the callback ``callback(map, key, value)`` on the run's async queue
(due at the current virtual time); it runs after the program returns, when the object layer
drains the queue, and the run result records it. Flags must be 0 (-EINVAL otherwise); a
second init is -EBUSY; starting a work queue without a callback is -EINVAL (helpers.c).
The program types that may call them are exactly those the kfunc documentation lists.
"""

from __future__ import annotations

import errno

from pybpf.helpers.context import RunContext
from pybpf.helpers.core import async_arm, async_init, async_set_callback
from pybpf.helpers.decl import KfuncArg, KfuncArgKind, KfuncDecl, RetKind
from pybpf.helpers.groups import WORKQUEUE


def _wq_init(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r3 & 0xFFFFFFFF:
        return -errno.EINVAL
    return async_init(run, "wq", r1, run.maps[r2], 0)


def _wq_set_callback(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r3 & 0xFFFFFFFF:
        return -errno.EINVAL
    return async_set_callback(run, r1, r2)


def _wq_start(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r2 & 0xFFFFFFFF:
        return -errno.EINVAL
    return async_arm(run, r1, run.clock_ns, "bpf_wq")


_WQ = KfuncArg("wq", KfuncArgKind.PTR_TO_WORKQUEUE, "struct bpf_wq *")
_FLAGS = KfuncArg("flags", KfuncArgKind.SCALAR, "unsigned int")

WQ_KFUNCS: tuple[KfuncDecl, ...] = (
    KfuncDecl(
        "bpf_wq_init",
        RetKind.INTEGER,
        (_WQ, KfuncArg("p__map", KfuncArgKind.PTR_TO_MAP, "void *"), _FLAGS),
        _wq_init,
        prog_types=WORKQUEUE,
    ),
    KfuncDecl(
        "bpf_wq_set_callback_impl",
        RetKind.INTEGER,
        (
            _WQ,
            KfuncArg("callback_fn", KfuncArgKind.PTR_TO_CALLBACK, "int (*)(void *, int *, void *)"),
            _FLAGS,
            KfuncArg("aux__prog", KfuncArgKind.PROG_AUX, "void *"),
        ),
        _wq_set_callback,
        prog_types=WORKQUEUE,
        aliases=("bpf_wq_set_callback",),
    ),
    KfuncDecl(
        "bpf_wq_start",
        RetKind.INTEGER,
        (_WQ, _FLAGS),
        _wq_start,
        prog_types=WORKQUEUE,
    ),
)

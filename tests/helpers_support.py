"""Shared fixtures for the helper tests: an Arena, a RunContext with a Python callback table,
and small conveniences to call a helper by name and to place bytes in the Arena."""

from __future__ import annotations

from collections.abc import Callable

from pybpf.helpers import (
    DEFAULT_HELPERS,
    Environment,
    HelperDecl,
    HelperSet,
    RunContext,
    bind,
    bind_kfuncs,
)
from pybpf.memory import Arena
from pybpf.uapi import BpfProgType

MASK64 = (1 << 64) - 1


def s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


class Harness:
    """A run with helpers bound; callbacks are Python functions keyed by fake func pointers."""

    def __init__(
        self,
        arena: Arena,
        prog_type: BpfProgType = BpfProgType.SCHED_CLS,
        env: Environment | None = None,
        helper_set: HelperSet = DEFAULT_HELPERS,
        run: RunContext | None = None,
    ) -> None:
        self.arena = arena
        self.run = run or RunContext(arena, env=env, prog_type=prog_type)
        self.callbacks: dict[int, Callable[..., int]] = {}
        self.calls: list[tuple[int, tuple[int, ...]]] = []
        self.run.install_call_function(self._call)
        self.helpers = bind(helper_set, self.run)
        self.kfuncs = bind_kfuncs(helper_set, self.run)
        self.helper_set = helper_set

    def _call(self, fp: int, *args: int) -> int:
        self.calls.append((fp, args))
        return self.callbacks[fp](*args)

    def callback(self, fn: Callable[..., int]) -> int:
        fp = 0x1000 + len(self.callbacks)
        self.callbacks[fp] = fn
        return fp

    def call(self, name: str, *args: int) -> int:
        """Call helper or kfunc ``name``; r0 as a signed 64-bit value."""
        padded = [a & MASK64 for a in args] + [0] * (5 - len(args))
        if name in self.kfuncs:
            fn = self.kfuncs[name]
        else:
            decl = self.helper_set.by_name[name]
            assert isinstance(decl, HelperDecl) and decl.id is not None
            fn = self.helpers[decl.id]
        return s64(fn(*padded))

    def mem(self, data: bytes, writable: bool = True) -> int:
        region = self.arena.alloc(max(len(data), 1), kind="mem", writable=writable)
        if data:
            self.arena.write(region.start, data)
        return region.start

    def read(self, addr: int, n: int) -> bytes:
        return self.arena.read(addr, n)

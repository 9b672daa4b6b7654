"""The interpreter: prepares a linked program once, then runs it many times.

Place in the pipeline: after the loader/linker (and, for loaded objects, the verifier), the
runtime hands a program's instructions to `Interpreter`; `run_program` is the one-call form
for raw programs (the conformance suite, the CLI). The translation into Python source lives
in `codegen.py`; this module links (helpers, kfuncs, 64-bit immediates that need resolving),
compiles (cached by program bytes), and provides what generated code calls on slow paths
(`RunState`: region checks, traps, the packet of LD_ABS/LD_IND, helpers reached by callx).

Linking choices: a ``call`` of a helper id absent from the helper table, a kfunc absent from
the kfunc table, an lddw of a map/BTF kind nobody resolves and an ``lddw.func`` that points at
no instruction raise `LinkError` when the program is prepared. A ``callx`` to a value that is
neither a function pointer nor a known helper id traps when it runs.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType
from typing import cast

from pybpf.errors import (
    DecodeError,
    ExhaustionError,
    LinkError,
    MemoryAccessError,
    Trap,
)
from pybpf.isa.cfg import ProgramCfg, build_cfg
from pybpf.isa.instruction import (
    Instruction,
    decode_program,
    encode_program,
    select,
    with_pcs,
)
from pybpf.memory import Arena, Region
from pybpf.vm.codegen import (
    FUNC_PTR_TAG,
    M32,
    M64,
    MAX_CALL_FRAMES,
    STACK_SIZE,
    ReplaceFrame,
    cache_bounds,
    func_name,
    func_pointer,
    generate,
)

HelperFn = Callable[[int, int, int, int, int], int]
TraceFn = Callable[[int, Instruction, list[int]], None]
# Resolves the 64-bit immediate of an lddw of a map/BTF kind: (pc, insn) -> value or None.
Resolver = Callable[[int, Instruction], int | None]

DEFAULT_BUDGET = 100_000_000
_UNLIMITED = 1 << 80
_CACHE_SIZE = 256
_STACK_AREA = MAX_CALL_FRAMES * STACK_SIZE
_ZERO_STACK = bytes(_STACK_AREA)
_PACKET_FORMATS = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}

# One lock makes the interpreter's atomic instructions atomic with respect to every other
# interpreted program, whatever its Arena.
_ATOMIC_LOCK = threading.Lock()


def _s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v >> 31 else v


def _quotient(a: int, b: int) -> int:
    """Signed division truncating toward zero."""
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _remainder(a: int, b: int) -> int:
    """Signed remainder with the dividend's sign (the C/RFC 9669 convention)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _sdiv64(a: int, b: int) -> int:
    sb = _s64(b)
    return _quotient(_s64(a), sb) & M64 if sb else 0


def _sdiv32(a: int, b: int) -> int:
    sb = _s32(b)
    return _quotient(_s32(a), sb) & M32 if sb else 0


def _smod64(a: int, b: int) -> int:
    sb = _s64(b)
    return _remainder(_s64(a), sb) & M64 if sb else a


def _smod32(a: int, b: int) -> int:
    sb = _s32(b)
    return _remainder(_s32(a), sb) & M32 if sb else a & M32


_STRUCTS = {
    "U2": struct.Struct("<H").unpack_from,
    "U4": struct.Struct("<I").unpack_from,
    "U8": struct.Struct("<Q").unpack_from,
    "S1": struct.Struct("<b").unpack_from,
    "S2": struct.Struct("<h").unpack_from,
    "S4": struct.Struct("<i").unpack_from,
    "P2": struct.Struct("<H").pack_into,
    "P4": struct.Struct("<I").pack_into,
    "P8": struct.Struct("<Q").pack_into,
}
_BASE_GLOBALS = {
    "__builtins__": {"int": int},
    **_STRUCTS,
    "SDIV64": _sdiv64,
    "SDIV32": _sdiv32,
    "SMOD64": _smod64,
    "SMOD32": _smod32,
    "ALOCK": _ATOMIC_LOCK,
    "ReplaceFrame": ReplaceFrame,
}


@dataclass(frozen=True, slots=True)
class _Compiled:
    code: CodeType
    source: str
    helpers: frozenset[int]
    kfuncs: frozenset[int]
    constants: frozenset[int]


_cache: dict[tuple[bytes, bool], _Compiled] = {}
_cache_lock = threading.Lock()


def _compile(key: bytes, cfg: ProgramCfg, traced: bool, name: str) -> _Compiled:
    with _cache_lock:
        found = _cache.get((key, traced))
    if found is not None:
        return found
    source, gen = generate(cfg, traced=traced)
    code = compile(source, f"<bpf {name}{' traced' if traced else ''}>", "exec")
    compiled = _Compiled(
        code, source, frozenset(gen.helpers), frozenset(gen.kfuncs), frozenset(gen.constants)
    )
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[(key, traced)] = compiled
    return compiled


class _PacketAbort(Exception):
    """LD_ABS/LD_IND out of bounds: the program ends with r0 = 0 (kernel behaviour)."""

    def __init__(self, executed: int) -> None:
        super().__init__("packet access out of bounds")
        self.executed = executed


_current = threading.local()


def current_run() -> RunState | None:
    """The run in progress on this thread (for helpers that need its packet, arena, ...)."""
    return getattr(_current, "state", None)


class RunState:
    """One run's mutable context, and the slow paths generated code calls."""

    __slots__ = (
        "allowed",
        "arena",
        "budget",
        "callback_insns",
        "fp",
        "funcs",
        "helpers",
        "insns",
        "packet",
        "stack",
        "trace",
    )

    def __init__(
        self,
        interp: Interpreter,
        stack: Region,
        budget: int | None,
        trace: TraceFn | None,
        packet: tuple[int, int] | None,
        regions: Sequence[Region] | None,
    ) -> None:
        self.arena = interp.arena
        self.helpers = interp.helpers
        self.insns = interp.insns_by_pc
        self.stack = stack
        self.budget = budget
        self.trace = trace
        self.packet = packet
        self.allowed = None if regions is None else frozenset(r.start for r in regions)
        self.funcs = interp._funcs if trace is None else interp.functions(traced=True)
        self.fp = stack.end
        self.callback_insns = 0

    def call_function(self, value: int, *args: int) -> int:
        """Run the BPF function at function pointer ``value`` with r1.. = ``args`` on a new
        frame below the caller's (what a helper such as bpf_loop does); returns its r0."""
        fn = self.funcs.get(value)
        if fn is None:
            raise Trap(f"callback {value:#x} is not a function of this program", pc=-1)
        fp = self.fp
        if fp < self.stack.end - (MAX_CALL_FRAMES - 2) * STACK_SIZE:
            raise ExhaustionError(
                f"callback call depth exceeds {MAX_CALL_FRAMES} frames", limit=MAX_CALL_FRAMES
            )
        regs = (*args, 0, 0, 0, 0, 0)
        lim = _UNLIMITED if self.budget is None else self.budget
        try:
            r0, n = fn(*regs[:5], fp - STACK_SIZE, self.stack.end, 0, lim, self)
        finally:
            self.fp = fp
        self.callback_insns += n
        return r0

    def _name(self, pc: int) -> str | None:
        insn = self.insns.get(pc)
        return insn.spec.name if insn is not None else None

    def check(self, address: int, size: int, write: int, pc: int) -> tuple[int, ...]:
        """Validate an access that is not inside the live stack frames; return what
        generated code caches for the region it is in (`cache_bounds`)."""
        region = self.arena.find(address, size)
        if (
            region is None
            or region.kind == "stack"
            or (write and not region.writable)
            or (self.allowed is not None and region.start not in self.allowed)
        ):
            raise MemoryAccessError(
                pc=pc, address=address & M64, size=size, write=bool(write), insn=self._name(pc)
            )
        start = region.start
        return cache_bounds(start, start + region.size)

    def fault(self, address: int, size: int, write: int, pc: int) -> None:
        """An access off r10 outside the current frame."""
        raise MemoryAccessError(
            pc=pc, address=address & M64, size=size, write=bool(write), insn=self._name(pc)
        )

    def exhaust(self, pc: int) -> None:
        raise ExhaustionError(
            f"instruction budget of {self.budget} exhausted", pc=pc, limit=self.budget
        )

    def too_deep(self, pc: int) -> None:
        raise ExhaustionError(
            f"call depth exceeds {MAX_CALL_FRAMES} frames", pc=pc, limit=MAX_CALL_FRAMES
        )

    def trap(self, pc: int, reason: str) -> None:
        raise Trap(reason, pc=pc, insn=self._name(pc))

    def helper(self, pc: int, value: int) -> HelperFn:
        """The helper a callx reaches with ``value`` (not a function pointer)."""
        fn = self.helpers.get(value)
        if fn is None:
            what = "function pointer" if value & ~M32 == FUNC_PTR_TAG else "helper"
            raise Trap(f"callx to unknown {what} {value:#x}", pc=pc, insn=self._name(pc))
        return fn

    def load_packet(self, offset: int, size: int, pc: int) -> int:
        """The big-endian value at packet ``offset``, or -1 when out of bounds."""
        if self.packet is None:
            raise Trap("LD_ABS/LD_IND without a packet", pc=pc, insn=self._name(pc))
        start, length = self.packet
        offset = _s32(offset)
        if offset < 0 or offset + size > length:
            return -1
        data = self.arena.read(start + offset, size)
        return int(struct.unpack(_PACKET_FORMATS[size], data)[0])

    def abort(self, executed: int) -> None:
        raise _PacketAbort(executed)


@dataclass(frozen=True, slots=True)
class Execution:
    """What one run returns: r0 and how many instructions it executed."""

    r0: int
    insns: int


class Interpreter:
    """A program prepared once (linked, translated, compiled), run many times.

    ``helpers`` maps helper ids and ``kfuncs`` BTF ids to Python callables taking r1-r5;
    ``resolve`` gives the value of an lddw of a map/BTF kind (the loader's business).
    """

    def __init__(
        self,
        insns: Sequence[Instruction] | bytes,
        *,
        helpers: Mapping[int, HelperFn] | None = None,
        kfuncs: Mapping[int, HelperFn] | None = None,
        arena: Arena | None = None,
        name: str = "prog",
        resolve: Resolver | None = None,
    ) -> None:
        if isinstance(insns, bytes | bytearray | memoryview):
            insns = decode_program(bytes(insns))
        self.insns = list(insns)
        self.name = name
        self.arena = arena if arena is not None else shared_arena()
        self.helpers: dict[int, HelperFn] = dict(helpers or {})
        self.kfuncs: dict[int, HelperFn] = dict(kfuncs or {})
        if not self.insns:
            raise LinkError("empty program", program=name)
        for pc, insn in with_pcs(self.insns):
            found = select(insn.opcode, insn.dst_reg, insn.src_reg, insn.offset, insn.imm)
            if isinstance(found, str):
                raise DecodeError(found, pc=pc)
        self.cfg = build_cfg(self.insns)
        self.insns_by_pc = self.cfg.insns
        key = encode_program(self.insns)
        self._key = key
        compiled = _compile(key, self.cfg, False, name)
        self._globals = self._link(compiled, resolve)
        self._traced: dict[str, object] | None = None
        self._resolve = resolve
        self._main = cast(Callable[..., tuple[int, int]], self._globals[func_name(0)])
        self._funcs = self._function_map(self._globals)
        self._stacks: list[Region] = []

    def _link(self, compiled: _Compiled, resolve: Resolver | None) -> dict[str, object]:
        g: dict[str, object] = dict(_BASE_GLOBALS)
        g["VIEW"] = self.arena.view
        g["INSNS"] = self.insns_by_pc
        for hid in compiled.helpers:
            if hid not in self.helpers:
                pc = self._pc_of(lambda i, h=hid: i.spec.sem == "call_helper" and i.imm == h)
                raise LinkError(f"unknown helper {hid}", program=self.name, pc=pc)
            g[f"H{hid}"] = self.helpers[hid]
        for kid in compiled.kfuncs:
            if kid not in self.kfuncs:
                pc = self._pc_of(lambda i, k=kid: i.spec.sem == "call_kfunc" and i.imm == k)
                raise LinkError(f"unknown kfunc (BTF id {kid})", program=self.name, pc=pc)
            g[f"K{kid}"] = self.kfuncs[kid]
        for pc in compiled.constants:
            insn = self.insns_by_pc[pc]
            value = resolve(pc, insn) if resolve is not None else None
            if value is None:
                raise LinkError(f"unresolved {insn.spec.name}", program=self.name, pc=pc)
            g[f"C{pc}"] = value & M64
        entries = {fn.entry for fn in self.cfg.functions}
        for pc, insn in self.insns_by_pc.items():
            if insn.spec.sem == "lddw_func" and pc + 1 + insn.imm not in entries:
                raise LinkError(
                    f"lddw.func target pc {pc + 1 + insn.imm} is not an instruction",
                    program=self.name,
                    pc=pc,
                )
        exec(compiled.code, g)
        g["FUNCS"] = {func_pointer(e): g[func_name(e)] for e in entries}
        return g

    def _pc_of(self, match: Callable[[Instruction], bool]) -> int | None:
        return next((pc for pc, insn in self.insns_by_pc.items() if match(insn)), None)

    @property
    def source(self) -> str:
        """The generated Python source (for debugging the translation)."""
        return _compile(self._key, self.cfg, False, self.name).source

    def _traced_globals(self) -> dict[str, object]:
        if self._traced is None:
            compiled = _compile(self._key, self.cfg, True, self.name)
            self._traced = self._link(compiled, self._resolve)
        return self._traced

    def _traced_main(self) -> Callable[..., tuple[int, int]]:
        return cast(Callable[..., tuple[int, int]], self._traced_globals()[func_name(0)])

    @staticmethod
    def _function_map(g: dict[str, object]) -> Mapping[int, Callable[..., tuple[int, int]]]:
        return cast(Mapping[int, Callable[..., tuple[int, int]]], g["FUNCS"])

    def functions(self, *, traced: bool = False) -> Mapping[int, Callable[..., tuple[int, int]]]:
        """Function pointer value (`func_pointer`) -> the translated BPF function."""
        return self._function_map(self._traced_globals()) if traced else self._funcs

    def execute(
        self,
        r1: int = 0,
        r2: int = 0,
        r3: int = 0,
        r4: int = 0,
        r5: int = 0,
        *,
        budget: int | None = DEFAULT_BUDGET,
        trace: TraceFn | None = None,
        packet: tuple[int, int] | None = None,
        regions: Sequence[Region] | None = None,
        entry: int | None = None,
    ) -> Execution:
        """Run once. ``packet`` is the (address, length) LD_ABS/LD_IND read from;
        ``regions``, when given, are the only non-stack regions the run may touch;
        ``entry``, a function pointer, starts the run at that function instead of the
        program's first instruction (a timer or work-queue callback)."""
        main = self._main if trace is None else self._traced_main()
        if entry is not None:
            found = self.functions(traced=trace is not None).get(entry)
            if found is None:
                raise Trap(f"callback {entry:#x} is not a function of this program", pc=-1)
            main = found
        stacks = self._stacks
        try:
            stack = stacks.pop()
        except IndexError:
            stack = self.arena.alloc(_STACK_AREA, align=16, kind="stack", name=self.name)
        view = self.arena.view
        view[stack.start : stack.end] = _ZERO_STACK
        state = RunState(self, stack, budget, trace, packet, regions)
        lim = _UNLIMITED if budget is None else budget
        top = stack.end
        previous = getattr(_current, "state", None)
        _current.state = state
        arena = self.arena
        try:
            # enter/exit rather than `arena.epoch()`: no guard object per run.
            token = arena.enter_epoch()
            try:
                r0, n = main(
                    r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64, top, top, 0, lim, state
                )
            finally:
                arena.exit_epoch(token)
        except _PacketAbort as e:
            r0, n = 0, e.executed
        finally:
            _current.state = previous
            stacks.append(stack)
        return Execution(r0, n + state.callback_insns)

    def run(
        self,
        r1: int = 0,
        r2: int = 0,
        r3: int = 0,
        r4: int = 0,
        r5: int = 0,
        *,
        budget: int | None = DEFAULT_BUDGET,
        trace: TraceFn | None = None,
        packet: tuple[int, int] | None = None,
        regions: Sequence[Region] | None = None,
    ) -> int:
        """Run once and return r0 (see `execute` for the arguments)."""
        return self.execute(
            r1, r2, r3, r4, r5, budget=budget, trace=trace, packet=packet, regions=regions
        ).r0

    def close(self) -> None:
        """Give the cached stack areas back to the Arena."""
        while self._stacks:
            self.arena.free(self._stacks.pop())


_shared: Arena | None = None
_shared_lock = threading.Lock()


def shared_arena() -> Arena:
    """The Arena used when none is given (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Arena()
        return _shared


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished `run_program`: r0 (u64), the memory region after the run, instructions
    executed."""

    r0: int
    mem: bytes
    insns: int


def run_program(
    code: bytes | Sequence[Instruction],
    *,
    mem: bytes = b"",
    helpers: Mapping[int, HelperFn] | None = None,
    budget: int | None = DEFAULT_BUDGET,
    trace: TraceFn | None = None,
    arena: Arena | None = None,
    kfuncs: Mapping[int, HelperFn] | None = None,
    packet: bytes | None = None,
) -> RunOutcome:
    """Run a raw program once: r1 = address of a writable copy of ``mem`` (0 when empty),
    r2 = its length, r10 = the top of a fresh stack frame. ``packet``, when given, is copied
    into the Arena as what LD_ABS/LD_IND read."""
    arena = arena if arena is not None else shared_arena()
    interp = Interpreter(code, helpers=helpers, kfuncs=kfuncs, arena=arena)
    made: list[Region] = []
    try:
        region = None
        if mem:
            region = arena.alloc(len(mem), kind="mem", name="mem")
            made.append(region)
            arena.write(region.start, bytes(mem))
        where = None
        if packet:
            pkt = arena.alloc(len(packet), kind="packet", name="packet", writable=False)
            made.append(pkt)
            arena.view[pkt.start : pkt.end] = packet
            where = (pkt.start, len(packet))
        elif packet is not None:
            where = (0, 0)
        result = interp.execute(
            region.start if region else 0,
            len(mem),
            budget=budget,
            trace=trace,
            packet=where,
        )
        out = bytes(arena.view[region.start : region.end]) if region else b""
    finally:
        for r in made:
            arena.free(r)
        interp.close()
    return RunOutcome(result.r0, out, result.insns)


__all__ = [
    "DEFAULT_BUDGET",
    "Execution",
    "HelperFn",
    "Interpreter",
    "RunOutcome",
    "RunState",
    "current_run",
    "run_program",
    "shared_arena",
]

"""Orchestration: an object file -> maps created -> programs linked and prepared -> test runs.

Place in the pipeline: above the loader (``load_spec`` gives the ObjectSpec), the maps
(``create_map``), the helpers (declarations, run state, program-type contexts) and the VM
(``Interpreter``); below only the CLI. ``load_object`` does what libbpf's open + load does:

- one Arena per Object; every map of the spec created in it (inner-map templates for
  map-in-map, perf-event arrays sized to the CPU count as libbpf sizes them), global-data
  maps filled with their initial bytes, ``.rodata`` and ``.kconfig`` frozen (programs see
  them read-only through BPF_F_RDONLY_PROG), ``.kconfig`` externs filled from
  ``KCONFIG_VALUES`` (or the caller's ``kconfig``);
- each program linked: map references become the map's handle (its ``struct bpf_map *``),
  global-data references the value's address plus offset, kfunc calls resolved by BTF name
  against the HelperSet (a weak unknown kfunc is poisoned: calling it traps, as libbpf makes
  the verifier refuse it), ``__ksym`` addresses from ``ksyms`` (weak ones default to 0),
  callbacks and subprograms stay as the VM's function pointers; then prepared once as an
  ``Interpreter`` and reused by every run;
- prog-array and map-in-map slots initialised in ``.maps`` filled once everything exists.

``verify=True`` performs the load-time checks only (the verifier is not built yet): every
helper and kfunc a program calls exists, is allowed for its program type, and GPL-only ones
(and every kfunc) are called from GPL-compatible programs; failures raise
``VerificationError``. Memory safety is not verified: the interpreter checks every access at
run time and raises ``MemoryAccessError`` (with the C source line when line info exists).

``Program.run`` follows BPF_PROG_TEST_RUN (net/bpf/test_run.c): the ctx is built by the
program type's builder, the program runs ``repeat`` times on it inside an Arena epoch, the
duration is the average, retval is the last run's r0 as the u32 the kernel reports.
Helpers reach the run through a thread-local frame, so one prepared program can run on
several threads at once, each with its own ``RunContext``. ``bpf_tail_call`` replaces the
running function's frame by the prog-array slot's program (same ctx; at most
MAX_TAIL_CALL_CNT per run, subprograms' tail calls included): from the main function it
replaces the program; from a subprogram, as with the kernel's x86-64 JIT since 5.10, the
target (and the chain it starts) runs in the subprogram's place and its r0 becomes the
subprogram's return value, and the caller goes on with its registers and stack intact;
callbacks of bpf_loop / for_each_map_elem run on a frame below the caller's; timer and
work-queue callbacks run after the program returned, in the program that armed them.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from pybpf.btf import decode_value
from pybpf.conformance import check_engine
from pybpf.errors import (
    LinkError,
    NotFoundError,
    RunInputError,
    Trap,
    UnsupportedError,
    VerificationError,
)
from pybpf.helpers import (
    DEFAULT_HELPERS,
    AsyncEvent,
    BuiltContext,
    Environment,
    HelperSet,
    KfuncDecl,
    MapTable,
    RedirectRecord,
    RunContext,
    SharedState,
    build_context,
    prog_type_info,
)
from pybpf.helpers.context import MASK64, AsyncQueue
from pybpf.helpers.progtypes import convert_ctx_accesses
from pybpf.isa import Instruction, with_pcs
from pybpf.loader import MapSpec, ObjectSpec, ProgramSpec, RelocKind, StructOpsSpec, load_spec
from pybpf.maps import ArrayMap, BpfMap, ProgArrayMap, QueueMap, create_map
from pybpf.memory import Arena, Region
from pybpf.uapi import BpfMapType, BpfProgType
from pybpf.vm import DEFAULT_BUDGET, Interpreter, ReplaceFrame, current_run

HelperFn = Callable[[int, int, int, int, int], int]
T = TypeVar("T")
U32_MASK = 0xFFFFFFFF


def kernel_version(major: int, minor: int, patch: int) -> int:
    """The KERNEL_VERSION(a, b, c) macro of linux/version.h (the patch level saturates)."""
    return (major << 16) + (minor << 8) + min(patch, 255)


# The ``__kconfig`` values a loaded object sees, as libbpf would read them on the kernel pybpf
# follows (Linux 6.6, x86-64, the options BPF needs enabled; y = 1). ``CONFIG_HZ`` comes from
# the Environment. Pass ``kconfig=`` to load_object to add or override values; a strong extern
# found nowhere is a LinkError (libbpf fails the load), a weak one reads 0.
KCONFIG_VALUES: Mapping[str, int] = {
    "LINUX_KERNEL_VERSION": kernel_version(6, 6, 0),
    "LINUX_HAS_BPF_COOKIE": 1,
    "LINUX_HAS_SYSCALL_WRAPPER": 1,
    "CONFIG_BPF": 1,
    "CONFIG_BPF_SYSCALL": 1,
    "CONFIG_BPF_JIT": 1,
    "CONFIG_BPF_EVENTS": 1,
    "CONFIG_SMP": 1,
    "CONFIG_64BIT": 1,
    "CONFIG_X86_64": 1,
}


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One ``Program.run``: what BPF_PROG_TEST_RUN reports, and what pybpf saw besides.

    ``retval`` is r0 cut to the u32 the kernel returns (``r0`` keeps all 64 bits); ``data``
    the packet after the run (data_out) or None for packet-less types; ``ctx`` the ctx_out
    bytes (None when the kernel returns none); ``duration_ns`` the average over ``repeat``
    runs; ``output`` the trace_printk lines of every repetition; ``redirect`` the last
    redirect requested; ``tail_calls`` how many tail calls the last run took (subprograms'
    included); ``async_ran`` the timer / work-queue callbacks that ran; ``insns`` the
    instructions the last run executed (the final program of a main-level tail-call chain,
    with its callbacks and the programs its subprograms' tail calls ran); ``program`` the
    name of that final program.
    """

    retval: int
    r0: int
    data: bytes | None
    ctx: bytes | None
    duration_ns: int
    output: list[str]
    redirect: RedirectRecord | None
    tail_calls: int
    async_ran: list[AsyncEvent]
    insns: int
    program: str


class Names(Mapping[str, T], Generic[T]):
    """A read-only name -> object mapping whose misses are ``NotFoundError`` (a KeyError)."""

    def __init__(self, kind: str, items: dict[str, T]) -> None:
        self._kind = kind
        self._items = items

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise NotFoundError(self._kind, name, list(self._items)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<{self._kind} names: {', '.join(self._items) or 'none'}>"


# ---- the run in progress on this thread, as the helper closures see it ---------------------


class _Frame:
    """The run a helper call belongs to, the program executing (tail calls change it), what
    a tail call's target runs with, and how many tail calls the run took."""

    __slots__ = ("budget", "built", "program", "run", "tail_calls", "trace")

    def __init__(
        self,
        run: RunContext,
        program: Program,
        built: BuiltContext,
        budget: int | None,
        trace: Callable[..., None] | None,
    ) -> None:
        self.run = run
        self.program = program
        self.built = built
        self.budget = budget
        self.trace = trace
        self.tail_calls = 0


_frames = threading.local()


class _TailCall(ReplaceFrame):
    """Raised by the tail-call helper. Inside a subprogram the VM catches it at the helper's
    call site and the target's chain runs in place of the subprogram's frame, its r0 becoming
    the subprogram's (the kernel's x86-64 JIT since 5.10); from the main function it unwinds
    the running program, which `_run_chain` replaces by the target. Never escapes a run."""

    def __init__(self, frame: _Frame, target: Program) -> None:
        super().__init__(self._replace)
        self.frame = frame
        self.target = target

    def _replace(self) -> tuple[int, int]:
        frame = self.frame
        caller = frame.program
        frame.tail_calls += 1
        try:
            _, r0, insns = _run_chain(frame, self.target)
        finally:
            frame.program = caller
        return r0, insns


def _run_chain(frame: _Frame, prog: Program) -> tuple[Program, int, int]:
    """Run ``prog`` and the tail calls its main function takes: (last program, r0, insns of
    the last program)."""
    built = frame.built
    while True:
        frame.program = prog
        p = built.packet
        packet = None if p is None else (p.data, p.data_end - p.data)
        try:
            ex = prog.prepare().execute(
                built.ctx_addr, budget=frame.budget, trace=frame.trace, packet=packet
            )
        except _TailCall as jump:
            prog = jump.target
            frame.tail_calls += 1
            continue
        except Trap as e:
            prog._annotate(e)
            raise
        return prog, ex.r0, ex.insns


class _ProgramQueue(AsyncQueue):
    """The run's async queue, remembering which program armed each callback: a callback's
    function pointer means something only in that program."""

    def __init__(self, frame: _Frame) -> None:
        super().__init__()
        self._frame = frame
        self._armed_by: dict[int, Program] = {}
        self.current: Program | None = None

    def push(
        self,
        due: int,
        kind: str,
        address: int,
        generation: int,
        callback: int,
        args: tuple[int, ...],
    ) -> None:
        super().push(due, kind, address, generation, callback, args)
        self._armed_by[self._seq] = self._frame.program

    def pop(self) -> Any:
        item = super().pop()
        self.current = None if item is None else self._armed_by.pop(item.seq, None)
        return item


def _frame() -> _Frame:
    frame: _Frame | None = getattr(_frames, "frame", None)
    if frame is None:
        raise Trap("helper called outside a program run", pc=-1)
    return frame


def _dispatch(impl: Callable[..., int]) -> HelperFn:
    """A helper as the interpreter calls it: the implementation applied to the thread's run."""

    def call(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        frame = _frame()
        run = frame.run
        r0 = impl(run, r1, r2, r3, r4, r5)
        if run.tail_call is not None:
            r0 = _tail_call(frame)
        return r0 & MASK64

    return call


def _tail_call(frame: _Frame) -> int:
    """Act on the request the tail-call helper left: jump, or fall through (-ENOENT) when the
    slot is empty or holds a program of another type (the kernel refuses storing one)."""
    run = frame.run
    request, run.tail_call = run.tail_call, None
    if request is None or not isinstance(request.map, ProgArrayMap):
        return -errno.EINVAL
    target = request.map.tail_call_target(request.index)
    if isinstance(target, str):
        target = frame.program.object.programs.get(target)
    if isinstance(target, Program) and target.prog_type is frame.program.prog_type:
        raise _TailCall(frame, target)
    return -errno.ENOENT


def _poisoned(name: str) -> HelperFn:
    def call(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        raise Trap(f"call of weak kfunc {name!r}, which the runtime does not provide", pc=-1)

    return call


# ---- ctx arguments ---------------------------------------------------------------------------


def encode_ctx(prog_type: BpfProgType, ctx: Any) -> bytes | None:
    """A user ctx as the bytes ``ctx_in`` would hold.

    Accepted: bytes; a mapping of ctx field names (of the type's UAPI struct; ``arg0``..
    ``arg11`` for u64-argument types) to ints or bytes of the field's size; a sequence of
    ints, the u64 argument array. RunInputError (EINVAL) for anything else.
    """
    if ctx is None:
        return None
    if isinstance(ctx, bytes | bytearray | memoryview):
        return bytes(ctx)
    if isinstance(ctx, Mapping):
        return _encode_fields(prog_type, ctx)
    if isinstance(ctx, Sequence) and not isinstance(ctx, str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ctx):
            raise RunInputError(errno.EINVAL, "a ctx list must hold integers (u64 arguments)")
        return b"".join(struct.pack("<Q", v & MASK64) for v in ctx)
    raise RunInputError(
        errno.EINVAL,
        f"ctx must be bytes, a mapping of field names or a list of u64 arguments, "
        f"not {type(ctx).__name__}",
    )


def _encode_fields(prog_type: BpfProgType, ctx: Mapping[Any, Any]) -> bytes:
    info = prog_type_info(prog_type)
    layout = info.ctx
    if layout is None:
        raise RunInputError(errno.EINVAL, f"{info.name} programs take ctx bytes, not fields")
    out = bytearray(layout.size)
    end = 0
    for name, value in ctx.items():
        f = layout.by_name.get(name) if isinstance(name, str) else None
        if f is None:
            known = ", ".join(layout.by_name)
            raise RunInputError(errno.EINVAL, f"{layout.struct} has no field {name!r} ({known})")
        if isinstance(value, bytes | bytearray):
            raw = bytes(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -(1 << (8 * f.size - 1)) <= value < 1 << (8 * f.size):
                raise RunInputError(errno.EINVAL, f"{name} = {value} does not fit {f.size} bytes")
            raw = (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")
        else:
            raise RunInputError(
                errno.EINVAL, f"{name}: an int or bytes, not {type(value).__name__}"
            )
        if len(raw) != f.size:
            raise RunInputError(errno.EINVAL, f"{name} takes {f.size} bytes, got {len(raw)}")
        out[f.offset : f.end] = raw
        end = max(end, f.end)
    return bytes(out[:end]) if info.run == "args" else bytes(out)


# ---- programs --------------------------------------------------------------------------------


class Program:
    """One program of a loaded object: linked on load, prepared once, run many times."""

    def __init__(self, obj: Object, spec: ProgramSpec) -> None:
        self.object = obj
        self.spec = spec
        self.name = spec.name
        self.prog_type = spec.prog_type
        self.section = spec.section
        self.autoload = spec.autoload
        self._interp: Interpreter | None = None
        self._lock = threading.Lock()

    @property
    def type(self) -> str:
        """The program type's short name: ``xdp``, ``socket_filter``, ``sched_cls``, ..."""
        return self.spec.type

    def __repr__(self) -> str:
        return f"<Program {self.name!r} {self.type} section {self.section!r}>"

    # -- loading -------------------------------------------------------------------------------

    def prepare(self) -> Interpreter:
        """Link and prepare the program (once; later calls return the same Interpreter)."""
        interp = self._interp
        if interp is not None:
            return interp
        with self._lock:
            if self._interp is None:
                if self.object.verify:
                    self.object.check_calls(self.spec)
                insns, values = self.object.link(self.spec)
                self._interp = Interpreter(
                    convert_ctx_accesses(insns, self.prog_type),
                    helpers=self.object.helper_fns,
                    kfuncs=self.object.kfunc_fns,
                    arena=self.object.arena,
                    name=self.name,
                    resolve=lambda pc, insn: values.get(pc),
                )
            return self._interp

    def source_line(self, pc: int) -> str | None:
        """``file:line: source`` of the C line that compiled to ``pc`` (None without line info)."""
        record = self.spec.line_at(pc)
        if record is None or not record.source:
            return None
        return f"{record.file}:{record.line}: {record.source.strip()}"

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        data: bytes | None = None,
        ctx: Any = None,
        repeat: int = 1,
        engine: str | None = None,
        *,
        budget: int | None = DEFAULT_BUDGET,
        trace: Callable[..., None] | None = None,
        cpu: int | None = None,
    ) -> RunResult:
        """Run as BPF_PROG_TEST_RUN does: ``data`` is data_in, ``ctx`` ctx_in (bytes, field
        mapping or u64 list, see ``encode_ctx``), ``repeat`` how many runs (0 means 1).
        ``cpu`` is the CPU the run is on (bpf_get_smp_processor_id, per-CPU map slots), as
        BPF_F_TEST_RUN_ON_CPU asks; by default the calling thread's (`Object.thread_cpu`)."""
        check_engine(engine or self.object.engine)
        ncpus = self.object.env.ncpus
        if cpu is None:
            cpu = self.object.thread_cpu()
        elif not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu < ncpus:
            raise RunInputError(errno.EINVAL, f"cpu must be an int in 0..{ncpus - 1}, not {cpu!r}")
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
            raise RunInputError(errno.EINVAL, f"repeat must be a non-negative int, not {repeat!r}")
        if data is not None and not isinstance(data, bytes | bytearray | memoryview):
            raise RunInputError(errno.EINVAL, f"data must be bytes, not {type(data).__name__}")
        self.prepare()
        obj = self.object
        built = build_context(
            obj.arena,
            self.prog_type,
            bytes(data) if data else None,
            encode_ctx(self.prog_type, ctx),
            repeat=repeat,
            insns=self.prepare().insns,
        )
        total = 0
        output: list[str] = []
        async_ran: list[AsyncEvent] = []
        try:
            for _ in range(max(repeat, 1)):
                run = RunContext(
                    obj.arena,
                    maps=obj.map_table,
                    env=obj.env,
                    shared=obj.shared,
                )
                run.cpu = cpu
                built.attach(run)
                frame = _Frame(run, self, built, budget, trace)
                run.async_queue = _ProgramQueue(frame)
                run.install_call_function(self._callback_runner(frame, budget, trace))
                previous = getattr(_frames, "frame", None)
                _frames.frame = frame
                try:
                    start = time.perf_counter_ns()
                    last, r0, insns = _run_chain(frame, self)
                    total += time.perf_counter_ns() - start
                    async_ran += run.drain_async()
                finally:
                    _frames.frame = previous
                    run.finish()
                output += run.output
            return RunResult(
                retval=r0 & U32_MASK,
                r0=r0,
                data=built.data_out(),
                ctx=built.ctx_out(),
                duration_ns=total // max(repeat, 1),
                output=output,
                redirect=run.redirect,
                tail_calls=frame.tail_calls,
                async_ran=async_ran,
                insns=insns,
                program=last.name,
            )
        finally:
            built.free()

    def _callback_runner(
        self, frame: _Frame, budget: int | None, trace: Callable[..., None] | None
    ) -> Callable[..., int]:
        """The run's call_function hook: inside a run, a callback on a deeper frame; after it
        (timers, work queues), a fresh execution starting at the callback."""

        def call(func_ptr: int, *args: int) -> int:
            state = current_run()
            if state is not None:
                return state.call_function(func_ptr, *args)
            queue = frame.run.async_queue
            prog = queue.current if isinstance(queue, _ProgramQueue) and queue.current else self
            frame.program = prog
            try:
                regs = (*args, 0, 0, 0, 0, 0)[:5]
                return prog.prepare().execute(*regs, budget=budget, trace=trace, entry=func_ptr).r0
            except Trap as e:
                prog._annotate(e)
                raise

        return call

    def _annotate(self, e: Trap) -> None:
        """Name the program and, with line info, the C source line in the trap's message."""
        e.locate(self.name, self.source_line(e.pc) if e.pc >= 0 else None)


class StructOps:
    """A struct_ops variable: its data, and the programs its function-pointer members name."""

    def __init__(self, obj: Object, spec: StructOpsSpec) -> None:
        self.object = obj
        self.spec = spec
        self.name = spec.name
        self.type_name = spec.type_name
        self.data = spec.data
        self.link = spec.link
        self.members: Names[Program] = Names(
            "struct_ops member", {m: obj.programs[p] for m, p in spec.members.items()}
        )

    def __repr__(self) -> str:
        return f"<StructOps {self.name!r} struct {self.type_name}: {', '.join(self.members)}>"

    def __getitem__(self, member: str) -> Program:
        return self.members[member]

    @property
    def value(self) -> Any:
        """The variable's initial value decoded through BTF (function pointers read 0)."""
        btf = self.object.spec.btf
        return decode_value(btf, self.spec.type_id, self.data)

    def call(self, member: str, *args: int | bytes | bytearray) -> RunResult:
        """Run the program bound to ``member`` with u64 arguments.

        An int argument is passed as it is; a bytes / bytearray argument is copied into the
        Arena and passed as a pointer to it (a bytearray receives the bytes back after the run,
        so a program writing through the pointer is observable).
        """
        prog = self.members[member]
        arena = self.object.arena
        regions: list[tuple[Region, bytes | bytearray]] = []
        values: list[int] = []
        try:
            for a in args:
                if isinstance(a, bytes | bytearray):
                    region = arena.alloc(max(len(a), 1), kind="mem", name=f"{member} argument")
                    arena.write(region.start, bytes(a))
                    regions.append((region, a))
                    values.append(region.start)
                elif isinstance(a, int) and not isinstance(a, bool):
                    values.append(a)
                else:
                    raise RunInputError(
                        errno.EINVAL,
                        f"struct_ops arguments are ints or bytes, not {type(a).__name__}",
                    )
            result = prog.run(ctx=values)
            for region, a in regions:
                if isinstance(a, bytearray):
                    a[:] = arena.read(region.start, len(a))
            return result
        finally:
            for region, _ in regions:
                arena.defer_free(region)


# ---- the object ------------------------------------------------------------------------------


class Object:
    """A loaded object: its maps, programs and struct_ops, all in one Arena."""

    def __init__(
        self,
        spec: ObjectSpec,
        *,
        engine: str = "interp",
        verify: bool = True,
        env: Environment | None = None,
        ncpus: int | None = None,
        helpers: HelperSet = DEFAULT_HELPERS,
        ksyms: Mapping[str, int] | None = None,
        kconfig: Mapping[str, int] | None = None,
    ) -> None:
        check_engine(engine)
        self.spec = spec
        self.name = spec.name
        self.license = spec.license
        self.version = spec.version
        self.engine = engine
        self.verify = verify
        self.helper_set = helpers
        if env is None:
            env = Environment(ncpus=ncpus or 1)
        elif ncpus is not None and ncpus != env.ncpus:
            env = dataclasses.replace(env, ncpus=ncpus)
        self.env = env
        self.ksyms = dict(ksyms or {})
        self.kconfig = {**KCONFIG_VALUES, "CONFIG_HZ": env.hz, **(kconfig or {})}
        self.arena = Arena()
        self.shared = SharedState()
        self.map_table = MapTable(self.arena)
        self.helper_fns: dict[int, HelperFn] = {
            hid: _dispatch(d.impl) for hid, d in helpers.by_id.items()
        }
        self.kfunc_fns: dict[int, HelperFn] = {}
        self._kfunc_ids: dict[str, int] = {}
        self._kfunc_lock = threading.Lock()
        self._thread_cpus: dict[int, int] = {}
        self._thread_cpus_lock = threading.Lock()
        try:
            self.maps: Names[BpfMap] = Names("map", self._create_maps())
            self.programs: Names[Program] = Names(
                "program", {name: Program(self, p) for name, p in spec.programs.items()}
            )
            for prog in self.programs.values():
                if prog.autoload:
                    prog.prepare()
            self._fill_slots()
            self.struct_ops: Names[StructOps] = Names(
                "struct_ops", {n: StructOps(self, s) for n, s in spec.struct_ops.items()}
            )
        except BaseException:
            self.arena.close()
            raise

    def thread_cpu(self) -> int:
        """The CPU the calling thread's runs use: the first thread to run gets ``env.cpu``,
        each further thread the next CPU (modulo ``env.ncpus``), so that threads running at
        once use their own per-CPU map slots as programs on different CPUs do."""
        ident = threading.get_ident()
        with self._thread_cpus_lock:
            cpu = self._thread_cpus.get(ident)
            if cpu is None:
                cpu = (self.env.cpu + len(self._thread_cpus)) % self.env.ncpus
                self._thread_cpus[ident] = cpu
            return cpu

    def __repr__(self) -> str:
        return (
            f"<Object {self.name!r}: {len(self.programs)} programs, {len(self.maps)} maps, "
            f"license {self.license!r}>"
        )

    def close(self) -> None:
        """Unmap the object's Arena; the object, its maps and programs are unusable after."""
        self.arena.close()

    def __enter__(self) -> Object:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- maps ----------------------------------------------------------------------------------

    def _create_maps(self) -> dict[str, BpfMap]:
        maps: dict[str, BpfMap] = {}
        for spec in self.spec.maps.values():
            if not spec.autocreate:
                continue
            inner = self._new_map(spec.inner, None) if spec.inner is not None else None
            m = self._new_map(spec, inner)
            if spec.internal is not None:
                self._fill_data(m, spec)
            self.map_table.register(m)
            maps[spec.name] = m
        return maps

    def _new_map(self, spec: MapSpec, inner: BpfMap | None) -> BpfMap:
        max_entries = spec.max_entries
        if spec.type is BpfMapType.PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = self.env.ncpus
        key_type, value_type = spec.key_type_id, spec.value_type_id
        if not value_type or spec.internal == "kconfig":
            # libbpf drops the BTF of reference-holding maps (their value has no type) and
            # lays .kconfig out itself, so neither keeps its type ids.
            key_type = value_type = 0
        return create_map(
            self.arena,
            name=spec.name,
            map_type=spec.type,
            key_size=spec.key_size,
            value_size=spec.value_size,
            max_entries=max_entries,
            map_flags=spec.map_flags,
            map_extra=spec.map_extra,
            inner=inner,
            btf=self.spec.btf,
            key_type_id=key_type,
            value_type_id=value_type,
            ncpus=self.env.ncpus,
        )

    def _fill_data(self, m: BpfMap, spec: MapSpec) -> None:
        data = spec.data
        if spec.internal == "kconfig":
            data = self._kconfig_data(spec)
        if data:
            m.update(0, bytes(data).ljust(spec.value_size, b"\0"))
        if spec.internal in ("rodata", "kconfig"):
            m.freeze()

    def _kconfig_data(self, spec: MapSpec) -> bytes:
        out = bytearray(spec.value_size)
        for ext in self.spec.externs.values():
            if ext.kind != "kconfig":
                continue
            value = self.kconfig.get(ext.lookup_name)
            if value is None:
                if not ext.weak:
                    raise LinkError(f"kconfig extern {ext.name!r} has no value (pass kconfig=)")
                continue
            mask = (1 << (8 * ext.size)) - 1
            out[ext.offset : ext.offset + ext.size] = (value & mask).to_bytes(ext.size, "little")
        return bytes(out)

    def _fill_slots(self) -> None:
        """Initial prog-array and map-in-map slots, as libbpf fills them after loading."""
        for spec in self.spec.maps.values():
            if not spec.init_slots or spec.name not in self.maps:
                continue
            m = self.maps[spec.name]
            for slot, target in sorted(spec.init_slots.items()):
                if spec.type is BpfMapType.PROG_ARRAY:
                    m.update(slot, self.programs[target])
                else:
                    m.update(slot, self.maps[target])

    def map_state(self) -> dict[str, Any]:
        """A hex snapshot of every keyed map and queue/stack, for before/after comparisons.

        Keyed maps give ``{key hex: value hex}`` (per-CPU maps a list of per-CPU value hex
        strings); queues and stacks the list of values in pop order. Maps holding references
        (prog arrays, map-in-map), ring buffers and perf-event arrays are left out.
        """
        state: dict[str, Any] = {}
        for name, m in self.maps.items():
            if isinstance(m, QueueMap):
                state[name] = [bytes(v).hex() for v in _raw_queue(m)]
            elif m.map_type in _SNAPSHOT_TYPES:
                state[name] = {k.hex(): _hex_value(v) for k, v in _raw_items(m)}
        return state

    # -- linking -------------------------------------------------------------------------------

    def check_calls(self, spec: ProgramSpec) -> None:
        """The load-time checks ``verify=True`` performs (see the module docstring)."""
        gpl = self.spec.gpl_compatible
        where = f"program {spec.name} ({spec.type})"
        for pc, insn in with_pcs(spec.insns):
            sem = insn.spec.sem
            if sem == "call_helper":
                decl = self.helper_set.by_id.get(insn.imm)
                if decl is None:
                    raise LinkError(f"unknown helper {insn.imm}", program=spec.name, pc=pc)
                if not decl.allowed_in(spec.prog_type):
                    raise VerificationError(
                        f"{where}, pc {pc}: helper bpf_{decl.name}#{insn.imm} "
                        f"is not allowed in {spec.type} programs"
                    )
                if decl.gpl_only and not gpl:
                    raise VerificationError(
                        f"{where}, pc {pc}: cannot call GPL-restricted function "
                        f"bpf_{decl.name} from non-GPL compatible program "
                        f"(license {self.license!r})"
                    )
        for rel in spec.relocations:
            if rel.kind is not RelocKind.KFUNC:
                continue
            decl = self.helper_set.by_name.get(rel.target)
            if not isinstance(decl, KfuncDecl):
                continue
            if not gpl:
                raise VerificationError(
                    f"{where}, pc {rel.pc}: cannot call kernel function {rel.target} "
                    f"from non-GPL compatible program (license {self.license!r})"
                )
            if not decl.allowed_in(spec.prog_type):
                raise VerificationError(
                    f"{where}, pc {rel.pc}: kfunc {rel.target} is not allowed in "
                    f"{spec.type} programs"
                )

    def link(self, spec: ProgramSpec) -> tuple[list[Instruction], dict[int, int]]:
        """The program's instructions with kfunc ids and ksym addresses written in, and the
        values of its map / global-data / kconfig loads by pc."""
        insns = list(spec.insns)
        index = {pc: i for i, (pc, _) in enumerate(with_pcs(insns))}
        values: dict[int, int] = {}
        for rel in spec.relocations:
            where = {"program": spec.name, "pc": rel.pc}
            i = index[rel.pc]
            if rel.kind is RelocKind.MAP_FD:
                values[rel.pc] = self._map_for(rel.target, spec, rel.pc).handle
            elif rel.kind is RelocKind.MAP_VALUE:
                values[rel.pc] = self._value_base(rel.target, spec, rel.pc) + rel.offset
            elif rel.kind is RelocKind.KCONFIG:
                kconfig = next(m.name for m in self.spec.maps.values() if m.internal == "kconfig")
                values[rel.pc] = self._value_base(kconfig, spec, rel.pc) + rel.offset
            elif rel.kind is RelocKind.KSYM:
                address = self._ksym(rel.target, rel.weak, spec, rel.pc)
                insns[i] = dataclasses.replace(
                    insns[i], imm=_s32(address & U32_MASK), next_imm=_s32(address >> 32)
                )
            elif rel.kind is RelocKind.KFUNC:
                kid = self._kfunc_id(rel.target, rel.weak, where)
                insns[i] = dataclasses.replace(insns[i], imm=kid)
        return insns, values

    def _map_for(self, name: str, spec: ProgramSpec, pc: int) -> BpfMap:
        m = self.maps.get(name)
        if m is None:
            raise LinkError(
                f"map {name!r} was not created (autocreate off)", program=spec.name, pc=pc
            )
        return m

    def _value_base(self, name: str, spec: ProgramSpec, pc: int) -> int:
        m = self._map_for(name, spec, pc)
        if not isinstance(m, ArrayMap):
            raise LinkError(f"map {name!r} holds no global data", program=spec.name, pc=pc)
        return m.values_base

    def _ksym(self, name: str, weak: bool, spec: ProgramSpec, pc: int) -> int:
        if name in self.ksyms:
            return self.ksyms[name] & MASK64
        if isinstance(self.helper_set.by_name.get(name), KfuncDecl):
            # The address of a kfunc (``if (bpf_some_kfunc)``): any non-zero value means
            # "exists"; its call id is as good as any.
            return self._kfunc_id(name, weak, {"program": spec.name, "pc": pc})
        if weak:
            return 0
        raise LinkError(
            f"ksym {name!r} is unknown (give its address: load_object(ksyms=...) or"
            f" pybpf run --ksym {name}=ADDR)",
            program=spec.name,
            pc=pc,
        )

    def _kfunc_id(self, name: str, weak: bool, where: dict[str, Any]) -> int:
        with self._kfunc_lock:
            kid = self._kfunc_ids.get(name)
            if kid is not None:
                return kid
            decl = self.helper_set.by_name.get(name)
            if isinstance(decl, KfuncDecl):
                fn = _dispatch(decl.impl)
            elif weak:
                fn = _poisoned(name)
            else:
                raise LinkError(f"unknown kfunc {name!r}", **where)
            kid = len(self._kfunc_ids) + 1
            self._kfunc_ids[name] = kid
            self.kfunc_fns[kid] = fn
            return kid


_SNAPSHOT_TYPES = frozenset(
    {
        BpfMapType.HASH,
        BpfMapType.ARRAY,
        BpfMapType.PERCPU_HASH,
        BpfMapType.PERCPU_ARRAY,
        BpfMapType.LRU_HASH,
        BpfMapType.LRU_PERCPU_HASH,
        BpfMapType.LPM_TRIE,
    }
)


def _s32(v: int) -> int:
    v &= U32_MASK
    return v - (1 << 32) if v >> 31 else v


def _raw_items(m: BpfMap) -> list[tuple[bytes, Any]]:
    """(key bytes, value bytes or per-CPU list) of every element, re-encoded from what the
    userspace face returns (BTF-decoded values encode back to their bytes)."""
    return [(m.encode_key(k), m.encode_value(v)) for k, v in m.items()]


def _raw_queue(m: QueueMap) -> list[bytes]:
    return [m.encode_value(v) for v in m.snapshot()]


def _hex_value(v: Any) -> Any:
    if isinstance(v, list):
        return [bytes(x).hex() for x in v]
    return bytes(v).hex()


def load_object(
    src: str | Path | bytes,
    *,
    engine: str = "interp",
    verify: bool = True,
    target_btf: Any = None,
    env: Environment | None = None,
    ncpus: int | None = None,
    helpers: HelperSet = DEFAULT_HELPERS,
    ksyms: Mapping[str, int] | None = None,
    kconfig: Mapping[str, int] | None = None,
    name: str | None = None,
) -> Object:
    """Load an object file (path or bytes) the way libbpf opens and loads it (module doc).

    ``target_btf`` is what CO-RE relocations resolve against; ``env`` the deterministic
    Environment of every run (``ncpus`` overrides its CPU count); ``helpers`` the helper
    and kfunc declarations programs may call; ``ksyms`` addresses of ``__ksym`` variables;
    ``kconfig`` values of ``__kconfig`` externs beyond ``KCONFIG_VALUES``.
    """
    check_engine(engine)
    if not isinstance(helpers, HelperSet):
        raise UnsupportedError("helpers", f"a HelperSet is needed, not {type(helpers).__name__}")
    spec = load_spec(src, target_btf=target_btf, name=name)
    return Object(
        spec,
        engine=engine,
        verify=verify,
        env=env,
        ncpus=ncpus,
        helpers=helpers,
        ksyms=ksyms,
        kconfig=kconfig,
    )

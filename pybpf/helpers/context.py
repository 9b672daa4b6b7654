"""The run state helpers work on: one RunContext per program run, one SharedState per runtime.

Place in the pipeline: built by the object layer (``object.py``) for each ``prog.run``, handed to
:func:`pybpf.helpers.bind.bind`, read back after the run. Helpers see the world only through
it:

- ``arena``: the one Arena; pointers in registers are its virtual addresses.
- ``env``: the deterministic :class:`Environment` (virtual clock, prandom seed, pid/tgid,
  uid/gid, comm, cpu, ncpus).
- ``maps``: a :class:`MapTable`: a map "pointer" in a register (what ``lddw rX, map`` loads)
  is the virtual address of a small per-map region the table allocated; the table maps it
  back to the map object.
- ``output``: trace_printk lines; ``redirect``: the last redirect request;
  ``tail_call``: a pending tail call the VM must act on; ``async_log``: the timer and
  work-queue callbacks that ran.
- ``packet``: the packet and the ctx fields that point into it (for adjust_head/tail/meta
  and the skb byte helpers).
- ``call_function``: the hook the VM installs to call a BPF callback (bpf_loop,
  for_each_map_elem, timers, work queues) with up to five arguments.

Timers and work queues live in map values and so outlive a run: their state is kept in the
runtime-wide :class:`SharedState`, keyed by the address of the ``bpf_timer`` / ``bpf_wq`` in
the Arena (spin locks are the map runtime's per-address locks). Callbacks they schedule go
to the run's :class:`AsyncQueue` and run, in virtual-time order, when the object layer
calls :meth:`RunContext.drain_async` after the program returned.
"""

from __future__ import annotations

import heapq
import random
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pybpf.errors import ExhaustionError, LinkError, Trap, UnsupportedError
from pybpf.maps.base import map_by_handle
from pybpf.memory import Arena, Region
from pybpf.uapi import BpfMapType, BpfProgType

MASK64 = (1 << 64) - 1
MAX_TAIL_CALL_CNT = 33  # include/linux/bpf.h
MAP_PTR_REGION_SIZE = 64
TASK_COMM_LEN = 16
NSEC_PER_SEC = 1_000_000_000

CallFunction = Callable[..., int]


@dataclass(frozen=True, slots=True)
class Environment:
    """The deterministic world a run sees. Every value a helper reports comes from here.

    The virtual clock starts at ``clock_start_ns`` and advances by ``clock_step_ns`` after
    every read (so two reads are never equal, like the real clock); ``boot_offset_ns`` is
    added for ktime_get_boot_ns. ``hz`` sets the jiffy length for jiffies64 and
    ktime_get_coarse_ns. ``max_async_callbacks`` bounds how many timer / work-queue callbacks
    one drain runs (a periodic timer re-arming itself would otherwise never stop).
    """

    clock_start_ns: int = 1_000_000_000
    clock_step_ns: int = 1000
    boot_offset_ns: int = 0
    hz: int = 250
    jiffies_start: int = 4294667296  # INITIAL_JIFFIES on 64-bit kernels: (u32)-300*HZ
    prandom_seed: int = 0
    pid: int = 1000
    tgid: int = 1000
    uid: int = 0
    gid: int = 0
    comm: str = "pybpf"
    cpu: int = 0
    ncpus: int = 1
    max_async_callbacks: int = 1024

    def __post_init__(self) -> None:
        if not 0 <= self.cpu < self.ncpus:
            raise UnsupportedError("environment", f"cpu {self.cpu} outside 0..{self.ncpus - 1}")
        if self.hz <= 0 or self.clock_step_ns < 0:
            raise UnsupportedError("environment", "hz must be positive, clock step >= 0")


class MapTable:
    """Register values that stand for maps.

    A map pointer (what ``lddw rX, map`` loads and helpers receive) is the virtual address of
    a small read-only Arena region standing for the map: the map's own ``handle`` for
    :mod:`pybpf.maps` maps (``struct bpf_map *``), found through
    :func:`pybpf.maps.base.map_by_handle`; for other map-like objects (user-made or test
    doubles) :meth:`register` allocates a ``MAP_PTR_REGION_SIZE``-byte region of kind
    ``"map"``. A real region means a program cannot forge a map pointer from an integer, and
    a stray dereference of one is an ordinary read-only memory access.
    """

    def __init__(self, arena: Arena) -> None:
        self._arena = arena
        self._by_addr: dict[int, Any] = {}
        self._addr_of: dict[int, int] = {}
        self._lock = threading.Lock()

    def register(self, m: Any, name: str = "") -> int:
        """The map pointer value of ``m`` (allocating a handle region if it has none)."""
        handle = getattr(m, "handle", None)
        with self._lock:
            if isinstance(handle, int) and handle:
                self._by_addr[handle] = m
                self._addr_of[id(m)] = handle
                return handle
            existing = self._addr_of.get(id(m))
            if existing is not None:
                return existing
            region = self._arena.alloc(
                MAP_PTR_REGION_SIZE,
                kind="map",
                name=name or str(getattr(m, "name", "")),
                writable=False,
            )
            self._by_addr[region.start] = m
            self._addr_of[id(m)] = region.start
            return region.start

    def address_of(self, m: Any) -> int:
        addr = self._addr_of.get(id(m))
        if addr is not None:
            return addr
        handle = getattr(m, "handle", None)
        if isinstance(handle, int) and handle:
            return handle
        raise LinkError(f"map {getattr(m, 'name', m)!r} is not registered")

    def get(self, addr: int) -> Any | None:
        m = self._by_addr.get(addr)
        return m if m is not None else map_by_handle(self._arena, addr)

    def __getitem__(self, addr: int) -> Any:
        m = self.get(addr)
        if m is None:
            raise Trap(f"{addr:#x} is not a map pointer", pc=-1)
        return m


@dataclass(slots=True)
class Frag:
    """One fragment of a multi-buffer XDP packet (an skb_shared_info frag): a page of the
    Arena holding the packet's bytes ``[start, start + size)``."""

    start: int
    size: int


@dataclass(slots=True)
class PacketState:
    """Where the packet is, in the Arena, and which ctx fields mirror its pointers.

    ``hard_start``..``hard_end`` is the buffer a program may grow the packet into (XDP:
    ``frame_sz`` minus the reserved skb_shared_info tail); ``data_meta <= data <= data_end``.
    ``ctx_fields`` maps "data" / "data_end" / "data_meta" to the ctx offset of the u32 field
    that must be rewritten when a helper moves that pointer. ``frame_reserved`` is the
    ``struct xdp_frame`` room at the head the kernel never lets data reach. ``frags`` are
    an XDP packet's bytes past the linear part, in order (``frag_room`` bytes each at most).
    """

    region: Region
    hard_start: int
    hard_end: int
    data: int
    data_end: int
    data_meta: int
    ctx_addr: int
    ctx_fields: dict[str, int]
    frame_reserved: int = 0
    meta_supported: bool = True
    frags: list[Frag] = field(default_factory=list)
    frag_room: int = 0

    @property
    def length(self) -> int:
        return self.data_end - self.data

    @property
    def frags_size(self) -> int:
        return sum(f.size for f in self.frags)


@dataclass(frozen=True, slots=True)
class TailCallRequest:
    """A tail call the helper accepted: the VM replaces the program with ``map[index]``.

    If that slot is empty the VM continues after the call, as the kernel does.
    """

    map: Any
    index: int


@dataclass(frozen=True, slots=True)
class RedirectRecord:
    """What the last bpf_redirect / bpf_redirect_map call asked for (the run result shows it)."""

    helper: str
    ifindex: int
    flags: int
    map: Any = None


@dataclass(frozen=True, slots=True)
class AsyncEvent:
    """One timer or work-queue callback that ran during a drain."""

    kind: str  # "timer" | "wq"
    address: int  # of the bpf_timer / bpf_wq
    callback: int
    time_ns: int
    retval: int


@dataclass(slots=True)
class AsyncObject:
    """The hidden state behind a ``bpf_timer`` or ``bpf_wq`` in a map value."""

    kind: str
    address: int
    map: Any
    flags: int
    callback: int | None = None
    armed: bool = False
    generation: int = 0


class SharedState:
    """Runtime-wide helper state shared by concurrent runs: the timers and work queues.

    Spin locks need no entry here: they are :func:`pybpf.maps.base.value_lock`, the same
    host locks BPF_F_LOCK map operations take.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.async_objects: dict[int, AsyncObject] = {}

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def forget(self, start: int, size: int) -> int:
        """Drop the timers / work queues in ``[start, start + size)``; how many there were.

        The map layer calls this when it frees or overwrites a value (the kernel's
        bpf_timer_cancel_and_free / bpf_wq_cancel_and_free): pending callbacks of a dropped
        object do not run.
        """
        with self._lock:
            gone = [a for a in self.async_objects if start <= a < start + size]
            for a in gone:
                del self.async_objects[a]
            return len(gone)


@dataclass(order=True, slots=True)
class _Pending:
    due: int
    seq: int
    kind: str = field(compare=False)
    address: int = field(compare=False)
    generation: int = field(compare=False)
    callback: int = field(compare=False)
    args: tuple[int, ...] = field(compare=False)


class AsyncQueue:
    """Callbacks waiting to run after the program returned, ordered by virtual due time."""

    def __init__(self) -> None:
        self._heap: list[_Pending] = []
        self._seq = 0

    def push(
        self,
        due: int,
        kind: str,
        address: int,
        generation: int,
        callback: int,
        args: tuple[int, ...],
    ) -> None:
        self._seq += 1
        heapq.heappush(
            self._heap, _Pending(due, self._seq, kind, address, generation, callback, args)
        )

    def pop(self) -> _Pending | None:
        return heapq.heappop(self._heap) if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


class RunContext:
    """Everything the helpers of one run need, and what they leave behind for the result."""

    def __init__(
        self,
        arena: Arena,
        *,
        maps: MapTable | None = None,
        env: Environment | None = None,
        shared: SharedState | None = None,
        prog_type: BpfProgType = BpfProgType.UNSPEC,
        call_function: CallFunction | None = None,
    ) -> None:
        self.arena = arena
        self.maps = maps if maps is not None else MapTable(arena)
        self.env = env if env is not None else Environment()
        self.shared = shared if shared is not None else SharedState()
        self.prog_type = prog_type
        self.cpu = self.env.cpu
        self._rng: random.Random | None = None
        self.clock_ns = self.env.clock_start_ns
        self.output: list[str] = []
        self.redirect: RedirectRecord | None = None
        self.tail_call: TailCallRequest | None = None
        self.tail_call_count = 0
        self.async_queue = AsyncQueue()
        self.async_log: list[AsyncEvent] = []
        self.packet: PacketState | None = None
        self.ctx_addr = 0
        self.ringbuf_reservations: dict[int, Any] = {}
        self.held_locks: dict[int, threading.Lock] = {}
        self.running_async: int | None = None
        self._call_function = call_function
        self._scratch: Region | None = None
        self._scratch_used = 0

    # -- hooks --------------------------------------------------------------------------------

    def install_call_function(self, fn: CallFunction) -> None:
        """The VM's hook: ``fn(func_ptr, *args) -> r0`` runs the BPF function at ``func_ptr``."""
        self._call_function = fn

    def call_function(self, func_ptr: int, *args: int) -> int:
        if self._call_function is None:
            raise UnsupportedError("callbacks", "the engine installed no call_function hook")
        return self._call_function(func_ptr, *args) & MASK64

    # -- prandom ------------------------------------------------------------------------------

    @property
    def rng(self) -> random.Random:
        """The run's prandom generator, seeded with ``env.prandom_seed``. Built on first use:
        seeding one costs more than a whole small run, and most runs never ask."""
        rng = self._rng
        if rng is None:
            rng = self._rng = random.Random(self.env.prandom_seed)
        return rng

    # -- clock --------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """Read the virtual monotonic clock (each read advances it by the environment's step)."""
        t = self.clock_ns
        self.clock_ns = t + self.env.clock_step_ns
        return t

    @property
    def tick_ns(self) -> int:
        return NSEC_PER_SEC // self.env.hz

    # -- memory -------------------------------------------------------------------------------

    def read(self, addr: int, size: int) -> bytes:
        return self.arena.read(addr, size) if size else b""

    def write(self, addr: int, data: bytes) -> None:
        if data:
            self.arena.write(addr, data)

    def readable(self, addr: int, size: int) -> bool:
        return size == 0 or self.arena.find(addr, size) is not None

    def scratch(self, data: bytes) -> int:
        """A run-lifetime Arena address holding ``data`` (callback keys such as array indexes).

        One 4 KiB scratch page per run, used as a bump allocator, freed by :meth:`finish`.
        """
        if self._scratch is None:
            self._scratch = self.arena.alloc(4096, kind="scratch", name="helper scratch")
        n = (len(data) + 7) & -8
        if self._scratch_used + n > self._scratch.size:
            raise ExhaustionError("helper scratch space exhausted in one run", limit=4096)
        addr = self._scratch.start + self._scratch_used
        self._scratch_used += n
        self.arena.write(addr, data)
        return addr

    # -- async --------------------------------------------------------------------------------

    def drain_async(self) -> list[AsyncEvent]:
        """Run queued timer and work-queue callbacks in due-time order; return what ran.

        The clock jumps forward to each timer's expiry. A callback may arm more work; at most
        ``env.max_async_callbacks`` run, the rest stay queued.
        """
        ran: list[AsyncEvent] = []
        while len(ran) < self.env.max_async_callbacks:
            item = self.async_queue.pop()
            if item is None:
                break
            with self.shared.lock:
                obj = self.shared.async_objects.get(item.address)
                live = obj is not None and obj.generation == item.generation and obj.armed
                if live and obj is not None and obj.kind == "timer":
                    obj.armed = False
            if not live:
                continue
            self.clock_ns = max(self.clock_ns, item.due)
            self.running_async = item.address
            try:
                rv = self.call_function(item.callback, *item.args)
            finally:
                self.running_async = None
            if obj is not None and obj.kind == "wq":
                with self.shared.lock:
                    if obj.generation == item.generation:
                        obj.armed = False
            event = AsyncEvent(item.kind, item.address, item.callback, item.due, rv)
            ran.append(event)
            self.async_log.append(event)
        return ran

    def finish(self) -> list[int]:
        """End of run: release spin locks the program still holds and the scratch page.

        Returns the addresses of the locks that were still held (a verified program holds
        none; an unverified one may).
        """
        leaked = list(self.held_locks)
        for lk in self.held_locks.values():
            lk.release()
        self.held_locks.clear()
        if self._scratch is not None:
            self.arena.defer_free(self._scratch)
            self._scratch = None
            self._scratch_used = 0
        return leaked

    # -- ctx fields that mirror packet pointers -----------------------------------------------

    def sync_packet_fields(self) -> None:
        """Write the packet pointers back into the ctx's u32 fields after a helper moved them."""
        p = self.packet
        if p is None:
            return
        for name, off in p.ctx_fields.items():
            value = {"data": p.data, "data_end": p.data_end, "data_meta": p.data_meta}[name]
            self.arena.write(p.ctx_addr + off, struct.pack("<I", value & 0xFFFFFFFF))


def map_type_of(m: Any) -> BpfMapType | None:
    t = getattr(m, "map_type", None)
    if t is None:
        return None
    try:
        return BpfMapType(int(t))
    except ValueError:
        return None

"""Helpers every program type shares: maps, time, prandom, identity, printing, probe_read,
bpf_loop / for_each_map_elem, ring buffers, perf output, spin locks, tail calls and timers.

Place in the pipeline: declarations (one per helper, kernel id explicit) collected into
``DEFAULT_HELPERS`` by :mod:`pybpf.helpers.table`; implementations called by the interpreter
and the JIT through :func:`pybpf.helpers.bind.bind`. Semantics, errno values and limits are
the kernel's (kernel/bpf/helpers.c, kernel/bpf/bpf_iter.c, kernel/bpf/ringbuf.c,
kernel/trace/bpf_trace.c). ``prog_types`` follow the kernel's ``*_func_proto`` functions for a
privileged loader: None for the ``bpf_base_func_proto`` helpers, which every type reaches.
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from pybpf.errors import Trap
from pybpf.helpers.context import (
    MASK64,
    MAX_TAIL_CALL_CNT,
    TASK_COMM_LEN,
    AsyncObject,
    RunContext,
    TailCallRequest,
    map_type_of,
)
from pybpf.helpers.decl import (
    ARG_ANYTHING,
    ARG_CONST_ALLOC_SIZE_OR_ZERO,
    ARG_CONST_MAP_PTR,
    ARG_CONST_SIZE,
    ARG_CONST_SIZE_OR_ZERO,
    ARG_PTR_TO_CONST_STR,
    ARG_PTR_TO_CTX,
    ARG_PTR_TO_FUNC,
    ARG_PTR_TO_MAP_KEY,
    ARG_PTR_TO_MAP_VALUE,
    ARG_PTR_TO_MEM,
    ARG_PTR_TO_MEM_OR_NULL,
    ARG_PTR_TO_RINGBUF_MEM,
    ARG_PTR_TO_SPIN_LOCK,
    ARG_PTR_TO_STACK_OR_NULL,
    ARG_PTR_TO_TIMER,
    ARG_PTR_TO_UNINIT_MEM,
    MEM_RDONLY,
    PTR_MAYBE_NULL,
    ArgMod,
    HelperDecl,
    HelperFlag,
    RetKind,
)
from pybpf.helpers.groups import NET_BASE, PERF_OUTPUT, TASK_IDENTITY, TRACING
from pybpf.helpers.printf import MAX_BPRINTF_BUF, MAX_BPRINTF_VARARGS, bprintf
from pybpf.maps.base import round8, value_lock
from pybpf.uapi import BPF_F_INDEX_MASK, BpfMapType

GPL = HelperFlag.GPL_ONLY

BPF_MAX_LOOPS = 8 * 1024 * 1024
BPF_F_CTXLEN_MASK = 0xFFFFF << 32
BPF_F_TIMER_ABS = 1 << 0
BPF_F_TIMER_CPU_PIN = 1 << 1
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
MAX_CLOCKS = 16


def _map(run: RunContext, r: int) -> Any:
    return run.maps[r]


def _key(run: RunContext, m: Any, addr: int) -> bytes:
    return run.read(addr, m.key_size)


def _value(run: RunContext, m: Any, addr: int) -> bytes:
    return run.read(addr, m.value_size)


# -- maps -------------------------------------------------------------------------------------


def _map_lookup_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(run, r1)
    return m.lookup_elem(_key(run, m, r2), run.cpu)


def _map_update_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(run, r1)
    return m.update_elem(_key(run, m, r2), _value(run, m, r3), r4, run.cpu)


def _map_delete_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(run, r1)
    return m.delete_elem(_key(run, m, r2))


def _map_push_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(run, r1)
    return m.push_elem(_value(run, m, r2), r3)


def _map_pop_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(run, r1).pop_elem(r2)


def _map_peek_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(run, r1).peek_elem(r2)


def _tail_call(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # The kernel checks the index, then the count (counting even calls to an empty slot),
    # then the slot; the VM does the last step since it owns the programs.
    m = _map(run, r2)
    index = r3 & 0xFFFFFFFF
    if index >= getattr(m, "max_entries", 0) or run.tail_call_count >= MAX_TAIL_CALL_CNT:
        return -errno.ENOENT
    run.tail_call_count += 1
    run.tail_call = TailCallRequest(m, index)
    return 0


# -- time, randomness, identity ---------------------------------------------------------------


def _ktime_get_ns(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return run.now_ns()


def _ktime_get_boot_ns(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return run.now_ns() + run.env.boot_offset_ns


def _ktime_get_coarse_ns(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    t = run.now_ns()
    return t - t % run.tick_ns


def _jiffies64(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return (run.env.jiffies_start + run.now_ns() // run.tick_ns) & MASK64


def _get_prandom_u32(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return run.rng.getrandbits(32)


def _get_smp_processor_id(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return run.cpu


def _get_current_pid_tgid(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return (run.env.tgid & 0xFFFFFFFF) << 32 | (run.env.pid & 0xFFFFFFFF)


def _get_current_uid_gid(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return (run.env.gid & 0xFFFFFFFF) << 32 | (run.env.uid & 0xFFFFFFFF)


def _get_current_comm(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # strscpy_pad of task->comm (at most TASK_COMM_LEN - 1 characters).
    comm = run.env.comm.encode()[: TASK_COMM_LEN - 1]
    size = r2 & 0xFFFFFFFF
    text = comm[: size - 1] if size else b""
    run.write(r1, text + bytes(size - len(text)))
    return 0


# -- printing ---------------------------------------------------------------------------------


def _read_cstring(run: RunContext, addr: int, limit: int) -> bytes | None:
    """strncpy_from_*_nofault: the string at ``addr`` with its NUL, at most ``limit`` bytes.

    A string longer than ``limit - 1`` is cut and NUL-terminated; None when a byte it needs
    is not readable.
    """
    if limit <= 0:
        return b""
    region = run.arena.find(addr, 1)
    if region is None:
        return None
    want = limit - 1
    chunk = run.read(addr, min(want, region.end - addr))
    nul = chunk.find(0)
    if nul >= 0:
        return chunk[: nul + 1]
    if len(chunk) == want:
        return chunk + b"\0"
    if region.end - addr < limit:
        tail = _read_cstring(run, region.end, limit - len(chunk))
        return None if tail is None else chunk + tail
    return None


def _read_or_none(run: RunContext, addr: int, size: int) -> bytes | None:
    return run.read(addr, size) if run.readable(addr, size) else None


def _format(run: RunContext, fmt: bytes, args: list[int]) -> bytes | int:
    return bprintf(
        fmt,
        args,
        lambda a, n: _read_cstring(run, a, n),
        lambda a, n: _read_or_none(run, a, n),
    )


def _trace_printk(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    raw = run.read(r1, r2 & 0xFFFFFFFF)
    nul = raw.find(0)
    if nul < 0:
        return -errno.EINVAL
    text = _format(run, raw[:nul], [r3, r4, r5])
    if isinstance(text, int):
        return text
    run.output.append(text[: MAX_BPRINTF_BUF - 1].decode("utf-8", "backslashreplace"))
    return len(text)


def _snprintf(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    str_size = r2 & 0xFFFFFFFF
    data_len = r5 & 0xFFFFFFFF
    if data_len % 8 or data_len > MAX_BPRINTF_VARARGS * 8 or (data_len and not r4):
        return -errno.EINVAL
    fmt = _read_cstring(run, r3, 1 << 16)
    if fmt is None:
        return -errno.EFAULT
    args = list(struct.unpack(f"<{data_len // 8}Q", run.read(r4, data_len))) if data_len else []
    text = _format(run, fmt[:-1], args)
    if isinstance(text, int):
        return text
    if str_size:
        out = text[: str_size - 1] + b"\0"
        run.write(r1, out)
    return len(text) + 1


# -- probe_read -------------------------------------------------------------------------------


def _probe_read(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    size = r2 & 0xFFFFFFFF
    data = _read_or_none(run, r3, size)
    if data is None:
        run.write(r1, bytes(size))
        return -errno.EFAULT
    run.write(r1, data)
    return 0


def _probe_read_str(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    size = r2 & 0xFFFFFFFF
    if size == 0:
        return 0
    s = _read_cstring(run, r3, size)
    if s is None:
        run.write(r1, bytes(size))
        return -errno.EFAULT
    run.write(r1, s)
    return len(s)


# -- callbacks --------------------------------------------------------------------------------


def _loop(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    nr_loops = r1 & 0xFFFFFFFF
    if r4:
        return -errno.EINVAL
    if nr_loops > BPF_MAX_LOOPS:
        return -errno.E2BIG
    for i in range(nr_loops):
        if run.call_function(r2, i, r3):
            return i + 1
    return nr_loops


def _for_each_map_elem(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r4:
        return -errno.EINVAL
    m = _map(run, r1)
    count = 0
    for key_addr, value_addr in m.iter_elements(run.cpu):
        count += 1
        if run.call_function(r2, r1, key_addr, value_addr, r3):
            break
    return count


# -- ring buffers and perf output -------------------------------------------------------------


def _ringbuf_output(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(run, r1).output(run.read(r2, r3 & 0xFFFFFFFF), r4)


def _ringbuf_reserve(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(run, r1)
    addr = m.reserve(r2, r3)
    if addr:
        run.ringbuf_reservations[addr] = m
    return addr


def _ringbuf_owner(run: RunContext, addr: int) -> Any:
    m = run.ringbuf_reservations.pop(addr, None)
    if m is None:
        raise Trap(f"{addr:#x} is not a ring buffer reservation of this run", pc=-1)
    return m


def _ringbuf_submit(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    _ringbuf_owner(run, r1).submit(r1, r2)
    return 0


def _ringbuf_discard(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    _ringbuf_owner(run, r1).discard(r1, r2)
    return 0


def _ringbuf_query(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _map(run, r1).query(r2)


def packet_bytes(run: RunContext, count: int) -> bytes | None:
    """The first ``count`` packet bytes, or None if the packet is shorter (perf ctx length)."""
    p = run.packet
    if count == 0:
        return b""
    if p is None or count > p.length:
        return None
    return run.read(p.data, count)


def _perf_event_output(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # The skb / xdp protos take the number of packet bytes to append in the upper flag bits.
    ctxlen = (r3 & BPF_F_CTXLEN_MASK) >> 32
    if r3 & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK) or (ctxlen and run.packet is None):
        return -errno.EINVAL
    extra = packet_bytes(run, ctxlen)
    if extra is None:
        return -errno.EFAULT
    m = _map(run, r2)
    if map_type_of(m) is not BpfMapType.PERF_EVENT_ARRAY:
        return -errno.EINVAL
    return m.output(run.read(r4, r5 & 0xFFFFFFFF) + extra, r3 & BPF_F_INDEX_MASK, run.cpu)


# -- spin locks -------------------------------------------------------------------------------


def _spin_lock(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    lk = value_lock(r1)
    lk.acquire()
    run.held_locks[r1] = lk
    run.write(r1, b"\x01\0\0\0")
    return 0


def _spin_unlock(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    lk = run.held_locks.pop(r1, None)
    if lk is None:
        raise Trap(f"bpf_spin_unlock of {r1:#x}, which this run does not hold", pc=-1)
    run.write(r1, bytes(4))
    lk.release()
    return 0


# -- timers (and the async plumbing bpf_wq shares) --------------------------------------------


def async_value_and_key(run: RunContext, m: Any, obj_addr: int, field_kind: str) -> tuple[int, int]:
    """The map value holding the async object at ``obj_addr``, and a pointer to its key.

    As bpf_timer_cb: for an ARRAY the key is the element index (a u32 the runtime keeps in
    Arena scratch), otherwise the element's key, stored ``round_up(key_size, 8)`` bytes
    before the value.
    """
    offset = next((f.offset for f in getattr(m, "fields", ()) if f.kind == field_kind), 0)
    value = obj_addr - offset
    if map_type_of(m) is BpfMapType.ARRAY:
        first = m.lookup_elem(bytes(4), 0)
        elem = getattr(m, "elem_size", round8(m.value_size))
        index = (value - first) // elem if first else 0
        return value, run.scratch(struct.pack("<I", index))
    return value, value - round8(m.key_size)


def async_init(run: RunContext, kind: str, addr: int, m: Any, flags: int) -> int:
    with run.shared.lock:
        if addr in run.shared.async_objects:
            return -errno.EBUSY
        run.shared.async_objects[addr] = AsyncObject(kind, addr, m, flags)
    return 0


def async_set_callback(run: RunContext, addr: int, callback: int) -> int:
    with run.shared.lock:
        obj = run.shared.async_objects.get(addr)
        if obj is None:
            return -errno.EINVAL
        obj.callback = callback
    return 0


def async_arm(run: RunContext, addr: int, due: int, field_kind: str) -> int:
    with run.shared.lock:
        obj = run.shared.async_objects.get(addr)
        if obj is None or obj.callback is None:
            return -errno.EINVAL
        obj.generation += 1
        obj.armed = True
        generation, callback, m, kind = obj.generation, obj.callback, obj.map, obj.kind
    value, key = async_value_and_key(run, m, addr, field_kind)
    map_ptr = run.maps.address_of(m)
    run.async_queue.push(due, kind, addr, generation, callback, (map_ptr, key, value))
    return 0


def _timer_init(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    clockid = r3 & (MAX_CLOCKS - 1)
    if r3 >= MAX_CLOCKS or clockid not in (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME):
        return -errno.EINVAL
    return async_init(run, "timer", r1, _map(run, r2), r3)


def _timer_set_callback(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return async_set_callback(run, r1, r2)


def _timer_start(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r3 & ~(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN):
        return -errno.EINVAL
    due = r2 if r3 & BPF_F_TIMER_ABS else run.clock_ns + r2
    return async_arm(run, r1, due, "bpf_timer")


def _timer_cancel(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    with run.shared.lock:
        obj = run.shared.async_objects.get(r1)
        if obj is None:
            return -errno.EINVAL
        if run.running_async == r1:
            return -errno.EDEADLK
        was_armed = obj.armed
        obj.armed = False
        obj.callback = None
        obj.generation += 1
    return 1 if was_armed else 0


# -- declarations -----------------------------------------------------------------------------

CORE_HELPERS: tuple[HelperDecl, ...] = (
    HelperDecl(
        1,
        "map_lookup_elem",
        RetKind.PTR_TO_MAP_VALUE_OR_NULL,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY),
        _map_lookup_elem,
        HelperFlag.PKT_ACCESS,
    ),
    HelperDecl(
        2,
        "map_update_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY, ARG_PTR_TO_MAP_VALUE, ARG_ANYTHING),
        _map_update_elem,
        HelperFlag.PKT_ACCESS,
    ),
    HelperDecl(
        3,
        "map_delete_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY),
        _map_delete_elem,
        HelperFlag.PKT_ACCESS,
    ),
    HelperDecl(
        4,
        "probe_read",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read,
        GPL,
        TRACING,
    ),
    HelperDecl(5, "ktime_get_ns", RetKind.INTEGER, (), _ktime_get_ns),
    HelperDecl(
        6,
        "trace_printk",
        RetKind.INTEGER,
        (ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE),
        _trace_printk,
        GPL,
    ),
    HelperDecl(7, "get_prandom_u32", RetKind.INTEGER, (), _get_prandom_u32),
    HelperDecl(8, "get_smp_processor_id", RetKind.INTEGER, (), _get_smp_processor_id),
    HelperDecl(
        12, "tail_call", RetKind.VOID, (ARG_PTR_TO_CTX, ARG_CONST_MAP_PTR, ARG_ANYTHING), _tail_call
    ),
    HelperDecl(
        14,
        "get_current_pid_tgid",
        RetKind.INTEGER,
        (),
        _get_current_pid_tgid,
        prog_types=TASK_IDENTITY,
    ),
    HelperDecl(
        15,
        "get_current_uid_gid",
        RetKind.INTEGER,
        (),
        _get_current_uid_gid,
        prog_types=TASK_IDENTITY,
    ),
    HelperDecl(
        16,
        "get_current_comm",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE),
        _get_current_comm,
        prog_types=TASK_IDENTITY,
    ),
    HelperDecl(
        25,
        "perf_event_output",
        RetKind.INTEGER,
        (
            ARG_PTR_TO_CTX,
            ARG_CONST_MAP_PTR,
            ARG_ANYTHING,
            ARG_PTR_TO_MEM | MEM_RDONLY,
            ARG_CONST_SIZE_OR_ZERO,
        ),
        _perf_event_output,
        GPL,
        PERF_OUTPUT,
    ),
    HelperDecl(
        45,
        "probe_read_str",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read_str,
        GPL,
        TRACING,
    ),
    HelperDecl(
        87,
        "map_push_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE, ARG_ANYTHING),
        _map_push_elem,
        HelperFlag.PKT_ACCESS,
    ),
    HelperDecl(
        88,
        "map_pop_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE | ArgMod.MEM_UNINIT),
        _map_pop_elem,
    ),
    HelperDecl(
        89,
        "map_peek_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE | ArgMod.MEM_UNINIT),
        _map_peek_elem,
    ),
    HelperDecl(93, "spin_lock", RetKind.VOID, (ARG_PTR_TO_SPIN_LOCK,), _spin_lock),
    HelperDecl(94, "spin_unlock", RetKind.VOID, (ARG_PTR_TO_SPIN_LOCK,), _spin_unlock),
    HelperDecl(
        112,
        "probe_read_user",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read,
        GPL,
    ),
    HelperDecl(
        113,
        "probe_read_kernel",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read,
        GPL,
    ),
    HelperDecl(
        114,
        "probe_read_user_str",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read_str,
        GPL,
    ),
    HelperDecl(
        115,
        "probe_read_kernel_str",
        RetKind.INTEGER,
        (ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _probe_read_str,
        GPL,
    ),
    HelperDecl(118, "jiffies64", RetKind.INTEGER, (), _jiffies64),
    HelperDecl(125, "ktime_get_boot_ns", RetKind.INTEGER, (), _ktime_get_boot_ns),
    HelperDecl(
        130,
        "ringbuf_output",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING),
        _ringbuf_output,
    ),
    HelperDecl(
        131,
        "ringbuf_reserve",
        RetKind.PTR_TO_ALLOC_MEM_OR_NULL,
        (ARG_CONST_MAP_PTR, ARG_CONST_ALLOC_SIZE_OR_ZERO, ARG_ANYTHING),
        _ringbuf_reserve,
    ),
    HelperDecl(
        132, "ringbuf_submit", RetKind.VOID, (ARG_PTR_TO_RINGBUF_MEM, ARG_ANYTHING), _ringbuf_submit
    ),
    HelperDecl(
        133,
        "ringbuf_discard",
        RetKind.VOID,
        (ARG_PTR_TO_RINGBUF_MEM, ARG_ANYTHING),
        _ringbuf_discard,
    ),
    HelperDecl(
        134, "ringbuf_query", RetKind.INTEGER, (ARG_CONST_MAP_PTR, ARG_ANYTHING), _ringbuf_query
    ),
    HelperDecl(
        160,
        "ktime_get_coarse_ns",
        RetKind.INTEGER,
        (),
        _ktime_get_coarse_ns,
        prog_types=NET_BASE | TRACING,
    ),
    HelperDecl(
        164,
        "for_each_map_elem",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_PTR_TO_FUNC, ARG_PTR_TO_STACK_OR_NULL, ARG_ANYTHING),
        _for_each_map_elem,
    ),
    HelperDecl(
        165,
        "snprintf",
        RetKind.INTEGER,
        (
            ARG_PTR_TO_MEM_OR_NULL,
            ARG_CONST_SIZE_OR_ZERO,
            ARG_PTR_TO_CONST_STR,
            ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY,
            ARG_CONST_SIZE_OR_ZERO,
        ),
        _snprintf,
        GPL,
    ),
    HelperDecl(
        169,
        "timer_init",
        RetKind.INTEGER,
        (ARG_PTR_TO_TIMER, ARG_CONST_MAP_PTR, ARG_ANYTHING),
        _timer_init,
        GPL,
    ),
    HelperDecl(
        170,
        "timer_set_callback",
        RetKind.INTEGER,
        (ARG_PTR_TO_TIMER, ARG_PTR_TO_FUNC),
        _timer_set_callback,
        GPL,
    ),
    HelperDecl(
        171,
        "timer_start",
        RetKind.INTEGER,
        (ARG_PTR_TO_TIMER, ARG_ANYTHING, ARG_ANYTHING),
        _timer_start,
        GPL,
    ),
    HelperDecl(172, "timer_cancel", RetKind.INTEGER, (ARG_PTR_TO_TIMER,), _timer_cancel, GPL),
    HelperDecl(
        181,
        "loop",
        RetKind.INTEGER,
        (ARG_ANYTHING, ARG_PTR_TO_FUNC, ARG_PTR_TO_STACK_OR_NULL, ARG_ANYTHING),
        _loop,
    ),
)

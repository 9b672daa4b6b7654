"""Helpers every program type shares, run against the real map runtime: expected r0 values and
memory effects derived from the kernel's helper documentation and sources."""

from __future__ import annotations

import errno
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from pybpf.errors import Trap
from pybpf.helpers import Environment, RunContext, SharedState
from pybpf.helpers.context import MAX_TAIL_CALL_CNT
from pybpf.maps import create_map
from pybpf.memory import Arena
from pybpf.uapi import BpfProgType as T
from tests.helpers_support import Harness


@pytest.fixture
def arena() -> Iterator[Arena]:
    with Arena(1 << 26) as a:
        yield a


@pytest.fixture
def h(arena: Arena) -> Harness:
    return Harness(arena, T.SCHED_CLS)


def _map(arena: Arena, kind: str, key: int, value: int, n: int, **kw: int) -> object:
    return create_map(
        arena, name=kind, map_type=kind, key_size=key, value_size=value, max_entries=n, **kw
    )


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


# -- maps -------------------------------------------------------------------------------------


def test_array_lookup_update_delete(h: Harness, arena: Arena) -> None:
    m = _map(arena, "array", 4, 8, 4)
    mp = h.run.maps.register(m)
    key, val = h.mem(u32(2)), h.mem(struct.pack("<Q", 0xDEADBEEF))
    assert h.call("map_update_elem", mp, key, val, 0) == 0
    addr = h.call("map_lookup_elem", mp, key)
    assert addr and h.read(addr, 8) == struct.pack("<Q", 0xDEADBEEF)
    assert h.call("map_lookup_elem", mp, h.mem(u32(4))) == 0
    assert h.call("map_update_elem", mp, key, val, 1) == -errno.EEXIST  # BPF_NOEXIST
    assert h.call("map_delete_elem", mp, key) == -errno.EINVAL  # arrays cannot delete


def test_hash_update_flags_and_delete(h: Harness, arena: Arena) -> None:
    m = _map(arena, "hash", 4, 4, 2)
    mp = h.run.maps.register(m)
    k1, v = h.mem(u32(1)), h.mem(u32(7))
    assert h.call("map_update_elem", mp, k1, v, 2) == -errno.ENOENT  # BPF_EXIST, absent
    assert h.call("map_update_elem", mp, k1, v, 0) == 0
    assert h.read(h.call("map_lookup_elem", mp, k1), 4) == u32(7)
    assert h.call("map_delete_elem", mp, k1) == 0
    assert h.call("map_delete_elem", mp, k1) == -errno.ENOENT


def test_map_pointer_must_be_a_map(h: Harness) -> None:
    with pytest.raises(Trap):
        h.call("map_lookup_elem", h.mem(bytes(8)), h.mem(bytes(4)))


def test_queue_push_pop_peek(h: Harness, arena: Arena) -> None:
    q = _map(arena, "queue", 0, 4, 2)
    mp = h.run.maps.register(q)
    out = h.mem(bytes(4))
    assert h.call("map_pop_elem", mp, out) == -errno.ENOENT
    for v in (10, 20):
        assert h.call("map_push_elem", mp, h.mem(u32(v)), 0) == 0
    assert h.call("map_push_elem", mp, h.mem(u32(30)), 0) == -errno.E2BIG
    assert h.call("map_peek_elem", mp, out) == 0 and h.read(out, 4) == u32(10)
    assert h.call("map_pop_elem", mp, out) == 0 and h.read(out, 4) == u32(10)
    assert h.call("map_pop_elem", mp, out) == 0 and h.read(out, 4) == u32(20)


def test_tail_call_records_request_and_counts(h: Harness, arena: Arena) -> None:
    pa = _map(arena, "prog_array", 4, 4, 4)
    mp = h.run.maps.register(pa)
    assert h.call("tail_call", 0, mp, 4) != 0 and h.run.tail_call is None  # index >= max
    assert h.call("tail_call", 0, mp, 3) == 0
    assert h.run.tail_call is not None and h.run.tail_call.index == 3
    assert h.run.tail_call.map is pa
    h.run.tail_call = None
    for _ in range(MAX_TAIL_CALL_CNT - 1):
        assert h.call("tail_call", 0, mp, 0) == 0
    assert h.run.tail_call_count == MAX_TAIL_CALL_CNT
    h.run.tail_call = None
    assert h.call("tail_call", 0, mp, 0) != 0 and h.run.tail_call is None


# -- time, randomness, identity ---------------------------------------------------------------


def test_virtual_clock(arena: Arena) -> None:
    env = Environment(clock_start_ns=5_000_000_123, clock_step_ns=10, boot_offset_ns=7, hz=1000)
    h = Harness(arena, T.KPROBE, env=env)
    assert h.call("ktime_get_ns") == 5_000_000_123
    assert h.call("ktime_get_ns") == 5_000_000_133
    assert h.call("ktime_get_boot_ns") == 5_000_000_143 + 7
    assert h.call("ktime_get_coarse_ns") == 5_000_000_000  # last 1 ms tick
    assert h.call("jiffies64") == env.jiffies_start + 5000


def test_prandom_is_seeded(arena: Arena) -> None:
    def seq(seed: int) -> list[int]:
        h = Harness(arena, T.XDP, env=Environment(prandom_seed=seed))
        return [h.call("get_prandom_u32") for _ in range(4)]

    assert seq(1) == seq(1)
    assert seq(1) != seq(2)
    assert all(0 <= v < 1 << 32 for v in seq(3))


def test_prandom_sequence_is_pinned_and_built_on_first_use(arena: Arena) -> None:
    # The sequences a seed gives are part of the deterministic environment: pinned here.
    expected = {
        0: [0xD82C07CD, 0x629F6FBE, 0xC2094CAC, 0xE3E70682],
        1: [0x2265B1F5, 0x91B7584A, 0xD8F16ADF, 0xCD613E30],
    }
    for seed, values in expected.items():
        h = Harness(arena, T.XDP, env=Environment(prandom_seed=seed))
        h.call("ktime_get_ns")
        assert h.run._rng is None  # a run that never asks builds no generator
        assert [h.call("get_prandom_u32") for _ in range(4)] == values


def test_identity(arena: Arena) -> None:
    env = Environment(
        pid=42, tgid=40, uid=1000, gid=100, comm="a-very-long-command", cpu=1, ncpus=2
    )
    h = Harness(arena, T.KPROBE, env=env)
    assert h.call("get_current_pid_tgid") == 40 << 32 | 42
    assert h.call("get_current_uid_gid") == 100 << 32 | 1000
    assert h.call("get_smp_processor_id") == 1
    buf = h.mem(b"\xaa" * 16)
    assert h.call("get_current_comm", buf, 16) == 0
    assert h.read(buf, 16) == b"a-very-long-com\0"  # TASK_COMM_LEN - 1 characters
    small = h.mem(b"\xaa" * 8)
    h.call("get_current_comm", small, 4)
    assert h.read(small, 8) == b"a-v\0" + b"\xaa" * 4
    short = Harness(arena, T.KPROBE, env=Environment(comm="sh"))
    buf2 = short.mem(b"\xaa" * 8)
    short.call("get_current_comm", buf2, 8)
    assert short.read(buf2, 8) == b"sh" + bytes(6)  # strscpy_pad zero-pads


# -- trace_printk / snprintf ------------------------------------------------------------------

PRINTK_CASES = [
    (b"hello\n", (), "hello\n"),
    (b"%d %i %u", (-5 & (1 << 64) - 1, 7, -1 & (1 << 64) - 1), "-5 7 4294967295"),
    (b"%x %X %lx", (0xBEEF, 0xBEEF, 0x1_0000_0000), "beef BEEF 100000000"),
    (b"%lld %llu", (-2 & (1 << 64) - 1, -2 & (1 << 64) - 1), "-2 18446744073709551614"),
    (b"%llx", (0xFFFF_FFFF_FFFF_FFFF,), "ffffffffffffffff"),
    (b"[%5d][%-5d][%05d]", (42, 42, 42), "[   42][42   ][00042]"),
    (b"%+d % d %+u", (3, 3, 3), "+3  3 3"),
    (b"%c%c%%", (ord("o"), ord("k")), "ok%"),
    (b"%p %p", (0, 0x1234), "(null) 0000000000001234"),
    (b"%px", (0xFF,), "00000000000000ff"),
    (b"%d", (1 << 32 | 5,), "5"),  # an int conversion takes the low 32 bits
]


@pytest.mark.parametrize(("fmt", "args", "expected"), PRINTK_CASES)
def test_trace_printk_formats(h: Harness, fmt: bytes, args: tuple[int, ...], expected: str) -> None:
    f = h.mem(fmt + b"\0")
    r0 = h.call("trace_printk", f, len(fmt) + 1, *args)
    assert h.run.output == [expected]
    assert r0 == len(expected.encode())


def test_trace_printk_strings_and_ips(h: Harness) -> None:
    s = h.mem(b"world\0")
    ip4 = h.mem(bytes([192, 168, 1, 2]))
    ip6 = h.mem(bytes.fromhex("20010db8000000000000000000000001"))
    fmt = b"hi %s %pI4 %pi4\0"
    h.call("trace_printk", h.mem(fmt), len(fmt), s, ip4, ip4)
    fmt6 = b"%pI6 %pi6\0"
    h.call("trace_printk", h.mem(fmt6), len(fmt6), ip6, ip6)
    assert h.run.output == [
        "hi world 192.168.1.2 192.168.001.002",
        "2001:0db8:0000:0000:0000:0000:0000:0001 20010db8000000000000000000000001",
    ]
    bad = b"%s\0"
    h.call("trace_printk", h.mem(bad), len(bad), 0x10)  # unreadable string prints empty
    assert h.run.output[-1] == ""


REJECTED = [
    b"%d %d %d %d",  # four conversions, three arguments
    b"%f",
    b"%.2d",
    b"%hd",
    b"%sx",  # %s must be followed by space, punctuation or the end
    b"%pZ",
    b"bell\x07",
    b"%z",
]


@pytest.mark.parametrize("fmt", REJECTED)
def test_trace_printk_rejects(h: Harness, fmt: bytes) -> None:
    assert h.call("trace_printk", h.mem(fmt + b"\0"), len(fmt) + 1, 1, 2, 3) == -errno.EINVAL
    assert h.run.output == []


def test_trace_printk_needs_nul_within_size(h: Harness) -> None:
    assert h.call("trace_printk", h.mem(b"abcd"), 4) == -errno.EINVAL


def test_snprintf(h: Harness) -> None:
    fmt = h.mem(b"n=%d s=%s\0")
    s = h.mem(b"abc\0")
    args = h.mem(struct.pack("<QQ", 1234, s))
    out = h.mem(b"\xff" * 16)
    assert h.call("snprintf", out, 16, fmt, args, 16) == len("n=1234 s=abc") + 1
    assert h.read(out, 13) == b"n=1234 s=abc\0"
    small = h.mem(b"\xff" * 6)
    assert h.call("snprintf", small, 5, fmt, args, 16) == 13  # needed length, with the NUL
    assert h.read(small, 6) == b"n=12\0\xff"
    assert h.call("snprintf", 0, 0, fmt, args, 16) == 13
    assert h.call("snprintf", out, 16, fmt, args, 12) == -errno.EINVAL  # not a multiple of 8
    assert h.call("snprintf", out, 16, fmt, args, 13 * 8) == -errno.EINVAL  # > 12 arguments
    assert h.call("snprintf", out, 16, fmt, 0, 16) == -errno.EINVAL
    assert h.call("snprintf", out, 16, fmt, args, 8) == -errno.EINVAL  # two conversions


# -- probe_read -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["probe_read_kernel", "probe_read_user", "probe_read"])
def test_probe_read(h: Harness, name: str) -> None:
    src = h.mem(b"0123456789")
    dst = h.mem(b"\xaa" * 8)
    assert h.call(name, dst, 8, src) == 0 and h.read(dst, 8) == b"01234567"
    assert h.call(name, dst, 8, src + 4) == -errno.EFAULT  # runs past the region
    assert h.read(dst, 8) == bytes(8)
    assert h.call(name, dst, 4, 0) == -errno.EFAULT


@pytest.mark.parametrize("name", ["probe_read_kernel_str", "probe_read_user_str"])
def test_probe_read_str(h: Harness, name: str) -> None:
    src = h.mem(b"abc\0zzzzzz")
    dst = h.mem(b"\xaa" * 8)
    assert h.call(name, dst, 8, src) == 4 and h.read(dst, 5) == b"abc\0\xaa"
    long = h.mem(b"abcdefghij\0")
    assert h.call(name, dst, 5, long) == 5 and h.read(dst, 5) == b"abcd\0"
    unterminated = h.mem(b"xyz")
    assert h.call(name, dst, 8, unterminated) == -errno.EFAULT
    assert h.read(dst, 8) == bytes(8)


# -- callbacks --------------------------------------------------------------------------------


def test_bpf_loop(h: Harness) -> None:
    seen: list[tuple[int, int]] = []
    count = h.callback(lambda i, ctx: seen.append((i, ctx)) or 0)
    assert h.call("loop", 5, count, 0xC7, 0) == 5
    assert seen == [(i, 0xC7) for i in range(5)]
    stop = h.callback(lambda i, ctx: 1 if i == 2 else 0)
    assert h.call("loop", 10, stop, 0, 0) == 3
    assert h.call("loop", 0, stop, 0, 0) == 0
    first = h.callback(lambda i, ctx: 1)
    assert h.call("loop", 1 << 23, first, 0, 0) == 1  # BPF_MAX_LOOPS itself is allowed
    assert h.call("loop", (1 << 23) + 1, first, 0, 0) == -errno.E2BIG
    assert h.call("loop", 1, first, 0, 1) == -errno.EINVAL


def test_for_each_map_elem(h: Harness, arena: Arena) -> None:
    m = _map(arena, "array", 4, 4, 3)
    mp = h.run.maps.register(m)
    for i in range(3):
        m.update(i, 10 * i)
    seen: list[tuple[int, int]] = []

    def visit(map_ptr: int, key: int, value: int, ctx: int) -> int:
        assert map_ptr == mp and ctx == 99
        seen.append(
            (int.from_bytes(h.read(key, 4), "little"), int.from_bytes(h.read(value, 4), "little"))
        )
        return 0

    assert h.call("for_each_map_elem", mp, h.callback(visit), 99, 0) == 3
    assert seen == [(0, 0), (1, 10), (2, 20)]
    assert h.call("for_each_map_elem", mp, h.callback(lambda *a: 1), 0, 0) == 1
    assert h.call("for_each_map_elem", mp, h.callback(lambda *a: 0), 0, 1) == -errno.EINVAL


# -- ring buffer and perf output --------------------------------------------------------------


def test_ringbuf(h: Harness, arena: Arena) -> None:
    rb = _map(arena, "ringbuf", 0, 0, 4096)
    mp = h.run.maps.register(rb)
    assert h.call("ringbuf_output", mp, h.mem(b"abcd"), 4, 0) == 0
    assert h.call("ringbuf_output", mp, h.mem(b"abcd"), 4, 4) == -errno.EINVAL
    sample = h.call("ringbuf_reserve", mp, 8, 0)
    assert sample
    arena.write(sample, b"12345678")
    assert h.call("ringbuf_submit", sample, 0) == 0
    gone = h.call("ringbuf_reserve", mp, 8, 0)
    assert h.call("ringbuf_discard", gone, 0) == 0
    assert h.call("ringbuf_reserve", mp, 8, 1) == 0  # flags must be 0
    assert h.call("ringbuf_query", mp, 1) == 4096  # BPF_RB_RING_SIZE
    assert rb.consume() == [b"abcd", b"12345678"]
    with pytest.raises(Trap):
        h.call("ringbuf_submit", sample, 0)  # already submitted


def test_perf_event_output(arena: Arena) -> None:
    h = Harness(arena, T.KPROBE, env=Environment(cpu=1, ncpus=2))
    pe = _map(arena, "perf_event_array", 4, 4, 2, ncpus=2)
    pe.open()
    mp = h.run.maps.register(pe)
    data = h.mem(b"event")
    assert h.call("perf_event_output", 0, mp, 0xFFFFFFFF, data, 5) == 0  # BPF_F_CURRENT_CPU
    assert h.call("perf_event_output", 0, mp, 5, data, 5) == -errno.E2BIG
    assert h.call("perf_event_output", 0, mp, 1 << 40, data, 5) == -errno.EINVAL  # no packet
    assert [s[:5] for s in pe.read(1)] == [b"event"]


# -- spin locks -------------------------------------------------------------------------------


def test_spin_lock_is_a_real_lock(h: Harness, arena: Arena) -> None:
    lock = h.mem(bytes(4))
    h.call("spin_lock", lock)
    assert h.read(lock, 4) == b"\x01\0\0\0"
    other = Harness(arena, T.SCHED_CLS)
    acquired = threading.Event()

    def contend() -> None:
        other.call("spin_lock", lock)
        acquired.set()
        other.call("spin_unlock", lock)

    t = threading.Thread(target=contend)
    t.start()
    time.sleep(0.05)
    assert not acquired.is_set()
    h.call("spin_unlock", lock)
    t.join(5)
    assert acquired.is_set() and h.read(lock, 4) == bytes(4)
    with pytest.raises(Trap):
        h.call("spin_unlock", lock)


def test_finish_releases_leaked_locks(h: Harness) -> None:
    lock = h.mem(bytes(4))
    h.call("spin_lock", lock)
    assert h.run.finish() == [lock]
    h.call("spin_lock", lock)
    h.call("spin_unlock", lock)


# -- timers -----------------------------------------------------------------------------------


def test_timer_lifecycle(arena: Arena) -> None:
    env = Environment(clock_start_ns=1000, clock_step_ns=0)
    h = Harness(arena, T.SCHED_CLS, env=env)
    m = _map(arena, "hash", 4, 16, 4)
    mp = h.run.maps.register(m)
    key = h.mem(u32(9))
    assert h.call("map_update_elem", mp, key, h.mem(bytes(16)), 0) == 0
    timer = h.call("map_lookup_elem", mp, key)
    fired: list[tuple[int, int, int, int]] = []
    cb = h.callback(lambda mp_, k, v: fired.append((mp_, k, v, h.run.clock_ns)) or 0)
    assert h.call("timer_set_callback", timer, cb) == -errno.EINVAL  # not initialized
    assert h.call("timer_init", timer, mp, 3) == -errno.EINVAL  # CLOCK_THREAD_CPUTIME_ID
    assert h.call("timer_init", timer, mp, 16) == -errno.EINVAL
    assert h.call("timer_init", timer, mp, 1) == 0
    assert h.call("timer_init", timer, mp, 1) == -errno.EBUSY
    assert h.call("timer_start", timer, 500, 0) == -errno.EINVAL  # no callback yet
    assert h.call("timer_set_callback", timer, cb) == 0
    assert h.call("timer_start", timer, 500, 4) == -errno.EINVAL  # unknown flag
    assert h.call("timer_start", timer, 500, 0) == 0
    assert fired == []  # callbacks run only after the program returns
    ran = h.run.drain_async()
    assert [e.kind for e in ran] == ["timer"]
    assert fired == [(mp, timer - 8, timer, 1500)]  # key sits round_up(4, 8) before the value
    assert h.read(fired[0][1], 4) == u32(9)
    assert h.call("timer_start", timer, 5000, 1) == 0  # BPF_F_TIMER_ABS
    assert h.call("timer_cancel", timer) == 1  # it was armed
    assert h.run.drain_async() == []
    assert h.call("timer_cancel", timer) == 0
    assert h.call("timer_start", timer, 1, 0) == -errno.EINVAL  # cancel dropped the callback


def test_timer_in_array_gets_index_key_and_cannot_cancel_itself(arena: Arena) -> None:
    h = Harness(arena, T.SCHED_CLS)
    m = _map(arena, "array", 4, 16, 3)
    mp = h.run.maps.register(m)
    timer = h.call("map_lookup_elem", mp, h.mem(u32(2)))
    results: list[int] = []

    def cb(map_ptr: int, key: int, value: int) -> int:
        results.append(int.from_bytes(h.read(key, 4), "little"))
        results.append(h.call("timer_cancel", value))
        return 0

    h.call("timer_init", timer, mp, 1)
    h.call("timer_set_callback", timer, h.callback(cb))
    h.call("timer_start", timer, 10, 0)
    h.run.drain_async()
    assert results == [2, -errno.EDEADLK]


def test_periodic_timer_is_bounded(arena: Arena) -> None:
    h = Harness(arena, T.SCHED_CLS, env=Environment(max_async_callbacks=5))
    m = _map(arena, "array", 4, 16, 1)
    mp = h.run.maps.register(m)
    timer = h.call("map_lookup_elem", mp, h.mem(u32(0)))
    h.call("timer_init", timer, mp, 1)
    h.call(
        "timer_set_callback", timer, h.callback(lambda m_, k, v: h.call("timer_start", v, 100, 0))
    )
    h.call("timer_start", timer, 100, 0)
    assert len(h.run.drain_async()) == 5
    assert len(h.run.async_queue) == 1


def test_timer_state_is_shared_between_runs(arena: Arena) -> None:
    shared = SharedState()
    first = Harness(arena, run=RunContext(arena, shared=shared, prog_type=T.XDP))
    m = _map(arena, "array", 4, 16, 1)
    mp = first.run.maps.register(m)
    timer = first.call("map_lookup_elem", mp, first.mem(u32(0)))
    assert first.call("timer_init", timer, mp, 1) == 0
    second = Harness(arena, run=RunContext(arena, shared=shared, prog_type=T.XDP))
    second.run.maps.register(m)
    assert second.call("timer_init", timer, mp, 1) == -errno.EBUSY


def test_forgotten_timer_does_not_fire(arena: Arena) -> None:
    h = Harness(arena, T.SCHED_CLS)
    m = _map(arena, "array", 4, 16, 1)
    mp = h.run.maps.register(m)
    timer = h.call("map_lookup_elem", mp, h.mem(u32(0)))
    h.call("timer_init", timer, mp, 1)
    h.call("timer_set_callback", timer, h.callback(lambda *a: 0))
    h.call("timer_start", timer, 10, 0)
    assert h.run.shared.forget(timer, 16) == 1
    assert h.run.drain_async() == [] and h.calls == []
    assert h.call("timer_init", timer, mp, 1) == 0  # the value is fresh again

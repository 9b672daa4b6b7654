"""Ring buffer: record headers, busy/discard bits, wrap-around, space rule, query, consumer."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.maps import (
    BPF_RB_AVAIL_DATA,
    BPF_RB_CONS_POS,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
    RingBufMap,
    create_map,
)
from pybpf.maps.ringbuf import BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT
from pybpf.memory import PAGE_SIZE, Arena

SIZE = 4096


@pytest.fixture(scope="module")
def arena():
    with Arena(1 << 26) as a:
        yield a


def ring(arena: Arena, size: int = SIZE) -> RingBufMap:
    m = create_map(arena, name="rb", map_type="ringbuf", key_size=0, value_size=0, max_entries=size)
    assert isinstance(m, RingBufMap)
    return m


def header(arena: Arena, sample: int) -> tuple[int, int]:
    raw = bytes(arena.view[sample - 8 : sample])
    return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")


def write(arena: Arena, addr: int, data: bytes) -> None:
    arena.view[addr : addr + len(data)] = data


def test_reserve_submit_header_and_layout(arena):
    rb = ring(arena)
    s = rb.reserve(5)
    assert s == rb.data + 8
    assert header(arena, s) == (5 | BPF_RINGBUF_BUSY_BIT, 3)
    assert (rb.data - rb._region.start) // PAGE_SIZE == 3
    assert rb.consume() == []  # busy
    write(arena, s, b"hello")
    rb.submit(s)
    assert header(arena, s) == (5, 3)
    assert rb.query(BPF_RB_AVAIL_DATA) == 16
    assert rb.consume() == [b"hello"]
    assert rb.query(BPF_RB_CONS_POS) == rb.query(BPF_RB_PROD_POS) == 16
    assert int.from_bytes(arena.view[rb.consumer_addr : rb.consumer_addr + 8], "little") == 16
    assert int.from_bytes(arena.view[rb.producer_addr : rb.producer_addr + 8], "little") == 16
    assert rb.query(BPF_RB_RING_SIZE) == SIZE and rb.query(99) == 0


def test_busy_record_blocks_and_discard_is_skipped(arena):
    rb = ring(arena)
    a, b, c = rb.reserve(1), rb.reserve(2), rb.reserve(3)
    write(arena, a, b"A")
    write(arena, b, b"BB")
    write(arena, c, b"CCC")
    rb.submit(b)
    rb.discard(c)
    assert header(arena, c)[0] == 3 | BPF_RINGBUF_DISCARD_BIT
    assert rb.consume() == []
    rb.submit(a)
    assert rb.consume() == [b"A", b"BB"]
    assert rb.query(BPF_RB_AVAIL_DATA) == 0


def test_wrap_around_record_is_contiguous(arena):
    rb = ring(arena)
    assert rb.output(b"x" * 3000) == 0
    assert rb.consume() == [b"x" * 3000]
    payload = bytes(range(256)) * 8  # 2048 bytes starting at offset 3016: wraps
    s = rb.reserve(len(payload))
    assert s - rb.data == 3008 + 8
    write(arena, s, payload)  # the program writes straight through the end
    rb.submit(s)
    tail = 3016 + len(payload) - SIZE
    assert bytes(arena.view[rb.data : rb.data + tail]) == payload[-tail:]
    assert list(rb) == [payload]
    assert rb.output(b"after") == 0
    assert rb.consume() == [b"after"]


def test_space_rule(arena):
    rb = ring(arena)
    assert rb.reserve(SIZE - 8) == 0  # would make producer exactly SIZE ahead
    assert rb.reserve(SIZE) == 0
    big = rb.reserve(SIZE - 16)
    assert big
    assert rb.reserve(0) == 0
    assert rb.output(b"") == -errno.EAGAIN
    rb.discard(big)
    assert rb.consume() == []
    assert rb.reserve(1, flags=1) == 0
    assert rb.output(b"x", 4) == -errno.EINVAL


def test_wakeup_flags(arena):
    rb = ring(arena)
    rb.output(b"a")
    assert rb.wakeups == 1  # consumer was waiting at this record
    rb.output(b"b")
    assert rb.wakeups == 1
    rb.output(b"c", BPF_RB_FORCE_WAKEUP)
    assert rb.wakeups == 2
    rb.consume()
    rb.output(b"d", BPF_RB_NO_WAKEUP)
    assert rb.wakeups == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 1500), st.none()), max_size=40))
def test_ring_against_model(arena, ops):
    rb = ring(arena)
    pending: list[bytes] = []
    used = 0
    for i, size in enumerate(ops):
        if size is None:
            assert rb.consume() == pending
            pending, used = [], 0
            continue
        data = bytes([i & 0xFF]) * size
        need = (size + 8 + 7) & -8
        ok = used + need <= SIZE - 1
        assert rb.output(data) == (0 if ok else -errno.EAGAIN)
        if ok:
            pending.append(data)
            used += need
    assert rb.consume() == pending
    assert rb.query(BPF_RB_AVAIL_DATA) == 0

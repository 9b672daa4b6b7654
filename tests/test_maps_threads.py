"""Map memory lifetime (epoch-deferred frees) and programs on several threads at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pybpf.maps import create_map
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY, BPF_EXIST
from pybpf.uapi import MapFlag as F


def b4(i: int) -> bytes:
    return i.to_bytes(4, "little")


@pytest.fixture
def arena():
    with Arena(1 << 26) as a:
        yield a


def hashmap(arena: Arena, kind: str = "hash", n: int = 64, vs: int = 16, **kw):
    return create_map(
        arena, name=kind[:15], map_type=kind, key_size=4, value_size=vs, max_entries=n, **kw
    )


@pytest.mark.parametrize(
    ("kind", "flags"),
    [("hash", 0), ("hash", F.BPF_F_NO_PREALLOC), ("lru_hash", 0), ("lpm_trie", 0)],
)
def test_deleted_value_outlives_open_epoch(arena, kind, flags):
    if kind == "lpm_trie":
        m = create_map(
            arena,
            name="t",
            map_type=kind,
            key_size=8,
            value_size=16,
            max_entries=64,
            map_flags=F.BPF_F_NO_PREALLOC,
        )

        def key(i: int) -> bytes:
            return b4(32) + i.to_bytes(4, "big")
    else:
        m = hashmap(arena, kind, map_flags=flags)
        key = b4
    m.update_elem(key(1), b"A" * 16, BPF_ANY)
    with arena.epoch():
        held = m.lookup_elem(key(1))
        m.delete_elem(key(1))
        for i in range(2, 40):  # churn: new elements must not land on the held value
            m.update_elem(key(i), b"B" * 16, BPF_ANY)
            m.delete_elem(key(i))
        assert bytes(arena.view[held : held + 16]) == b"A" * 16
        assert arena.find(held, 16) is not None
    assert arena.find(held, 16) is None  # released once the epoch closed


def test_replaced_value_keeps_old_contents_for_readers(arena):
    m = hashmap(arena)
    m.update_elem(b4(1), b"old" + bytes(13), BPF_ANY)
    with arena.epoch():
        held = m.lookup_elem(b4(1))
        assert m.update_elem(b4(1), b"new" + bytes(13), BPF_EXIST) == 0
        assert bytes(arena.view[held : held + 3]) == b"old"  # as after the kernel's replace
        assert m.lookup(1)[:3] == b"new"
        assert m.lookup_elem(b4(1)) != held
    assert arena.find(held, 16) is None


def test_nested_epochs_hold_until_the_oldest_exits(arena):
    m = hashmap(arena)
    m.update_elem(b4(1), bytes(16), BPF_ANY)
    outer = arena.enter_epoch()
    held = m.lookup_elem(b4(1))
    with arena.epoch():
        m.delete_elem(b4(1))
    assert arena.find(held, 16) is not None
    arena.exit_epoch(outer)
    assert arena.find(held, 16) is None


def test_threads_hammer_hash_without_loss(arena):
    m = hashmap(arena, n=4 * 64 + 8, vs=8)
    threads = 4
    barrier = threading.Barrier(threads)

    def worker(t: int) -> dict[int, int]:
        mine: dict[int, int] = {}
        barrier.wait()
        for rnd in range(300):
            k = t * 64 + rnd % 64
            value = (t << 32) | rnd
            with arena.epoch():
                if rnd % 5 == 4:
                    rc = m.delete_elem(b4(k))
                    assert rc == (0 if k in mine else -2)
                    mine.pop(k, None)
                else:
                    assert m.update_elem(b4(k), value.to_bytes(8, "little"), BPF_ANY) == 0
                    mine[k] = value
                # shared key: everyone updates it, nobody may corrupt it
                m.update_elem(b4(9999), (t * 0x0101010101010101).to_bytes(8, "little"), BPF_ANY)
                addr = m.lookup_elem(b4(9999))
                raw = bytes(arena.view[addr : addr + 8])
                assert len(set(raw)) == 1, raw
        return mine

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, range(threads)))
    expected = {k: v for r in results for k, v in r.items()}
    got = {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in m.items()}
    got.pop(9999)
    assert got == expected
    assert len(m) == len(expected) + 1
    assert arena.stats.deferred_pending == 0


def test_threads_hammer_array_and_percpu(arena):
    arr = create_map(arena, name="a", map_type="array", key_size=4, value_size=8, max_entries=64)
    pc = create_map(
        arena,
        name="p",
        map_type="percpu_array",
        key_size=4,
        value_size=8,
        max_entries=1,
        ncpus=4,
    )

    def worker(cpu: int) -> None:
        for i in range(500):
            idx = cpu * 16 + i % 16
            arr.update_elem(b4(idx), (cpu * 1000 + i).to_bytes(8, "little"), BPF_ANY)
            addr = pc.lookup_elem(b4(0), cpu)  # a per-CPU counter needs no atomics
            count = int.from_bytes(arena.view[addr : addr + 8], "little")
            arena.view[addr : addr + 8] = (count + 1).to_bytes(8, "little")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    for cpu in range(4):
        for j in range(16):
            last = max(i for i in range(500) if i % 16 == j)
            assert int.from_bytes(arr[cpu * 16 + j], "little") == cpu * 1000 + last
    assert [int.from_bytes(v, "little") for v in pc[0]] == [500] * 4


def test_threads_lru_never_exceeds_capacity(arena):
    m = hashmap(arena, "lru_hash", n=16, vs=8)

    def worker(t: int) -> None:
        for i in range(400):
            with arena.epoch():
                m.update_elem(b4(t * 1000 + i), bytes(8), BPF_ANY)
                m.lookup_elem(b4(t * 1000 + i // 2))
            assert len(m) <= 16

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    assert len(m) == 16


def test_threads_queue_loses_nothing(arena):
    q = create_map(arena, name="q", map_type="queue", key_size=0, value_size=4, max_entries=64)
    popped: list[int] = []
    lock = threading.Lock()

    def producer(t: int) -> int:
        pushed = 0
        for i in range(200):
            if q.push_elem(b4(t * 1000 + i), BPF_ANY) == 0:
                pushed += 1
        return pushed

    def consumer() -> None:
        buf = arena.alloc(4).start
        for _ in range(300):
            if q.pop_elem(buf) == 0:
                with lock:
                    popped.append(int.from_bytes(arena.view[buf : buf + 4], "little"))

    with ThreadPoolExecutor(4) as pool:
        pushes = [pool.submit(producer, t) for t in range(2)]
        pops = [pool.submit(consumer) for _ in range(2)]
        total = sum(f.result() for f in pushes)
        for f in pops:
            f.result()
    rest = [int.from_bytes(v, "little") for v in q.snapshot()]
    assert len(popped) + len(rest) == total
    assert len(set(popped + rest)) == total

"""Map operations, table-driven per map type: (operation, arguments, expected result or errno).

Program-face operations (``*_elem``, ``next_key``) return values or ``-errno``; userspace
operations raise MapError, written here as ``Err(errno)``. ``get`` is a program lookup read
back as bytes (None for NULL); ``pop_at``/``peek_at`` go through a scratch buffer in the Arena.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

import pytest

from pybpf.errors import MapError
from pybpf.maps import BPF_F_CURRENT_CPU, ENOTSUPP, BpfMap, create_map
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST
from pybpf.uapi import MapFlag as F


@dataclass(frozen=True)
class Err:
    errno: int


def k(i: int) -> bytes:
    return i.to_bytes(4, "little")


v = k  # 4-byte values look like keys


@pytest.fixture(scope="module")
def arena():
    with Arena(1 << 26) as a:
        yield a


def make(arena: Arena, kind: str, ks: int = 4, vs: int = 4, me: int = 4, **kw: Any) -> BpfMap:
    return create_map(
        arena, name=kind[:15], map_type=kind, key_size=ks, value_size=vs, max_entries=me, **kw
    )


def run(arena: Arena, m: BpfMap, steps: list[tuple[str, tuple, Any]]) -> None:
    scratch = arena.alloc(max(m.value_size, 8)).start

    def get(key: bytes, cpu: int = 0) -> bytes | None:
        addr = m.lookup_elem(key, cpu)
        return None if addr == 0 else bytes(arena.view[addr : addr + m.value_size])

    def through(fn: str) -> Any:
        def call() -> tuple[int, bytes]:
            rc = getattr(m, fn)(scratch)
            return rc, bytes(arena.view[scratch : scratch + m.value_size])

        return call

    local = {"get": get, "pop_at": through("pop_elem"), "peek_at": through("peek_elem")}
    for i, (op, args, want) in enumerate(steps):
        fn = local.get(op) or getattr(m, op)
        where = f"step {i}: {op}{args}"
        if isinstance(want, Err):
            with pytest.raises(MapError) as info:
                fn(*args)
            assert info.value.errno == want.errno, where
            assert m.name in str(info.value), where
        else:
            assert fn(*args) == want, where


ARRAY = [
    ("update_elem", (k(0), v(1), BPF_ANY), 0),
    ("update_elem", (k(0), v(2), BPF_NOEXIST), -errno.EEXIST),
    ("update_elem", (k(0), v(3), BPF_EXIST), 0),
    ("update_elem", (k(4), v(1), BPF_ANY), -errno.E2BIG),
    ("update_elem", (k(0), v(1), 3), -errno.EINVAL),
    ("update_elem", (k(0), v(1), 8), -errno.EINVAL),
    ("update_elem", (k(0), v(1), BPF_F_LOCK), -errno.EINVAL),
    ("delete_elem", (k(0),), -errno.EINVAL),
    ("get", (k(0),), v(3)),
    ("get", (k(3),), v(0)),
    ("get", (k(4),), None),
    ("next_key", (None,), k(0)),
    ("next_key", (k(1),), k(2)),
    ("next_key", (k(3),), -errno.ENOENT),
    ("next_key", (k(99),), k(0)),
    ("lookup", (0,), v(3)),
    ("lookup", (4,), Err(errno.ENOENT)),
    ("lookup", (b"\0\0",), Err(errno.EINVAL)),
    ("lookup", (0, 2), Err(errno.EINVAL)),
    ("update", (4, 1), Err(errno.E2BIG)),
    ("update", (0, 1, BPF_NOEXIST), Err(errno.EEXIST)),
    ("update", (0, b"12345"), Err(errno.EINVAL)),
    ("update", (0, 1 << 40), Err(errno.EINVAL)),
    ("update", (2, -1), None),
    ("lookup", (2,), b"\xff" * 4),
    ("delete", (0,), Err(errno.EINVAL)),
    ("get_next_key", (None,), k(0)),
    ("get_next_key", (3,), Err(errno.ENOENT)),
    ("lookup_and_delete", (0,), Err(ENOTSUPP)),
    ("keys", (), [k(0), k(1), k(2), k(3)]),
    ("__len__", (), 4),
    ("__contains__", (3,), True),
    ("__contains__", (4,), False),
    ("delete_batch", ([0],), Err(ENOTSUPP)),
    ("lookup_and_delete_batch", (), Err(ENOTSUPP)),
]

HASH = [
    ("update_elem", (k(1), v(10), BPF_EXIST), -errno.ENOENT),
    ("update_elem", (k(1), v(10), BPF_NOEXIST), 0),
    ("update_elem", (k(1), v(11), BPF_NOEXIST), -errno.EEXIST),
    ("update_elem", (k(1), v(12), BPF_EXIST), 0),
    ("update_elem", (k(2), v(20), BPF_ANY), 0),
    ("update_elem", (k(3), v(30), BPF_ANY), -errno.E2BIG),
    ("update_elem", (k(1), v(13), BPF_ANY), 0),
    ("update_elem", (k(1), v(13), 3), -errno.EINVAL),
    ("update_elem", (k(1), v(13), BPF_F_LOCK), -errno.EINVAL),
    ("get", (k(1),), v(13)),
    ("get", (k(3),), None),
    ("delete_elem", (k(3),), -errno.ENOENT),
    ("next_key", (None,), k(1)),
    ("next_key", (k(1),), k(2)),
    ("next_key", (k(2),), -errno.ENOENT),
    ("next_key", (k(7),), k(1)),
    ("delete_elem", (k(2),), 0),
    ("next_key", (k(1),), -errno.ENOENT),
    ("__len__", (), 1),
    ("lookup", (2,), Err(errno.ENOENT)),
    ("delete", (2,), Err(errno.ENOENT)),
    ("update", (5, 50, BPF_EXIST), Err(errno.ENOENT)),
    ("update", (1, 50, BPF_NOEXIST), Err(errno.EEXIST)),
    ("update", (5, 50), None),
    ("update", (6, 60), Err(errno.E2BIG)),
    ("items", (), [(k(1), v(13)), (k(5), v(50))]),
    ("lookup_and_delete", (1,), v(13)),
    ("lookup_and_delete", (1,), Err(errno.ENOENT)),
    ("lookup_and_delete", (5, 1), Err(errno.EINVAL)),
    ("get_next_key", (None,), k(5)),
    ("get_next_key", (5,), Err(errno.ENOENT)),
    ("pop_at", (), (-errno.EOPNOTSUPP, v(0))),
]

PERCPU_HASH = [
    ("update_elem", (k(1), v(7), BPF_ANY, 1), 0),
    ("get", (k(1), 0), v(0)),
    ("get", (k(1), 1), v(7)),
    ("get", (k(1), 2), None),
    ("update_elem", (k(1), v(8), BPF_EXIST, 0), 0),
    ("update_elem", (k(1), v(8), BPF_F_LOCK, 0), -errno.EINVAL),
    ("lookup", (1,), [v(8), v(7)]),
    ("update", (2, [3, 4]), None),
    ("lookup", (2,), [v(3), v(4)]),
    ("update", (2, 9, BPF_EXIST), None),
    ("lookup", (2,), [v(9), v(9)]),
    ("update", (2, v(1) + bytes(4) + v(2) + bytes(4)), None),
    ("lookup", (2,), [v(1), v(2)]),
    ("update", (2, [1, 2, 3]), Err(errno.EINVAL)),
    ("update", (3, [1, 2]), Err(errno.E2BIG)),
    ("lookup_and_delete", (2,), [v(1), v(2)]),
]

PERCPU_ARRAY = [
    ("update_elem", (k(1), v(7), BPF_ANY, 1), 0),
    ("update_elem", (k(1), v(7), BPF_NOEXIST, 1), -errno.EEXIST),
    ("get", (k(1), 1), v(7)),
    ("get", (k(1), 0), v(0)),
    ("get", (k(1), 2), None),
    ("lookup", (1,), [v(0), v(7)]),
    ("update", (3, [5, 6]), None),
    ("lookup", (3,), [v(5), v(6)]),
    ("update", (4, [5, 6]), Err(errno.E2BIG)),
    ("update", (3, [5, 6], BPF_F_LOCK), Err(errno.EINVAL)),
    ("lookup", (4,), Err(errno.ENOENT)),
]

QUEUE = [
    ("push_elem", (v(1), BPF_ANY), 0),
    ("push_elem", (v(2), BPF_ANY), 0),
    ("push_elem", (v(3), BPF_ANY), -errno.E2BIG),
    ("push_elem", (v(3), BPF_NOEXIST), -errno.EINVAL),
    ("push_elem", (v(3), BPF_F_LOCK), -errno.EINVAL),
    ("push_elem", (v(3), BPF_EXIST), 0),
    ("peek_at", (), (0, v(2))),
    ("pop_at", (), (0, v(2))),
    ("pop_at", (), (0, v(3))),
    ("pop_at", (), (-errno.ENOENT, v(0))),
    ("lookup_elem", (b"",), 0),
    ("update_elem", (b"", v(1), BPF_ANY), -errno.EINVAL),
    ("delete_elem", (b"",), -errno.EINVAL),
    ("next_key", (None,), -errno.EINVAL),
    ("push", (5,), None),
    ("push", (6,), None),
    ("push", (7,), Err(errno.E2BIG)),
    ("push", (7, BPF_EXIST), None),
    ("snapshot", (), [v(6), v(7)]),
    ("peek_at", (), (0, v(6))),
    ("pop_at", (), (0, v(6))),
    ("lookup_and_delete", (None, BPF_F_LOCK), Err(errno.EINVAL)),
    ("lookup", (1,), Err(errno.EINVAL)),
    ("delete", (None,), Err(errno.EINVAL)),
    ("get_next_key", (None,), Err(errno.EINVAL)),
    ("__len__", (), 1),
]

STACK = [
    ("push_elem", (v(1), BPF_ANY), 0),
    ("push_elem", (v(2), BPF_ANY), 0),
    ("push_elem", (v(3), BPF_ANY), -errno.E2BIG),
    ("push_elem", (v(3), BPF_EXIST), 0),
    ("peek_at", (), (0, v(3))),
    ("pop_at", (), (0, v(3))),
    ("pop_at", (), (0, v(2))),
    ("pop_at", (), (-errno.ENOENT, v(0))),
    ("push", (8,), None),
    ("push", (9,), None),
    ("snapshot", (), [v(9), v(8)]),
    ("pop_at", (), (0, v(9))),
]

BLOOM = [
    ("push_elem", (v(1), BPF_EXIST), -errno.EINVAL),
    ("push_elem", (v(1), BPF_ANY), 0),
    ("pop_at", (), (-errno.EOPNOTSUPP, v(0))),
    ("delete_elem", (b"",), -errno.EOPNOTSUPP),
    ("next_key", (None,), -errno.EOPNOTSUPP),
    ("contains", (v(1),), 0),
    ("push", (2,), None),
    ("peek", (2,), None),
    ("__contains__", (1,), True),
    ("__contains__", (3,), False),
    ("peek", (3,), Err(errno.ENOENT)),
    ("lookup", (None,), Err(errno.EINVAL)),
    ("get_next_key", (None,), Err(errno.EOPNOTSUPP)),
]

RINGBUF = [
    ("lookup", (None,), Err(ENOTSUPP)),
    ("update", (None, b""), Err(ENOTSUPP)),
    ("delete", (None,), Err(ENOTSUPP)),
    ("get_next_key", (None,), Err(ENOTSUPP)),
    ("keys", (), Err(ENOTSUPP)),
    ("lookup_elem", (b"",), 0),
]

PROG_ARRAY = [
    ("lookup_elem", (k(0),), 0),
    ("update", (0, 5, BPF_EXIST), Err(errno.EINVAL)),
    ("update", (4, 5), Err(errno.E2BIG)),
    ("update", (0, None), Err(errno.EBADF)),
    ("update", (0, 5), None),
    ("update", (1, b"\x07\0\0\0"), None),
    ("lookup", (0,), 5),
    ("lookup", (1,), 7),
    ("lookup", (2,), Err(errno.ENOENT)),
    ("tail_call_target", (1,), 7),
    ("tail_call_target", (2,), None),
    ("tail_call_target", (4,), None),
    ("keys", (), [k(0), k(1)]),
    ("delete", (1,), None),
    ("delete", (1,), Err(errno.ENOENT)),
    ("delete", (9,), Err(errno.E2BIG)),
    ("next_key", (k(3),), -errno.ENOENT),
    ("update_elem", (k(0), v(1), BPF_ANY), -errno.EOPNOTSUPP),
]

PERF = [
    ("output", (b"abc", BPF_F_CURRENT_CPU, 0), -errno.ENOENT),
    ("open", (), None),
    ("output", (b"abc", BPF_F_CURRENT_CPU, 1), 0),
    ("output", (b"abcde", 0, 0), 0),
    ("output", (b"x" * 4, 1, 0), -errno.EOPNOTSUPP),
    ("output", (b"x", 4, 0), -errno.E2BIG),
    ("output", (b"x", 1 << 32, 0), -errno.EINVAL),
    ("read", (1,), [b"abc\0"]),
    ("read", (), [b"abcde" + bytes(7)]),
    ("read", (), []),
    ("lookup", (0,), Err(ENOTSUPP)),
    ("update", (3, 1), None),
    ("update", (3, 2), Err(errno.EBADF)),
    ("delete", (3,), None),
    ("delete", (3,), Err(errno.ENOENT)),
]

TABLES = {
    "array": (dict(), ARRAY),
    "hash": (dict(me=2), HASH),
    "lru_hash": (dict(me=3), HASH[:5] + HASH[6:8] + HASH[9:11]),
    "percpu_hash": (dict(me=2, ncpus=2), PERCPU_HASH),
    "lru_percpu_hash": (dict(me=2, ncpus=2), PERCPU_HASH[:5]),
    "percpu_array": (dict(ncpus=2), PERCPU_ARRAY),
    "queue": (dict(ks=0, me=2), QUEUE),
    "stack": (dict(ks=0, me=2), STACK),
    "bloom_filter": (dict(ks=0, me=10), BLOOM),
    "ringbuf": (dict(ks=0, vs=0, me=4096), RINGBUF),
    "prog_array": (dict(), PROG_ARRAY),
    "perf_event_array": (dict(ncpus=2), PERF),
}


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_operation_table(arena, kind):
    kw, steps = TABLES[kind]
    run(arena, make(arena, kind, **kw), steps)


# ---------------------------------------------------------------- access control


def test_rdonly_wronly_and_freeze(arena):
    ro = make(arena, "hash", map_flags=F.BPF_F_RDONLY)
    assert ro.update_elem(k(1), v(1), BPF_ANY) == 0  # programs still write
    run(
        arena,
        ro,
        [
            ("lookup", (1,), v(1)),
            ("update", (1, 2), Err(errno.EPERM)),
            ("delete", (1,), Err(errno.EPERM)),
            ("freeze", (), Err(errno.EPERM)),
        ],
    )
    wo = make(arena, "hash", map_flags=F.BPF_F_WRONLY)
    run(
        arena,
        wo,
        [
            ("update", (1, 2), None),
            ("lookup", (1,), Err(errno.EPERM)),
            ("get_next_key", (None,), Err(errno.EPERM)),
            ("lookup_and_delete", (1,), Err(errno.EPERM)),
            ("delete", (1,), None),
        ],
    )
    assert wo.map_flags == 0 and ro.access_flags == F.BPF_F_RDONLY
    fr = make(arena, "array")
    fr[0] = 1
    fr.freeze()
    run(
        arena,
        fr,
        [
            ("update", (0, 2), Err(errno.EPERM)),
            ("freeze", (), Err(errno.EPERM)),
            ("lookup", (0,), v(1)),
            ("update_elem", (k(0), v(3), BPF_ANY), 0),
            ("lookup", (0,), v(3)),
        ],
    )


def test_rdonly_prog_regions_are_read_only(arena):
    m = make(arena, "array", map_flags=F.BPF_F_RDONLY_PROG)
    m[0] = 5
    region = arena.find(m.lookup_elem(k(0)), 4)
    assert region is not None and not region.writable
    assert m[0] == v(5)


# ---------------------------------------------------------------- batches


def test_array_batches(arena):
    m = make(arena, "array", me=5)
    assert m.update_batch([0, 1, 2, 3, 4], [10, 11, 12, 13, 14]) == 5
    first = m.lookup_batch(count=2)
    assert (first.keys, first.out_batch, first.errno) == ([k(0), k(1)], k(1), 0)
    second = m.lookup_batch(first.out_batch, 3)
    assert second.values == [v(12), v(13), v(14)] and not second.done
    last = m.lookup_batch(second.out_batch, 3)
    assert last.keys == [] and last.done
    assert m.lookup_batch(count=0).keys == []
    with pytest.raises(MapError) as info:
        m.update_batch([3, 9, 4], [1, 1, 1])
    assert info.value.errno == errno.E2BIG and "after 1 elements" in info.value.reason
    assert m[3] == v(1) and m[4] == v(14)
    with pytest.raises(MapError) as info:
        m.lookup_batch(flags=2)
    assert info.value.errno == errno.EINVAL


def test_hash_batches(arena):
    m = make(arena, "hash", me=8)
    m.update_batch(list(range(6)), [i * 10 for i in range(6)])
    seen: list[Any] = []
    token = None
    while True:
        r = m.lookup_batch(token, 4)
        seen += r.keys
        token = r.out_batch
        if r.done:
            break
    assert sorted(seen) == [k(i) for i in range(6)]
    assert m.delete_batch([0, 1]) == 2
    with pytest.raises(MapError) as info:
        m.delete_batch([2, 0, 3])
    assert info.value.errno == errno.ENOENT and "after 1 elements" in info.value.reason
    drained: list[Any] = []
    r = m.lookup_and_delete_batch(count=1)
    drained += r.keys
    while not r.done:
        r = m.lookup_and_delete_batch(r.out_batch, 1)
        drained += r.keys
    assert sorted(drained) == [k(3), k(4), k(5)] and len(m) == 0
    with pytest.raises(MapError) as info:
        m.lookup_batch("bogus", 1)
    assert info.value.errno == errno.EINVAL


def test_map_in_map_batches_and_handles(arena):
    from pybpf.maps import map_by_handle

    inner = make(arena, "array", me=2)
    outer = make(arena, "hash_of_maps", me=4, inner=inner)
    a, b = make(arena, "array", me=2), make(arena, "array", me=2)
    outer[1], outer[2] = a, b
    assert outer[1] is a and map_by_handle(arena, outer.lookup_elem(k(2))) is b
    assert outer.lookup_elem(k(3)) == 0
    r = outer.lookup_and_delete_batch(count=10)
    assert r.values == [a, b] and r.done and len(outer) == 0
    run(
        arena,
        outer,
        [
            ("update", (1, a, BPF_EXIST), Err(errno.ENOENT)),
            ("update", (1, a, 3), Err(errno.EINVAL)),
            ("update_elem", (k(1), v(0), BPF_ANY), -errno.EOPNOTSUPP),
            ("update", (1, a), None),
            ("update", (1, b, BPF_NOEXIST), Err(errno.EEXIST)),
            ("lookup_and_delete", (1,), a),
            ("delete", (1,), Err(errno.ENOENT)),
        ],
    )
    arr = make(arena, "array_of_maps", me=2, inner=inner)
    run(
        arena,
        arr,
        [
            ("update", (0, a, BPF_NOEXIST), Err(errno.EINVAL)),
            ("update", (0, a), None),
            ("lookup", (1,), Err(errno.ENOENT)),
            ("lookup", (0,), a),
            ("delete", (1,), Err(errno.ENOENT)),
            ("delete", (2,), Err(errno.E2BIG)),
        ],
    )
    assert arr.lookup_elem(k(0)) == a.handle and arr.lookup_elem(k(5)) == 0
    assert map_by_handle(arena, 12345) is None


# ---------------------------------------------------------------- conversions


def test_key_value_conversion_rule(arena):
    m = make(arena, "hash", ks=8, vs=2)
    m[-1] = 258
    assert m.lookup(b"\xff" * 8) == b"\x02\x01"
    with pytest.raises(MapError) as info:
        m[{"a": 1}] = 1
    assert info.value.errno == errno.EINVAL and "needs BTF" in info.value.reason
    with pytest.raises(MapError) as info:
        m[1] = b"\0"
    assert "must be 2 bytes" in info.value.reason
    assert list(m) == [b"\xff" * 8] and bool(m)


def test_for_each_iteration(arena):
    arr = make(arena, "array", me=3)
    arr[1] = 7
    seen = [
        (int.from_bytes(arena.view[ka : ka + 4], "little"), bytes(arena.view[va : va + 4]))
        for ka, va in arr.iter_elements()
    ]
    assert seen == [(0, v(0)), (1, v(7)), (2, v(0))]
    h = make(arena, "percpu_hash", ncpus=2)
    h.update(5, [1, 2])
    h.update(6, [3, 4])
    it = h.iter_elements(cpu=1)
    ka, va = next(it)
    assert bytes(arena.view[ka : ka + 4]) == k(5) and bytes(arena.view[va : va + 4]) == v(2)
    h.delete(6)
    assert list(it) == []
    q = make(arena, "queue", ks=0)
    with pytest.raises(Exception, match="for_each"):
        list(q.iter_elements())

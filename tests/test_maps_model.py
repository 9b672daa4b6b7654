"""Model-based tests: random operation sequences against a plain Python model, errno included."""

from __future__ import annotations

import errno
from collections import OrderedDict, deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.maps import create_map
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY, BPF_EXIST, BPF_NOEXIST

SETTINGS = settings(max_examples=60, deadline=None)
KEYS = st.integers(0, 6)
VALUES = st.integers(0, 2**32 - 1)
FLAGS = st.sampled_from([BPF_ANY, BPF_NOEXIST, BPF_EXIST, 3])


def b4(i: int) -> bytes:
    return i.to_bytes(4, "little")


@pytest.fixture(scope="module")
def arena():
    with Arena(1 << 26) as a:
        yield a


def read(arena: Arena, addr: int) -> int | None:
    return None if addr == 0 else int.from_bytes(arena.view[addr : addr + 4], "little")


HASH_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("update"), KEYS, VALUES, FLAGS),
        st.tuples(st.just("delete"), KEYS),
        st.tuples(st.just("lookup"), KEYS),
    ),
    max_size=40,
)


def hash_model_update(model: dict, cap: int, key: int, value: int, flags: int) -> int:
    if flags > BPF_EXIST:
        return -errno.EINVAL
    if key in model and flags == BPF_NOEXIST:
        return -errno.EEXIST
    if key not in model and flags == BPF_EXIST:
        return -errno.ENOENT
    if key not in model and len(model) >= cap:
        return -errno.E2BIG
    model[key] = value
    return 0


@SETTINGS
@given(HASH_OPS)
def test_hash_against_model(arena, ops):
    m = create_map(arena, name="h", map_type="hash", key_size=4, value_size=4, max_entries=4)
    model: dict[int, int] = {}
    for op in ops:
        if op[0] == "update":
            _, key, value, flags = op
            want = hash_model_update(model, 4, key, value, flags)
            assert m.update_elem(b4(key), b4(value), flags) == want
        elif op[0] == "delete":
            want = 0 if model.pop(op[1], None) is not None else -errno.ENOENT
            assert m.delete_elem(b4(op[1])) == want
        else:
            assert read(arena, m.lookup_elem(b4(op[1]))) == model.get(op[1])
    assert {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in m.items()} == model
    assert len(m) == len(model)


@SETTINGS
@given(HASH_OPS)
def test_array_against_model(arena, ops):
    m = create_map(arena, name="a", map_type="array", key_size=4, value_size=4, max_entries=4)
    model = [0] * 4
    for op in ops:
        if op[0] == "update":
            _, key, value, flags = op
            if flags > BPF_EXIST:
                want = -errno.EINVAL
            elif key >= 4:
                want = -errno.E2BIG
            elif flags == BPF_NOEXIST:
                want = -errno.EEXIST
            else:
                model[key] = value
                want = 0
            assert m.update_elem(b4(key), b4(value), flags) == want
        elif op[0] == "delete":
            assert m.delete_elem(b4(op[1])) == -errno.EINVAL
        else:
            assert read(arena, m.lookup_elem(b4(op[1]))) == (model[op[1]] if op[1] < 4 else None)
    assert [int.from_bytes(v, "little") for v in m.values()] == model


@SETTINGS
@given(HASH_OPS)
def test_lru_against_exact_lru_model(arena, ops):
    cap = 3
    m = create_map(arena, name="l", map_type="lru_hash", key_size=4, value_size=4, max_entries=cap)
    model: OrderedDict[int, int] = OrderedDict()
    for op in ops:
        if op[0] == "update":
            _, key, value, flags = op
            if flags > BPF_EXIST:
                want = -errno.EINVAL
            elif key in model and flags == BPF_NOEXIST:
                want = -errno.EEXIST
            elif key not in model and flags == BPF_EXIST:
                want = -errno.ENOENT
            else:
                if key not in model and len(model) >= cap:
                    model.popitem(last=False)
                model[key] = value
                model.move_to_end(key)
                want = 0
            assert m.update_elem(b4(key), b4(value), flags) == want
        elif op[0] == "delete":
            want = 0 if model.pop(op[1], None) is not None else -errno.ENOENT
            assert m.delete_elem(b4(op[1])) == want
        else:
            got = read(arena, m.lookup_elem(b4(op[1])))
            assert got == model.get(op[1])
            if op[1] in model:
                model.move_to_end(op[1])
    assert sorted(int.from_bytes(k, "little") for k in m) == sorted(model)
    # Userspace lookups do not count as uses: the oldest element is still the one evicted.
    if len(model) == cap:
        oldest = next(iter(model))
        m.lookup(oldest)
        m.update(100, 1)
        assert oldest not in {int.from_bytes(k, "little") for k in m}
        assert 100 in {int.from_bytes(k, "little") for k in m}


QUEUE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), VALUES, st.sampled_from([BPF_ANY, BPF_EXIST, BPF_NOEXIST])),
        st.tuples(st.just("pop")),
        st.tuples(st.just("peek")),
    ),
    max_size=40,
)


@pytest.mark.parametrize("kind", ["queue", "stack"])
@SETTINGS
@given(ops=QUEUE_OPS)
def test_queue_stack_against_model(arena, kind, ops):
    cap = 3
    m = create_map(arena, name="q", map_type=kind, key_size=0, value_size=4, max_entries=cap)
    buf = arena.alloc(4).start
    model: deque[int] = deque()
    for op in ops:
        if op[0] == "push":
            _, value, flags = op
            if flags == BPF_NOEXIST:
                want = -errno.EINVAL
            elif len(model) >= cap and flags != BPF_EXIST:
                want = -errno.E2BIG
            else:
                if len(model) >= cap:
                    model.popleft()
                model.append(value)
                want = 0
            assert m.push_elem(b4(value), flags) == want
            continue
        if not model:
            want_rc, want_value = -errno.ENOENT, 0
        elif kind == "queue":
            want_rc, want_value = 0, (model.popleft() if op[0] == "pop" else model[0])
        else:
            want_rc, want_value = 0, (model.pop() if op[0] == "pop" else model[-1])
        fn = m.pop_elem if op[0] == "pop" else m.peek_elem
        assert fn(buf) == want_rc
        assert read(arena, buf) == want_value
    expected = list(model) if kind == "queue" else list(reversed(model))
    assert [int.from_bytes(v, "little") for v in m.snapshot()] == expected


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), KEYS, st.integers(0, 2**31)), max_size=30))
def test_percpu_hash_cpu_slots(arena, ops):
    ncpus = 3
    m = create_map(
        arena,
        name="p",
        map_type="percpu_hash",
        key_size=4,
        value_size=4,
        max_entries=8,
        ncpus=ncpus,
    )
    model: dict[int, list[int]] = {}
    for userspace, key, value in ops:
        cpu = value % ncpus
        if userspace:
            m.update(key, [value + c for c in range(ncpus)])
            model[key] = [value + c for c in range(ncpus)]
        else:
            assert m.update_elem(b4(key), b4(value), BPF_ANY, cpu) == 0
            model.setdefault(key, [0] * ncpus)[cpu] = value
    for key, values in model.items():
        assert [int.from_bytes(v, "little") for v in m.lookup(key)] == values
        assert [read(arena, m.lookup_elem(b4(key), c)) for c in range(ncpus)] == values

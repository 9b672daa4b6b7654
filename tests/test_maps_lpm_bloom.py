"""LPM trie (longest match, kernel post-order iteration, errnos) and bloom filter (kernel jhash)."""

from __future__ import annotations

import errno
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.errors import MapError
from pybpf.maps import create_map, jhash, jhash2
from pybpf.maps.bloom import bitset_mask
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY, BPF_EXIST, BPF_NOEXIST
from pybpf.uapi import MapFlag as F


@pytest.fixture(scope="module")
def arena():
    with Arena(1 << 26) as a:
        yield a


def trie(arena: Arena, max_entries: int = 16):
    return create_map(
        arena,
        name="lpm",
        map_type="lpm_trie",
        key_size=8,
        value_size=4,
        max_entries=max_entries,
        map_flags=F.BPF_F_NO_PREALLOC,
    )


def key(cidr: str) -> bytes:
    net = ipaddress.ip_network(cidr, strict=False)
    return net.prefixlen.to_bytes(4, "little") + net.network_address.packed


def addr(ip: str) -> bytes:
    return key(f"{ip}/32")


def lookup(arena: Arena, m, k: bytes) -> int | None:
    a = m.lookup_elem(k)
    return None if a == 0 else int.from_bytes(arena.view[a : a + 4], "little")


ROUTES = {"0.0.0.0/0": 1, "10.0.0.0/8": 2, "10.1.0.0/16": 3, "10.1.2.0/24": 4, "10.1.2.3/32": 5}
LONGEST = [
    ("10.1.2.3", 5),
    ("10.1.2.4", 4),
    ("10.1.3.1", 3),
    ("10.2.0.0", 2),
    ("11.0.0.0", 1),
    ("255.255.255.255", 1),
]


def test_longest_prefix_match(arena):
    m = trie(arena)
    for cidr, value in ROUTES.items():
        assert m.update_elem(key(cidr), value.to_bytes(4, "little"), BPF_ANY) == 0
    for ip, want in LONGEST:
        assert lookup(arena, m, addr(ip)) == want, ip
    assert lookup(arena, m, key("10.1.0.0/16")) == 3  # shorter lookup keys match too
    assert m.lookup_elem((33).to_bytes(4, "little") + bytes(4)) == 0
    assert m.delete_elem(key("10.1.2.0/24")) == 0
    assert lookup(arena, m, addr("10.1.2.4")) == 3
    assert lookup(arena, m, addr("10.1.2.3")) == 5
    assert m[(0, bytes(4))] == (1).to_bytes(4, "little")


def test_post_order_iteration_as_documented(arena):
    # The example of kernel/bpf/lpm_trie.c's get_next_key comment.
    m = trie(arena)
    for cidr in ("192.168.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24"):
        m.update(key(cidr), 0)
    order = ["192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16"]
    assert m.keys() == [key(c) for c in order]
    assert m.get_next_key(key("192.168.1.0/24")) == key("192.168.128.0/24")
    assert m.get_next_key(key("10.0.0.0/8")) == key(order[0])  # absent key: first
    with pytest.raises(MapError) as info:
        m.get_next_key(key(order[-1]))
    assert info.value.errno == errno.ENOENT
    # 192.168.0.0/23 is the intermediate node: not a key until inserted, then reused.
    assert m.delete_elem(key("192.168.0.0/23")) == -errno.ENOENT
    m.update(key("192.168.0.0/23"), 7)
    assert len(m) == 5 and key("192.168.0.0/23") in list(m)


def test_lpm_errnos(arena):
    m = trie(arena, max_entries=2)
    v = bytes(4)
    assert m.update_elem((33).to_bytes(4, "little") + bytes(4), v, BPF_ANY) == -errno.EINVAL
    assert m.update_elem(key("1.0.0.0/8"), v, 3) == -errno.EINVAL
    assert m.update_elem(key("1.0.0.0/8"), v, BPF_EXIST) == -errno.ENOENT
    assert m.update_elem(key("1.0.0.0/8"), v, BPF_NOEXIST) == 0
    assert m.update_elem(key("1.0.0.0/8"), v, BPF_NOEXIST) == -errno.EEXIST
    assert m.update_elem(key("1.0.0.0/8"), v, BPF_EXIST) == 0
    assert m.update_elem(key("2.0.0.0/8"), v, BPF_ANY) == 0
    assert m.update_elem(key("3.0.0.0/8"), v, BPF_ANY) == -errno.ENOSPC
    assert m.update_elem(key("2.0.0.0/8"), v, BPF_ANY) == 0  # replacing needs no room
    assert m.delete_elem(key("3.0.0.0/8")) == -errno.ENOENT
    assert m.delete_elem((40).to_bytes(4, "little") + bytes(4)) == -errno.EINVAL
    with pytest.raises(MapError) as info:
        m.update((1, b"\0"), 1)
    assert info.value.errno == errno.EINVAL
    assert m.lookup_batch(count=10).keys == m.keys()


def covers(plen: int, net: int, address: int) -> bool:
    return plen == 0 or address >> (32 - plen) == net >> (32 - plen)


def best_match(model: dict[tuple[int, int], int], address: int) -> int | None:
    matches = [(p, value) for (p, n), value in model.items() if covers(p, n, address)]
    return max(matches)[1] if matches else None


CIDRS = st.tuples(st.integers(0, 32), st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), CIDRS), max_size=30), st.lists(st.integers(0, 2**32 - 1)))
def test_lpm_against_brute_force(arena, ops, probes):
    m = trie(arena, max_entries=64)
    model: dict[tuple[int, int], int] = {}
    for i, (insert, (plen, bits)) in enumerate(ops):
        net = bits & (((1 << plen) - 1) << (32 - plen)) if plen else 0
        k = plen.to_bytes(4, "little") + net.to_bytes(4, "big")
        if insert:
            assert m.update_elem(k, i.to_bytes(4, "little"), BPF_ANY) == 0
            model[(plen, net)] = i
        else:
            want = 0 if model.pop((plen, net), None) is not None else -errno.ENOENT
            assert m.delete_elem(k) == want
    for probe in probes + [net for _, net in model]:
        want = best_match(model, probe)
        assert lookup(arena, m, (32).to_bytes(4, "little") + probe.to_bytes(4, "big")) == want
    keys = m.keys()
    assert sorted(keys) == sorted(p.to_bytes(4, "little") + n.to_bytes(4, "big") for p, n in model)
    # Post-order: a prefix comes after every more specific prefix it contains.
    pos = {k: i for i, k in enumerate(keys)}
    for (p1, n1), (p2, n2) in ((a, b) for a in model for b in model):
        if p1 < p2 and covers(p1, n1, n2):
            k1 = p1.to_bytes(4, "little") + n1.to_bytes(4, "big")
            k2 = p2.to_bytes(4, "little") + n2.to_bytes(4, "big")
            assert pos[k2] < pos[k1]


# ---------------------------------------------------------------- bloom filter


def test_jhash_reference_values():
    # Bob Jenkins' lookup3.c self-test values for hashlittle, which the kernel's jhash is.
    assert jhash(b"", 0) == 0xDEADBEEF
    assert jhash(b"Four score and seven years ago", 0) == 0x17770551
    assert jhash(b"Four score and seven years ago", 1) == 0xCD628161


@given(st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_jhash2_equals_jhash_on_words(data, seed):
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
    assert jhash2(words, seed) == jhash(data, seed)


@pytest.mark.parametrize(
    ("entries", "k", "mask"),
    [(100, 5, 1023), (1, 1, 63), (10, 5, 127), (1 << 30, 15, 0xFFFFFFFF)],
)
def test_bloom_bitset_size(entries, k, mask):
    assert bitset_mask(entries, k) == mask


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(min_size=5, max_size=5), max_size=40), st.integers(0, 15))
def test_bloom_has_no_false_negatives(arena, values, extra):
    m = create_map(
        arena,
        name="bf",
        map_type="bloom_filter",
        key_size=0,
        value_size=5,
        max_entries=50,
        map_extra=extra,
    )
    assert m.nr_hash_funcs == (extra or 5)
    for value in values:
        m.push(value)
    assert all(value in m for value in values)
    buf = arena.alloc(5).start
    for value in values:
        arena.view[buf : buf + 5] = value
        assert m.peek_elem(buf) == 0


def test_bloom_rejects_most_absent_values(arena):
    m = create_map(
        arena, name="bf", map_type="bloom_filter", key_size=0, value_size=4, max_entries=100
    )
    for i in range(100):
        m.push(i)
    absent = sum(i not in m for i in range(1000, 2000))
    assert absent > 900

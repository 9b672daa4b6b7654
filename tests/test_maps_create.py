"""BPF_MAP_CREATE: the map-type table and create_map's checks, errno for errno with the kernel."""

from __future__ import annotations

import errno

import pytest

from pybpf.btf import Btf, BtfType, IntEncoding, Kind, Member
from pybpf.errors import MapError, UnsupportedError
from pybpf.maps import ENOTSUPP, MAP_TYPES, BpfMap, create_map, map_type_info
from pybpf.memory import Arena
from pybpf.uapi import BpfMapType
from pybpf.uapi import MapFlag as F

NP = F.BPF_F_NO_PREALLOC


@pytest.fixture(scope="module")
def arena():
    with Arena(1 << 28) as a:
        yield a


# (map type, key_size, value_size, max_entries, map_flags, map_extra, errno or 0)
CASES = [
    ("array", 4, 8, 1, 0, 0, 0),
    ("array", 8, 8, 1, 0, 0, errno.EINVAL),
    ("array", 4, 0, 1, 0, 0, errno.EINVAL),
    ("array", 4, 8, 0, 0, 0, errno.EINVAL),
    ("array", 4, 8, 4, F.BPF_F_MMAPABLE | F.BPF_F_RDONLY_PROG, 0, 0),
    ("array", 4, 8, 4, F.BPF_F_INNER_MAP, 0, 0),
    ("array", 4, 8, 4, F.BPF_F_PRESERVE_ELEMS, 0, errno.EINVAL),
    ("array", 4, 8, 4, F.BPF_F_NO_PREALLOC, 0, errno.EINVAL),
    ("array", 4, 8, 4, F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG, 0, errno.EINVAL),
    ("array", 4, 8, 4, F.BPF_F_RDONLY | F.BPF_F_WRONLY, 0, errno.EINVAL),
    ("array", 4, 8, 4, 0, 3, errno.EINVAL),
    ("percpu_array", 4, 8, 4, 0, 0, 0),
    ("percpu_array", 4, 8, 4, F.BPF_F_MMAPABLE, 0, errno.EINVAL),
    ("percpu_array", 4, 8, 4, F.BPF_F_NUMA_NODE, 0, errno.EINVAL),
    ("percpu_array", 4, 32769, 4, 0, 0, errno.E2BIG),
    ("prog_array", 4, 4, 4, 0, 0, 0),
    ("prog_array", 4, 8, 4, 0, 0, errno.EINVAL),
    ("prog_array", 4, 4, 4, F.BPF_F_RDONLY_PROG, 0, errno.EINVAL),
    ("perf_event_array", 4, 4, 4, F.BPF_F_PRESERVE_ELEMS, 0, 0),
    ("hash", 4, 8, 16, 0, 0, 0),
    ("hash", 4, 8, 16, NP | F.BPF_F_ZERO_SEED, 0, 0),
    ("hash", 0, 8, 16, 0, 0, errno.EINVAL),
    ("hash", 4, 0, 16, 0, 0, errno.EINVAL),
    ("hash", 4, 8, 0, 0, 0, errno.EINVAL),
    ("hash", 4, 8, 16, F.BPF_F_NO_COMMON_LRU, 0, errno.EINVAL),
    ("hash", 4, 8, 16, F.BPF_F_MMAPABLE, 0, errno.EINVAL),
    ("hash", 4, (1 << 22) - 52, 16, 0, 0, errno.E2BIG),
    ("percpu_hash", 4, 32768, 16, 0, 0, 0),
    ("percpu_hash", 4, 32769, 16, 0, 0, errno.E2BIG),
    ("percpu_hash", 4, 8, 16, F.BPF_F_NUMA_NODE, 0, errno.EINVAL),
    ("lru_hash", 4, 8, 16, F.BPF_F_NO_COMMON_LRU, 0, 0),
    ("lru_hash", 4, 8, 16, NP, 0, ENOTSUPP),
    ("lru_hash", 4, 8, 16, F.BPF_F_NO_COMMON_LRU | F.BPF_F_NUMA_NODE, 0, errno.EINVAL),
    ("lru_percpu_hash", 4, 8, 16, 0, 0, 0),
    ("lpm_trie", 8, 4, 16, NP, 0, 0),
    ("lpm_trie", 8, 4, 16, 0, 0, errno.EINVAL),
    ("lpm_trie", 4, 4, 16, NP, 0, errno.EINVAL),
    ("lpm_trie", 5, 4, 16, NP, 0, 0),
    ("lpm_trie", 260, 4, 16, NP, 0, 0),
    ("lpm_trie", 261, 4, 16, NP, 0, errno.EINVAL),
    ("lpm_trie", 8, 0, 16, NP, 0, errno.EINVAL),
    ("lpm_trie", 8, 4, 0, NP, 0, errno.EINVAL),
    ("queue", 0, 4, 16, 0, 0, 0),
    ("queue", 4, 4, 16, 0, 0, errno.EINVAL),
    ("queue", 0, 0, 16, 0, 0, errno.EINVAL),
    ("queue", 0, 4, 0, 0, 0, errno.EINVAL),
    ("queue", 0, 4, 16, NP, 0, errno.EINVAL),
    ("stack", 0, 4, 16, F.BPF_F_RDONLY_PROG, 0, 0),
    ("stack", 0, (1 << 22) + 1, 1, 0, 0, errno.E2BIG),
    ("ringbuf", 0, 0, 4096, 0, 0, 0),
    ("ringbuf", 0, 0, 1 << 16, F.BPF_F_NUMA_NODE, 0, 0),
    ("ringbuf", 0, 0, 6144, 0, 0, errno.EINVAL),
    ("ringbuf", 0, 0, 2048, 0, 0, errno.EINVAL),
    ("ringbuf", 4, 0, 4096, 0, 0, errno.EINVAL),
    ("ringbuf", 0, 4, 4096, 0, 0, errno.EINVAL),
    ("ringbuf", 0, 0, 4096, F.BPF_F_RDONLY_PROG, 0, errno.EINVAL),
    ("bloom_filter", 0, 4, 100, 0, 0, 0),
    ("bloom_filter", 0, 4, 100, 0, 15, 0),
    ("bloom_filter", 0, 4, 100, 0, 16, errno.EINVAL),
    ("bloom_filter", 4, 4, 100, 0, 0, errno.EINVAL),
    ("bloom_filter", 0, 4, 100, NP, 0, errno.EINVAL),
]


@pytest.mark.parametrize(("kind", "ks", "vs", "me", "flags", "extra", "err"), CASES)
def test_create_checks(arena, kind, ks, vs, me, flags, extra, err):
    def make() -> BpfMap:
        return create_map(
            arena,
            name="m",
            map_type=kind,
            key_size=ks,
            value_size=vs,
            max_entries=me,
            map_flags=int(flags),
            map_extra=extra,
        )

    if err:
        with pytest.raises(MapError) as info:
            make()
        assert info.value.errno == err
        assert "map m" in str(info.value)
    else:
        m = make()
        assert (m.key_size, m.value_size, m.max_entries) == (ks, vs, me)
        assert m.map_type == BpfMapType.from_short(kind)


def test_table_covers_the_brief():
    wanted = {
        "array",
        "percpu_array",
        "hash",
        "percpu_hash",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "queue",
        "stack",
        "ringbuf",
        "perf_event_array",
        "prog_array",
        "array_of_maps",
        "hash_of_maps",
        "bloom_filter",
    }
    assert {t.short for t in MAP_TYPES} == wanted
    for mt, info in MAP_TYPES.items():
        assert info.map_type is mt
        assert info.impl.percpu == info.percpu
        assert info.impl.keyless == info.keyless


@pytest.mark.parametrize("kind", ["sockmap", "struct_ops", "arena", 7])
def test_unsupported_types_are_named(kind):
    with pytest.raises(UnsupportedError) as info:
        map_type_info(kind)
    assert "BPF_MAP_TYPE_" in str(info.value)


@pytest.mark.parametrize("kind", [999, "no_such_map"])
def test_unknown_type_is_einval(kind):
    with pytest.raises(MapError) as info:
        map_type_info(kind)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("bad", [{"key_size": -1}, {"max_entries": 1 << 32}, {"ncpus": 0}])
def test_attribute_types(arena, bad):
    args = {"key_size": 4, "value_size": 4, "max_entries": 1, **bad}
    with pytest.raises(MapError) as info:
        create_map(arena, name="m", map_type="array", **args)
    assert info.value.errno == errno.EINVAL


def test_no_common_lru_rounds_max_entries(arena):
    m = create_map(
        arena,
        name="l",
        map_type="lru_hash",
        key_size=4,
        value_size=4,
        max_entries=5,
        map_flags=F.BPF_F_NO_COMMON_LRU,
        ncpus=4,
    )
    assert m.max_entries == 8


# ---------------------------------------------------------------- map-in-map templates


def _array(arena, max_entries=2, flags=0):
    return create_map(
        arena,
        name="in",
        map_type="array",
        key_size=4,
        value_size=4,
        max_entries=max_entries,
        map_flags=flags,
    )


def _outer(arena, kind, inner, max_entries, name="o", value_size=4):
    """A map of maps with ``inner`` as its template (the kernel's inner_map_fd)."""
    return create_map(
        arena,
        name=name,
        map_type=kind,
        key_size=4,
        value_size=value_size,
        max_entries=max_entries,
        inner=inner,
    )


@pytest.mark.parametrize("kind", ["array_of_maps", "hash_of_maps"])
def test_inner_template_checks(arena, kind):
    def outer(inner, value_size=4):
        return _outer(arena, kind, inner, 4, value_size=value_size)

    cases = [
        (None, errno.EBADF),
        (outer(_array(arena)), errno.EINVAL),
        (
            create_map(
                arena, name="p", map_type="prog_array", key_size=4, value_size=4, max_entries=1
            ),
            ENOTSUPP,
        ),
    ]
    for inner, err in cases:
        with pytest.raises(MapError) as info:
            outer(inner)
        assert info.value.errno == err
    with pytest.raises(MapError) as info:
        outer(_array(arena), value_size=8)
    assert info.value.errno == errno.EINVAL


def test_inner_map_must_match(arena):
    outer = _outer(arena, "array_of_maps", _array(arena, 2), 2)
    outer[0] = _array(arena, 2)
    for bad in (_array(arena, 3), "not a map"):
        with pytest.raises(MapError) as info:
            outer[1] = bad
        assert info.value.errno == (errno.EINVAL if isinstance(bad, BpfMap) else errno.EBADF)
    flexible = _outer(arena, "array_of_maps", _array(arena, 2, F.BPF_F_INNER_MAP), 2, "o2")
    flexible[0] = _array(arena, 7, F.BPF_F_INNER_MAP)
    with pytest.raises(MapError) as info:
        flexible[1] = _array(arena, 7)
    assert info.value.errno == errno.EINVAL


def test_hash_inner_max_entries_not_compared(arena):
    def hashmap(n):
        return create_map(arena, name="h", map_type="hash", key_size=4, value_size=4, max_entries=n)

    outer = _outer(arena, "hash_of_maps", hashmap(4), 1)
    outer[1] = hashmap(100)
    with pytest.raises(MapError) as info:
        outer[2] = hashmap(4)
    assert info.value.errno == errno.E2BIG


# ---------------------------------------------------------------- BTF special fields


def _btf_with(fields: list[tuple[str, str, int]], size: int) -> tuple[Btf, int]:
    """A Btf holding `int`, the named special structs and a struct of `fields` (last id)."""
    types = [
        BtfType(0, Kind.VOID),
        BtfType(1, Kind.INT, "int", size=4, int_bits=32, int_encoding=IntEncoding.SIGNED),
    ]
    members = []
    for name, struct_name, offset in fields:
        if struct_name == "int":
            tid = 1
        else:
            tid = len(types)
            sz = {"bpf_spin_lock": 4, "bpf_timer": 16}[struct_name]
            types.append(
                BtfType(tid, Kind.STRUCT, struct_name, size=sz, members=[Member("x", 1, 0)])
            )
        members.append(Member(name, tid, offset * 8))
    types.append(BtfType(len(types), Kind.STRUCT, "val", size=size, members=members))
    return Btf(types), len(types) - 1


LOCKED = [("a", "int", 0), ("lock", "bpf_spin_lock", 4), ("b", "int", 8)]


def _btf_map(arena: Arena, btf: Btf, value_type_id: int, **attrs: int | str) -> BpfMap:
    """create_map with BTF: key type `int` (id 1), value type ``value_type_id`` (0: none);
    ``attrs`` override a hash named "s" of 2 entries, 4-byte keys and 12-byte values."""
    attrs = dict(name="s", map_type="hash", key_size=4, value_size=12, max_entries=2) | attrs
    return create_map(arena, **attrs, btf=btf, key_type_id=1, value_type_id=value_type_id)


@pytest.mark.parametrize(
    ("kind", "flags", "err"),
    [
        ("hash", 0, 0),
        ("array", 0, 0),
        ("percpu_array", 0, errno.EOPNOTSUPP),
        ("lru_hash", 0, errno.EOPNOTSUPP),
        ("array", F.BPF_F_RDONLY_PROG, errno.EACCES),
    ],
)
def test_spin_lock_placement(arena, kind, flags, err):
    btf, vid = _btf_with(LOCKED, 12)

    def make():
        return _btf_map(arena, btf, vid, map_type=kind, map_flags=flags)

    if err:
        with pytest.raises(MapError) as info:
            make()
        assert info.value.errno == err
    else:
        assert make().lock_offset == 4


def test_btf_size_mismatch(arena):
    btf, vid = _btf_with(LOCKED, 12)
    with pytest.raises(MapError) as info:
        _btf_map(arena, btf, vid, key_size=8)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(MapError) as info:
        _btf_map(arena, btf, 0)
    assert info.value.errno == errno.EINVAL


def test_spin_lock_copy_rules(arena):
    btf, vid = _btf_with(LOCKED, 12)
    m = _btf_map(arena, btf, vid)
    m.update(1, {"a": 5, "lock": b"\xff" * 4, "b": 6})
    vaddr = m.lookup_elem((1).to_bytes(4, "little"))
    assert bytes(arena.view[vaddr + 4 : vaddr + 8]) == bytes(4)  # the lock is never copied in
    arena.view[vaddr + 4 : vaddr + 8] = b"\x01\x00\x00\x00"
    got = m.lookup(1, flags=4)
    assert got["a"] == 5 and got["b"] == 6
    assert m.lookup(1)["lock"] == {"x": 0}  # and never copied out
    m.update(1, {"a": 7, "lock": {"x": 0}, "b": 8}, flags=4)
    assert m[1]["a"] == 7
    with pytest.raises(MapError) as info:
        m.freeze()
    assert info.value.errno == ENOTSUPP
    plain = create_map(arena, name="p", map_type="hash", key_size=4, value_size=12, max_entries=2)
    with pytest.raises(MapError) as info:
        plain.update(1, bytes(12), flags=4)
    assert info.value.errno == errno.EINVAL
    assert plain.update_elem(b"\0" * 4, bytes(12), 4) == -errno.EINVAL


@pytest.mark.parametrize("kind", ["hash", "lru_hash", "array"])
def test_timer_fields_released_like_bpf_obj_free_fields(arena, kind):
    btf, vid = _btf_with([("a", "int", 0), ("t", "bpf_timer", 8)], 24)
    m = _btf_map(arena, btf, vid, name="t", map_type=kind, value_size=24, max_entries=4)
    released: list[int] = []
    m.on_release = released.append
    m.update(1, {"a": 1, "t": {"x": 0}})
    first = m.lookup_elem((1).to_bytes(4, "little"))
    m.update(1, {"a": 2, "t": {"x": 0}})
    if kind == "array":
        assert released == [first, first]  # every overwrite frees the fields in place
        return
    assert released == [first]  # the replaced element
    second = m.lookup_elem((1).to_bytes(4, "little"))
    m.delete(1)
    assert released == [first, second]

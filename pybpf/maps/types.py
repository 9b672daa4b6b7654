"""THE map-type table and ``create_map``: which map types exist, what implements them, and the
checks BPF_MAP_CREATE applies to their attributes.

Place in the pipeline: ``object.py`` calls ``create_map`` for each map of an ObjectSpec; the
verifier and helpers read ``MAP_TYPES`` (one row per supported ``BpfMapType``) for the
per-type facts. The enum values themselves live in ``pybpf.uapi``.

Each row's ``check`` is the kernel's ``map_alloc_check`` plus the attribute checks its
``map_alloc`` makes (kernel/bpf/{arraymap,hashtab,lpm_trie,queue_stack_maps,ringbuf,
bloom_filter}.c); ``create_map`` adds the generic ``map_create`` checks (syscall.c) before it
and the BTF checks (``map_check_btf``) after it, in the kernel's order, so the first failing
rule decides the errno. Two deliberate differences: map names are not validated (libbpf
sanitises them), and a key/value type id is kept for decoding even on types whose
``map_check_btf`` would refuse BTF (libbpf then retries without it; pybpf just keeps the
types, after checking their sizes).
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable
from dataclasses import dataclass

from pybpf.btf import Btf
from pybpf.errors import BpfError, ExhaustionError, MapError, UnsupportedError
from pybpf.maps.array import ArrayMap, PercpuArrayMap
from pybpf.maps.base import BpfMap, MapAttrs, SpecialField, round8, special_fields
from pybpf.maps.bloom import BloomFilterMap
from pybpf.maps.fdarray import ArrayOfMapsMap, HashOfMapsMap, PerfEventArrayMap, ProgArrayMap
from pybpf.maps.hash import HashMap, LruHashMap, LruPercpuHashMap, PercpuHashMap
from pybpf.maps.lpm import LPM_KEY_HEADER, LpmTrieMap
from pybpf.maps.queue import QueueMap, StackMap
from pybpf.maps.ringbuf import RingBufMap
from pybpf.memory import PAGE_SIZE, Arena
from pybpf.uapi import ENOTSUPP, BpfMapType, MapFlag

T = BpfMapType
F = MapFlag

# Kernel limits on x86-64 with 4 KiB pages.
KMALLOC_MAX_SIZE = 1 << 22
PCPU_MIN_UNIT_SIZE = 32 << 10
HTAB_ELEM_SIZE = 48  # sizeof(struct htab_elem) before the key
INT_MAX = (1 << 31) - 1
LPM_DATA_SIZE_MAX = 256
LPM_DATA_SIZE_MIN = 1
RINGBUF_MAX_DATA_SZ = ((1 << 24) - 3) * PAGE_SIZE

F_ACCESS_MASK = F.BPF_F_RDONLY | F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY | F.BPF_F_WRONLY_PROG
ARRAY_FLAGS = (
    F.BPF_F_NUMA_NODE
    | F.BPF_F_MMAPABLE
    | F_ACCESS_MASK
    | F.BPF_F_PRESERVE_ELEMS
    | F.BPF_F_INNER_MAP
)
HTAB_FLAGS = (
    F.BPF_F_NO_PREALLOC
    | F.BPF_F_NO_COMMON_LRU
    | F.BPF_F_NUMA_NODE
    | F_ACCESS_MASK
    | F.BPF_F_ZERO_SEED
)
LPM_FLAGS = F.BPF_F_NO_PREALLOC | F.BPF_F_NUMA_NODE | F_ACCESS_MASK
QUEUE_FLAGS = F.BPF_F_NUMA_NODE | F_ACCESS_MASK
RINGBUF_FLAGS = F.BPF_F_NUMA_NODE
BLOOM_FLAGS = F.BPF_F_NUMA_NODE | F.BPF_F_ZERO_SEED | F_ACCESS_MASK

Check = Callable[[MapAttrs], int]


def _access_ok(flags: int) -> bool:
    """``bpf_map_flags_access_ok``: not both program-read-only and program-write-only."""
    both = F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG
    return flags & both != both


def _numa(a: MapAttrs) -> bool:
    return bool(a.map_flags & F.BPF_F_NUMA_NODE)


def _array_check(a: MapAttrs) -> int:
    percpu = a.map_type == T.PERCPU_ARRAY
    if (
        a.max_entries == 0
        or a.key_size != 4
        or a.value_size == 0
        or a.map_flags & ~ARRAY_FLAGS
        or not _access_ok(a.map_flags)
        or (percpu and _numa(a))
    ):
        return errno.EINVAL
    if a.map_type != T.ARRAY and a.map_flags & (F.BPF_F_MMAPABLE | F.BPF_F_INNER_MAP):
        return errno.EINVAL
    if a.map_type != T.PERF_EVENT_ARRAY and a.map_flags & F.BPF_F_PRESERVE_ELEMS:
        return errno.EINVAL
    if a.value_size > INT_MAX or (percpu and a.value_size > PCPU_MIN_UNIT_SIZE):
        return errno.E2BIG
    return 0


def _fd_array_check(a: MapAttrs) -> int:
    if a.value_size != 4 or a.map_flags & (F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG):
        return errno.EINVAL
    return _array_check(a)


def _htab_check(a: MapAttrs) -> int:
    percpu = a.map_type in (T.PERCPU_HASH, T.LRU_PERCPU_HASH)
    lru = a.map_type in (T.LRU_HASH, T.LRU_PERCPU_HASH)
    percpu_lru = bool(a.map_flags & F.BPF_F_NO_COMMON_LRU)
    prealloc = not a.map_flags & F.BPF_F_NO_PREALLOC
    if a.map_flags & ~HTAB_FLAGS or not _access_ok(a.map_flags):
        return errno.EINVAL
    if not lru and percpu_lru:
        return errno.EINVAL
    if lru and not prealloc:
        return ENOTSUPP
    if _numa(a) and (percpu or percpu_lru):
        return errno.EINVAL
    if a.max_entries == 0 or a.key_size == 0 or a.value_size == 0:
        return errno.EINVAL
    if a.key_size + a.value_size >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE:
        return errno.E2BIG
    if percpu and round8(a.value_size) > PCPU_MIN_UNIT_SIZE:
        return errno.E2BIG
    if a.max_entries > 1 << 31:
        return errno.E2BIG
    return 0


def _htab_of_maps_check(a: MapAttrs) -> int:
    return errno.EINVAL if a.value_size != 4 else _htab_check(a)


def _lpm_check(a: MapAttrs) -> int:
    if (
        a.max_entries == 0
        or not a.map_flags & F.BPF_F_NO_PREALLOC
        or a.map_flags & ~LPM_FLAGS
        or not _access_ok(a.map_flags)
        or not LPM_KEY_HEADER + LPM_DATA_SIZE_MIN
        <= a.key_size
        <= LPM_KEY_HEADER + LPM_DATA_SIZE_MAX
        or not 1 <= a.value_size <= KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - 24
    ):
        return errno.EINVAL
    return 0


def _queue_check(a: MapAttrs) -> int:
    if (
        a.max_entries == 0
        or a.key_size != 0
        or a.value_size == 0
        or a.map_flags & ~QUEUE_FLAGS
        or not _access_ok(a.map_flags)
    ):
        return errno.EINVAL
    return errno.E2BIG if a.value_size > KMALLOC_MAX_SIZE else 0


def _ringbuf_check(a: MapAttrs) -> int:
    size = a.max_entries
    if a.map_flags & ~RINGBUF_FLAGS:
        return errno.EINVAL
    if a.key_size or a.value_size or size <= 0 or size & (size - 1) or size % PAGE_SIZE:
        return errno.EINVAL
    return errno.E2BIG if size > RINGBUF_MAX_DATA_SZ else 0


def _bloom_check(a: MapAttrs) -> int:
    if (
        a.key_size != 0
        or a.value_size == 0
        or a.max_entries == 0
        or a.map_flags & ~BLOOM_FLAGS
        or not _access_ok(a.map_flags)
        or a.map_extra & ~0xF
    ):
        return errno.EINVAL
    return 0


@dataclass(frozen=True)
class MapTypeInfo:
    """One supported map type.

    ``check`` returns 0 or the errno BPF_MAP_CREATE fails with; ``create_flags`` are the
    map_flags the type accepts; ``special_fields`` the BTF special structs its values may
    hold; ``inner_ok`` whether it may be the inner map of a map-in-map (``map_meta_equal``);
    ``for_each`` whether ``bpf_for_each_map_elem`` walks it; ``percpu`` whether values are
    per CPU; ``keyless`` whether key_size is 0.
    """

    map_type: BpfMapType
    impl: type[BpfMap]
    check: Check
    create_flags: int
    special_fields: frozenset[str] = frozenset()
    inner_ok: bool = True
    needs_inner: bool = False
    for_each: bool = False
    percpu: bool = False
    keyless: bool = False

    @property
    def name(self) -> str:
        return self.map_type.short


_LOCKS = frozenset({"bpf_spin_lock", "bpf_res_spin_lock"})
_ASYNC = frozenset({"bpf_timer", "bpf_wq"})

MAP_TYPES: dict[BpfMapType, MapTypeInfo] = {
    info.map_type: info
    for info in (
        MapTypeInfo(T.HASH, HashMap, _htab_check, HTAB_FLAGS, _LOCKS | _ASYNC, for_each=True),
        MapTypeInfo(T.ARRAY, ArrayMap, _array_check, ARRAY_FLAGS, _LOCKS | _ASYNC, for_each=True),
        MapTypeInfo(T.PROG_ARRAY, ProgArrayMap, _fd_array_check, ARRAY_FLAGS, inner_ok=False),
        MapTypeInfo(T.PERF_EVENT_ARRAY, PerfEventArrayMap, _fd_array_check, ARRAY_FLAGS),
        MapTypeInfo(
            T.PERCPU_HASH, PercpuHashMap, _htab_check, HTAB_FLAGS, for_each=True, percpu=True
        ),
        MapTypeInfo(
            T.PERCPU_ARRAY, PercpuArrayMap, _array_check, ARRAY_FLAGS, for_each=True, percpu=True
        ),
        MapTypeInfo(T.LRU_HASH, LruHashMap, _htab_check, HTAB_FLAGS, _ASYNC, for_each=True),
        MapTypeInfo(
            T.LRU_PERCPU_HASH,
            LruPercpuHashMap,
            _htab_check,
            HTAB_FLAGS,
            for_each=True,
            percpu=True,
        ),
        MapTypeInfo(T.LPM_TRIE, LpmTrieMap, _lpm_check, LPM_FLAGS),
        MapTypeInfo(
            T.ARRAY_OF_MAPS, ArrayOfMapsMap, _fd_array_check, ARRAY_FLAGS, needs_inner=True
        ),
        MapTypeInfo(
            T.HASH_OF_MAPS, HashOfMapsMap, _htab_of_maps_check, HTAB_FLAGS, needs_inner=True
        ),
        MapTypeInfo(T.QUEUE, QueueMap, _queue_check, QUEUE_FLAGS, keyless=True),
        MapTypeInfo(T.STACK, StackMap, _queue_check, QUEUE_FLAGS, keyless=True),
        MapTypeInfo(T.RINGBUF, RingBufMap, _ringbuf_check, RINGBUF_FLAGS, keyless=True),
        MapTypeInfo(T.BLOOM_FILTER, BloomFilterMap, _bloom_check, BLOOM_FLAGS, keyless=True),
    )
}


def map_type_info(map_type: int | str | BpfMapType) -> MapTypeInfo:
    """The row of a map type given as enum, number or name; UnsupportedError if pybpf lacks it."""
    try:
        mt = BpfMapType.from_short(map_type) if isinstance(map_type, str) else BpfMapType(map_type)
    except ValueError as e:
        raise MapError(errno.EINVAL, f"unknown map type {map_type!r}") from e
    info = MAP_TYPES.get(mt)
    if info is None:
        raise UnsupportedError(f"map type {mt.uapi_name}")
    return info


def _check_btf(info: MapTypeInfo, attrs: MapAttrs, name: str) -> tuple[SpecialField, ...]:
    """``map_check_btf``: type sizes, then which special fields the type allows."""
    btf = attrs.btf
    if btf is None or not (attrs.key_type_id or attrs.value_type_id):
        return ()
    try:
        if attrs.key_type_id and btf.size_of(attrs.key_type_id) != attrs.key_size:
            raise MapError(errno.EINVAL, "BTF key type size differs from key_size", map_name=name)
        if btf.size_of(attrs.value_type_id) != attrs.value_size:
            raise MapError(
                errno.EINVAL, "BTF value type size differs from value_size", map_name=name
            )
        fields = special_fields(btf, attrs.value_type_id, name)
    except MapError:
        raise
    except BpfError as e:
        raise MapError(errno.EINVAL, f"bad BTF type for the map: {e}", map_name=name) from e
    if not fields:
        return ()
    if attrs.map_flags & (F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG):
        raise MapError(
            errno.EACCES,
            "values with special fields cannot be program read/write-only",
            map_name=name,
        )
    for f in fields:
        if f.kind not in info.special_fields:
            raise MapError(
                errno.EOPNOTSUPP,
                f"struct {f.kind} is not allowed in {info.map_type.short} map values",
                map_name=name,
            )
    return fields


def create_map(
    arena: Arena,
    *,
    name: str,
    map_type: int | str | BpfMapType,
    key_size: int,
    value_size: int,
    max_entries: int,
    map_flags: int = 0,
    map_extra: int = 0,
    inner: BpfMap | None = None,
    btf: Btf | None = None,
    key_type_id: int = 0,
    value_type_id: int = 0,
    ncpus: int = 1,
) -> BpfMap:
    """BPF_MAP_CREATE: validate as the kernel does and build the map in ``arena``.

    Raises MapError with the kernel's errno for bad attributes, UnsupportedError for a map
    type pybpf does not implement. ``inner`` is the inner-map template of a map-in-map (the
    kernel's ``inner_map_fd``); ``ncpus`` is how many per-CPU slots per-CPU maps get.
    """
    info = map_type_info(map_type)
    sizes = {
        "key_size": key_size,
        "value_size": value_size,
        "max_entries": max_entries,
        "map_flags": map_flags,
        "map_extra": map_extra,
        "key_type_id": key_type_id,
        "value_type_id": value_type_id,
    }
    for what, v in sizes.items():
        limit = (1 << 64) if what == "map_extra" else (1 << 32)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < limit:
            raise MapError(
                errno.EINVAL, f"{what} must be an unsigned int, not {v!r}", map_name=name
            )
    if not isinstance(ncpus, int) or isinstance(ncpus, bool) or ncpus < 1:
        raise MapError(errno.EINVAL, f"ncpus must be a positive int, not {ncpus!r}", map_name=name)
    if key_type_id and not value_type_id:
        raise MapError(errno.EINVAL, "a BTF key type needs a BTF value type", map_name=name)
    if map_extra and info.map_type != T.BLOOM_FILTER:
        raise MapError(errno.EINVAL, "map_extra is only for bloom filters", map_name=name)
    if map_flags & F.BPF_F_RDONLY and map_flags & F.BPF_F_WRONLY:
        raise MapError(errno.EINVAL, "BPF_F_RDONLY and BPF_F_WRONLY together", map_name=name)
    attrs = MapAttrs(
        info.map_type,
        name,
        key_size,
        value_size,
        max_entries,
        map_flags,
        map_extra,
        ncpus,
        btf if (key_type_id or value_type_id) else None,
        key_type_id,
        value_type_id,
    )
    rc = info.check(attrs)
    if rc:
        raise MapError(rc, f"invalid attributes for a {info.name} map", map_name=name)
    if info.needs_inner:
        _check_inner(inner, name)
    if info.map_type in (T.LRU_HASH, T.LRU_PERCPU_HASH) and map_flags & F.BPF_F_NO_COMMON_LRU:
        # Every CPU's LRU list gets the same number of elements (htab_map_alloc).
        rounded = -(-max_entries // ncpus) * ncpus
        if rounded >= 1 << 32:
            rounded = max_entries // ncpus * ncpus
        attrs = dataclasses.replace(attrs, max_entries=rounded)
    fields = _check_btf(info, attrs, name)
    extra = {"inner": inner} if info.needs_inner else {}
    try:
        return info.impl(arena, attrs, fields, **extra)
    except ExhaustionError as e:
        raise MapError(errno.ENOMEM, f"cannot allocate the map: {e}", map_name=name) from e


def _check_inner(inner: BpfMap | None, name: str) -> None:
    """``bpf_map_meta_alloc``: the inner-map template must be a plain, comparable map."""
    if not isinstance(inner, BpfMap):
        raise MapError(errno.EBADF, "a map-in-map needs an inner map template", map_name=name)
    if MAP_TYPES[inner.map_type].needs_inner:
        raise MapError(errno.EINVAL, "map-in-map nesting deeper than one level", map_name=name)
    if not MAP_TYPES[inner.map_type].inner_ok:
        raise MapError(
            ENOTSUPP, f"a {inner.map_type.short} map cannot be an inner map", map_name=name
        )

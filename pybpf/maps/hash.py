"""The hash family (kernel/bpf/hashtab.c): HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH.

Place in the pipeline: created by `maps.types.create_map`; helpers call the program face.

Each element is one Arena region: the key (padded to 8 bytes) followed by the value (per-CPU
maps: ``ncpus`` values ``round_up(value_size, 8)`` apart), so for_each callbacks get real key
and value pointers. Memory and update semantics:

- an update of an existing key in HASH / LRU_HASH builds a new element and retires the old one,
  as the kernel does (``alloc_htab_elem`` + ``hlist_nulls_del_rcu``): a program that looked
  the key up before keeps a valid pointer to the old value. Retired and deleted elements go to
  ``Arena.defer_free``, so their memory is not reused while any epoch open at the time lasts;
- with ``BPF_F_LOCK`` the value is copied into the existing element under its spin lock, and
  per-CPU maps update in place (both as the kernel does);
- a full map refuses new keys with E2BIG; LRU maps evict instead.

LRU: the kernel's LRU is approximate (per-CPU free lists, reference bits, lazy rotation), and
may evict an element even when the key being updated already exists. pybpf keeps an exact
least-recently-used order: program lookups and updates make an element the most recent;
userspace lookups do not (as ``htab_lru_map_lookup_elem_sys``); only inserting a new key into a
full map evicts, and it evicts the least recently used element. With BPF_F_NO_COMMON_LRU each
CPU has its own list holding ``max_entries / ncpus`` elements (``max_entries`` is rounded up to
a multiple of ``ncpus`` at creation, as the kernel does); a new element joins the inserting
CPU's list and a replaced one stays in its list.

Key order for ``get_next_key`` and batches is insertion order (the kernel's is bucket order);
a batch token is a position in that order (the kernel's is a bucket index).
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from pybpf.maps.array import percpu_values
from pybpf.maps.base import BatchResult, BpfMap, MapAttrs, SpecialField, round8
from pybpf.memory import Arena, Region
from pybpf.uapi import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapFlag


class _Elem:
    __slots__ = ("key", "lru", "region", "value")

    def __init__(self, key: bytes, region: Region, value: int, lru: int) -> None:
        self.key = key
        self.region = region
        self.value = value
        self.lru = lru


def check_flags(exists: bool, flags: int) -> int:
    """The kernel's ``check_flags``: EEXIST / ENOENT for BPF_NOEXIST / BPF_EXIST."""
    op = flags & ~BPF_F_LOCK
    if exists and op == BPF_NOEXIST:
        return -errno.EEXIST
    if not exists and op == BPF_EXIST:
        return -errno.ENOENT
    return 0


class HashMap(BpfMap):
    """BPF_MAP_TYPE_HASH."""

    batch_ops = frozenset(
        {"lookup_batch", "lookup_and_delete_batch", "update_batch", "delete_batch"}
    )

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self._elems: dict[bytes, _Elem] = {}
        self._key_area = round8(attrs.key_size)
        self._value_area = self.elem_size * (attrs.ncpus if self.percpu else 1)

    # ---------------------------------------------------------------- element lifetime

    def _new_elem(self, key: bytes, lru: int) -> _Elem | None:
        region = self._alloc(self._key_area + self._value_area)
        if region is None:
            return None
        self._view[region.start : region.start + len(key)] = key
        return _Elem(key, region, region.start + self._key_area, lru)

    def _make_room(self, cpu: int) -> int:
        """Room for one more element (lock held): 0, or E2BIG when full."""
        return -errno.E2BIG if len(self._elems) >= self.max_entries else 0

    def _link(self, e: _Elem) -> None:
        """Hook: a new element became visible (LRU maps track it)."""

    def _unlink(self, e: _Elem) -> None:
        """Hook: an element left the map."""

    def _retire(self, e: _Elem) -> None:
        self._unlink(e)
        self._release_fields(e.value)
        self.arena.defer_free(e.region)

    def _insert(self, key: bytes, old: _Elem | None, cpu: int, fill: Callable[[int], None]) -> int:
        """Publish a new element for ``key`` replacing ``old`` (lock held); 0 or -errno."""
        if old is None:
            rc = self._make_room(cpu)
            if rc:
                return rc
        new = self._new_elem(key, cpu if old is None else old.lru)
        if new is None:
            return -errno.ENOMEM
        fill(new.value)
        self._elems[key] = new
        if old is not None:
            self._retire(old)
        self._link(new)
        return 0

    def _value_addr(self, e: _Elem, cpu: int) -> int:
        return e.value

    def _read(self, e: _Elem, flags: int) -> Any:
        return self._load(e.value, bool(flags & BPF_F_LOCK))

    # ---------------------------------------------------------------- program face

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        e = self._elems.get(key)
        return e.value if e is not None else 0

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -errno.EINVAL
        locked = flags & BPF_F_LOCK
        if locked:
            if self.lock_offset is None:
                return -errno.EINVAL
            old = self._elems.get(key)
            rc = check_flags(old is not None, flags)
            if rc:
                return rc
            if old is not None:
                self._store_locked(old.value, value)
                return 0
        with self._lock:
            old = self._elems.get(key)
            rc = check_flags(old is not None, flags)
            if rc:
                return rc
            if old is not None and locked:
                self._store_locked(old.value, value)
                return 0
            return self._insert(key, old, cpu, lambda dst: self._store(dst, value))

    def delete_elem(self, key: bytes) -> int:
        with self._lock:
            e = self._elems.pop(key, None)
            if e is None:
                return -errno.ENOENT
            self._retire(e)
        return 0

    def next_key(self, key: bytes | None) -> bytes | int:
        with self._lock:
            it = iter(self._elems)
            if key is not None and key in self._elems:
                for k in it:
                    if k == key:
                        break
            return next(it, -errno.ENOENT)

    def iter_elements(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        with self._lock:
            snapshot = list(self._elems.values())
        for e in snapshot:
            # Elements deleted by an earlier callback are skipped, as the kernel's walk does.
            if self._elems.get(e.key) is e:
                yield e.region.start, self._value_addr(e, cpu)

    # ---------------------------------------------------------------- userspace

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        e = self._elems.get(key)
        if e is None:
            raise self._error(errno.ENOENT, "no such key")
        return self._read(e, flags)

    def _u_lookup_and_delete(self, key: bytes, flags: int) -> Any:
        with self._lock:
            e = self._elems.pop(key, None)
            if e is None:
                raise self._error(errno.ENOENT, "no such key")
            value = self._read(e, flags)
            self._retire(e)
        return value

    def _u_keys(self) -> list[bytes]:
        with self._lock:
            return list(self._elems)

    def __len__(self) -> int:
        return len(self._elems)

    def _batch_walk(
        self, in_batch: Any, count: int | None, flags: int, delete: bool
    ) -> BatchResult:
        if in_batch is None:
            start = 0
        elif isinstance(in_batch, int) and in_batch >= 0:
            start = in_batch
        else:
            raise self._error(errno.EINVAL, f"bad batch token {in_batch!r}")
        limit = self.max_entries if count is None else count
        result = BatchResult([], [], in_batch)
        if limit <= 0:
            return result
        with self._lock:
            taken = list(self._elems.values())[start : start + limit]
            for e in taken:
                result.keys.append(e.key)
                result.values.append(self._read(e, flags))
                if delete:
                    del self._elems[e.key]
                    self._retire(e)
        result.keys = [self.decode_key(k) for k in result.keys]
        result.values = [self.decode_value(v) for v in result.values]
        result.out_batch = start if delete else start + len(taken)
        if len(taken) < limit:
            result.errno = errno.ENOENT
        return result


class PercpuHashMap(HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: each element holds one value per CPU, updated in place."""

    percpu = True

    def _value_addr(self, e: _Elem, cpu: int) -> int:
        return e.value + cpu * self.elem_size

    def _read(self, e: _Elem, flags: int) -> Any:
        return [self._load(e.value + c * self.elem_size) for c in range(self.ncpus)]

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        e = self._elems.get(key)
        if e is None or not 0 <= cpu < self.ncpus:
            return 0
        return e.value + cpu * self.elem_size

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        if flags > BPF_EXIST or not 0 <= cpu < self.ncpus:
            return -errno.EINVAL
        slot = cpu * self.elem_size
        with self._lock:
            old = self._elems.get(key)
            rc = check_flags(old is not None, flags)
            if rc:
                return rc
            if old is not None:
                self._store(old.value + slot, value)
                return 0
            # Other CPUs' copies of a new element start zeroed (``pcpu_init_value``).
            return self._insert(key, None, cpu, lambda dst: self._store(dst + slot, value))

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        if flags > BPF_EXIST:
            raise self._error(errno.EINVAL, f"invalid update flags {flags:#x}")

        def fill(dst: int) -> None:
            for c, v in enumerate(value):
                self._store(dst + c * self.elem_size, v)

        with self._lock:
            old = self._elems.get(key)
            rc = check_flags(old is not None, flags)
            if rc == 0:
                if old is not None:
                    fill(old.value)
                else:
                    rc = self._insert(key, None, 0, fill)
        self._check_rc(rc, "update")

    def encode_value(self, value: Any) -> Any:
        return percpu_values(self, value)

    def decode_value(self, raw: Any) -> Any:
        return [self._from_bytes(v, self.value_type_id) for v in raw]


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a full map evicts its least recently used element."""

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        lists = attrs.ncpus if attrs.map_flags & MapFlag.BPF_F_NO_COMMON_LRU else 1
        self._lru: list[OrderedDict[bytes, None]] = [OrderedDict() for _ in range(lists)]
        self._lru_capacity = attrs.max_entries // lists

    def _touch(self, key: bytes) -> None:
        e = self._elems.get(key)
        if e is not None:
            try:
                self._lru[e.lru].move_to_end(key)
            except KeyError:
                # Evicted or replaced by another thread between the two reads: nothing to mark.
                return

    def _make_room(self, cpu: int) -> int:
        lru = self._lru[cpu % len(self._lru)]
        if len(lru) >= self._lru_capacity:
            victim = self._elems.pop(next(iter(lru)))
            self._retire(victim)
        return 0

    def _new_elem(self, key: bytes, lru: int) -> _Elem | None:
        return super()._new_elem(key, lru % len(self._lru))

    def _link(self, e: _Elem) -> None:
        self._lru[e.lru][e.key] = None

    def _unlink(self, e: _Elem) -> None:
        self._lru[e.lru].pop(e.key, None)

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        addr = super().lookup_elem(key, cpu)
        if addr:
            self._touch(key)
        return addr

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        if flags > BPF_EXIST:
            return -errno.EINVAL
        rc = super().update_elem(key, value, flags, cpu)
        if rc == 0:
            self._touch(key)
        return rc


class LruPercpuHashMap(LruHashMap, PercpuHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: per-CPU values with LRU eviction."""

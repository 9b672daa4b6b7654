"""BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY (kernel/bpf/arraymap.c).

Place in the pipeline: created by `maps.types.create_map`; its values are one preallocated
Arena region, so the JIT can inline lookups as ``values_base + index * elem_size``.

All elements exist from creation (zero-filled) and are never freed: delete is EINVAL, update
with BPF_NOEXIST is EEXIST, an index past ``max_entries`` is E2BIG on update and NULL/ENOENT
on lookup. Elements are ``round_up(value_size, 8)`` apart. A per-CPU array holds ``ncpus``
copies of the whole array, CPU after CPU.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

from pybpf.errors import MapError
from pybpf.maps.base import BpfMap, MapAttrs, SpecialField
from pybpf.memory import PAGE_SIZE, Arena, Region
from pybpf.uapi import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapFlag

_U32_MAX = 0xFFFFFFFF


def array_next_key(key: bytes | None, max_entries: int) -> bytes | int:
    """``array_map_get_next_key``: 0 for None or an out-of-range key; ENOENT after the last."""
    index = _U32_MAX if key is None or len(key) != 4 else int.from_bytes(key, "little")
    if index >= max_entries:
        return (0).to_bytes(4, "little")
    if index == max_entries - 1:
        return -errno.ENOENT
    return (index + 1).to_bytes(4, "little")


class ArrayMap(BpfMap):
    """A fixed array of ``max_entries`` values indexed by a u32 key."""

    batch_ops = frozenset({"lookup_batch", "update_batch"})

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        copies = attrs.ncpus if self.percpu else 1
        # Mmapable arrays (global data) start on a page, as the kernel's vmalloc area does.
        align = PAGE_SIZE if attrs.map_flags & MapFlag.BPF_F_MMAPABLE else 8
        region = self._alloc(self.elem_size * attrs.max_entries * copies, align=align)
        if region is None:
            raise MapError(errno.ENOMEM, "arena has no room for the array", map_name=self.name)
        self._region = region
        self.values_base = region.start
        self._index_region: Region | None = None

    def _index(self, key: bytes) -> int:
        return int.from_bytes(key, "little") if len(key) == 4 else _U32_MAX

    # ---------------------------------------------------------------- program face

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        index = int.from_bytes(key, "little")
        if index >= self.max_entries or len(key) != 4:
            return 0
        return self.values_base + index * self.elem_size

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -errno.EINVAL
        index = self._index(key)
        if index >= self.max_entries:
            return -errno.E2BIG
        if flags & BPF_NOEXIST:
            return -errno.EEXIST
        if flags & BPF_F_LOCK and self.lock_offset is None:
            return -errno.EINVAL
        dst = self.lookup_elem(key, cpu)
        if not dst:
            return -errno.EINVAL
        if flags & BPF_F_LOCK:
            self._store_locked(dst, value)
        else:
            self._store(dst, value)
        self._release_fields(dst)
        return 0

    def delete_elem(self, key: bytes) -> int:
        return -errno.EINVAL

    def next_key(self, key: bytes | None) -> bytes | int:
        return array_next_key(key, self.max_entries)

    def iter_elements(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        keys = self._key_table()
        for i in range(self.max_entries):
            yield keys + 4 * i, self.lookup_elem(i.to_bytes(4, "little"), cpu)

    def _key_table(self) -> int:
        """A read-only u32 per index, so for_each callbacks get a real key pointer."""
        if self._index_region is None:
            with self._lock:
                if self._index_region is None:
                    region = self.arena.alloc(
                        4 * self.max_entries, kind="map_key", name=self.name, writable=False
                    )
                    self._view[region.start : region.end] = b"".join(
                        i.to_bytes(4, "little") for i in range(self.max_entries)
                    )
                    self._index_region = region
        return self._index_region.start

    # ---------------------------------------------------------------- userspace

    def _u_keys(self) -> list[bytes]:
        return [i.to_bytes(4, "little") for i in range(self.max_entries)]

    def __len__(self) -> int:
        return self.max_entries


class PercpuArrayMap(ArrayMap):
    """One array per CPU; userspace reads and writes all CPUs' values at once."""

    percpu = True

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        index = int.from_bytes(key, "little")
        if index >= self.max_entries or len(key) != 4 or not 0 <= cpu < self.ncpus:
            return 0
        return self.values_base + (cpu * self.max_entries + index) * self.elem_size

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        index = self._index(key)
        if index >= self.max_entries:
            raise self._error(errno.ENOENT, "index out of range")
        return [self._load(self.lookup_elem(key, cpu)) for cpu in range(self.ncpus)]

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        if flags > BPF_EXIST:
            raise self._error(errno.EINVAL, f"invalid update flags {flags:#x}")
        index = self._index(key)
        if index >= self.max_entries:
            raise self._error(errno.E2BIG, f"index {index} >= max_entries {self.max_entries}")
        if flags == BPF_NOEXIST:
            raise self._error(errno.EEXIST, "array elements always exist")
        for cpu, v in enumerate(value):
            self._store(self.lookup_elem(key, cpu), v)

    def encode_value(self, value: Any) -> Any:
        return percpu_values(self, value)

    def decode_value(self, raw: Any) -> Any:
        return [self._from_bytes(v, self.value_type_id) for v in raw]


def percpu_values(m: BpfMap, value: Any) -> list[bytes]:
    """A userspace per-CPU value as one ``value_size`` bytes object per CPU.

    Accepted: a list/tuple with one value per CPU; the kernel's flat buffer of ``ncpus``
    slots of ``round_up(value_size, 8)`` bytes; or one value, which every CPU receives.
    """
    if isinstance(value, list | tuple):
        if len(value) != m.ncpus:
            raise m._error(errno.EINVAL, f"per-CPU value needs {m.ncpus} entries, got {len(value)}")
        return [m._to_bytes(v, m.value_size, m.value_type_id, "value") for v in value]
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == m.ncpus * m.elem_size:
        flat = bytes(value)
        return [flat[c * m.elem_size : c * m.elem_size + m.value_size] for c in range(m.ncpus)]
    one = m._to_bytes(value, m.value_size, m.value_type_id, "value")
    return [one] * m.ncpus

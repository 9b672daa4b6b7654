"""Arrays whose values are references, not bytes (kernel/bpf/arraymap.c "fd arrays"):
PROG_ARRAY, PERF_EVENT_ARRAY and ARRAY_OF_MAPS; plus HASH_OF_MAPS (hashtab.c).

Place in the pipeline: created by `maps.types.create_map`; the runtime resolves prog-array
slots for tail calls (``tail_call_target``), helpers resolve inner-map handles with
``maps.map_by_handle``, and ``bpf_perf_event_output`` appends to a perf-event array.

In the kernel userspace stores file descriptors into these maps; here it stores the objects:

- PROG_ARRAY: any program reference (an ``int`` index or a program object), kept opaque; the
  runtime decides what it means. Userspace lookup returns it (the kernel returns the prog id).
- ARRAY_OF_MAPS / HASH_OF_MAPS: a ``BpfMap`` whose type, key and value sizes, flags and special
  fields equal the inner-map template's (and, for ARRAY inner maps without BPF_F_INNER_MAP,
  max_entries), else EINVAL. Programs get the inner map's handle; userspace gets the map.
- PERF_EVENT_ARRAY: slot ``i`` holds the CPU its "perf event" is bound to; ``open()`` binds
  slot ``i`` to CPU ``i`` for every CPU, as libbpf's perf buffer does. ``output`` needs an open
  slot (ENOENT otherwise) bound to the running CPU (EOPNOTSUPP otherwise); each record is kept
  as the kernel delivers a raw sample: padded with zeros so that 4 + size is a multiple of 8.
"""

from __future__ import annotations

import errno
from typing import Any

from pybpf.maps.array import array_next_key
from pybpf.maps.base import BpfMap, MapAttrs, SpecialField
from pybpf.maps.hash import check_flags
from pybpf.memory import Arena
from pybpf.uapi import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_CURRENT_CPU,
    BPF_F_INDEX_MASK,
    ENOTSUPP,
    BpfMapType,
    MapFlag,
)

_U32_MAX = 0xFFFFFFFF


class _FdArray(BpfMap):
    """Shared shape: ``max_entries`` slots holding a reference or None."""

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self._slots: list[Any] = [None] * attrs.max_entries

    def _slot(self, key: bytes) -> int:
        return int.from_bytes(key, "little") if len(key) == 4 else _U32_MAX

    def next_key(self, key: bytes | None) -> bytes | int:
        return array_next_key(key, self.max_entries)

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        # Programs cannot store references into these maps (the verifier refuses the call).
        return -errno.EOPNOTSUPP

    def delete_elem(self, key: bytes) -> int:
        index = self._slot(key)
        if index >= self.max_entries:
            return -errno.E2BIG
        with self._lock:
            old, self._slots[index] = self._slots[index], None
        return 0 if old is not None else -errno.ENOENT

    def _check_ref(self, value: Any) -> None:
        """Refuse what cannot be stored in this map (EBADF/EINVAL as for a bad fd)."""

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        if flags != BPF_ANY:
            raise self._error(errno.EINVAL, "only BPF_ANY is allowed for this map type")
        index = self._slot(key)
        if index >= self.max_entries:
            raise self._error(errno.E2BIG, f"index {index} >= max_entries {self.max_entries}")
        self._check_ref(value)
        with self._lock:
            self._slots[index] = value

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        index = self._slot(key)
        value = self._slots[index] if index < self.max_entries else None
        if value is None:
            raise self._error(errno.ENOENT, "empty slot")
        return value

    def encode_value(self, value: Any) -> Any:
        return value

    def decode_value(self, raw: Any) -> Any:
        return raw

    def _u_keys(self) -> list[bytes]:
        return [i.to_bytes(4, "little") for i, v in enumerate(self._slots) if v is not None]


class ProgArrayMap(_FdArray):
    """BPF_MAP_TYPE_PROG_ARRAY: tail-call targets."""

    def _check_ref(self, value: Any) -> None:
        if value is None:
            raise self._error(errno.EBADF, "no program given")

    def encode_value(self, value: Any) -> Any:
        if isinstance(value, bytes | bytearray) and len(value) == 4:
            return int.from_bytes(value, "little")
        return value

    def tail_call_target(self, index: int) -> Any:
        """The program reference ``bpf_tail_call`` jumps to, or None (the call falls through)."""
        return self._slots[index] if 0 <= index < self.max_entries else None


class PerfEventArrayMap(_FdArray):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: per-CPU streams of raw samples."""

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self._samples: list[list[bytes]] = [[] for _ in range(attrs.max_entries)]

    def _check_ref(self, value: Any) -> None:
        if not isinstance(value, int) or not 0 <= value < self.ncpus:
            raise self._error(errno.EBADF, f"a perf event is bound to a CPU in 0..{self.ncpus - 1}")

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        raise self._error(ENOTSUPP, "perf event array slots cannot be read")

    def open(self, index: int | None = None) -> None:
        """Bind slot ``index`` (default: every slot below ``ncpus``) to the CPU of that number."""
        self._check_write()
        indexes = range(min(self.ncpus, self.max_entries)) if index is None else [index]
        for i in indexes:
            self._u_update(i.to_bytes(4, "little"), i, BPF_ANY)

    def output(self, data: bytes, flags: int, cpu: int = 0) -> int:
        """``bpf_perf_event_output`` with ``flags`` = slot index or BPF_F_CURRENT_CPU."""
        if flags & ~BPF_F_INDEX_MASK:
            return -errno.EINVAL
        index = cpu if flags == BPF_F_CURRENT_CPU else flags
        if index >= self.max_entries:
            return -errno.E2BIG
        bound = self._slots[index]
        if bound is None:
            return -errno.ENOENT
        if bound != cpu:
            return -errno.EOPNOTSUPP
        padded = ((len(data) + 4 + 7) & -8) - 4
        sample = bytes(data) + bytes(padded - len(data))
        with self._lock:
            self._samples[index].append(sample)
        return 0

    def read(self, index: int | None = None) -> list[bytes]:
        """Drain the samples of slot ``index`` (default: all slots, slot by slot)."""
        self._check_read()
        with self._lock:
            if index is None:
                out = [s for samples in self._samples for s in samples]
                for samples in self._samples:
                    samples.clear()
                return out
            if not 0 <= index < self.max_entries:
                raise self._error(errno.E2BIG, f"index {index} >= max_entries {self.max_entries}")
            out = list(self._samples[index])
            self._samples[index].clear()
            return out


def meta_equal(template: BpfMap, m: BpfMap) -> bool:
    """``map_meta_equal``: can ``m`` stand where the inner-map template stands?"""
    if not (
        template.map_type == m.map_type
        and template.key_size == m.key_size
        and template.value_size == m.value_size
        and template.map_flags == m.map_flags
        and template.fields == m.fields
    ):
        return False
    if template.map_type == BpfMapType.ARRAY and not template.map_flags & MapFlag.BPF_F_INNER_MAP:
        return template.max_entries == m.max_entries
    return True


class _MapRefs(BpfMap):
    """What both map-in-map types share: the inner map template and the check of a value
    against it."""

    def __init__(
        self,
        arena: Arena,
        attrs: MapAttrs,
        fields: tuple[SpecialField, ...],
        inner: BpfMap | None = None,
    ) -> None:
        super().__init__(arena, attrs, fields)
        self.inner = inner

    def _check_ref(self, value: Any) -> None:
        if self.inner is None:
            raise self._error(errno.EBADF, "map-in-map created without an inner map template")
        if not isinstance(value, BpfMap):
            raise self._error(errno.EBADF, f"inner value must be a map, not {type(value).__name__}")
        if value.arena is not self.arena:
            raise self._error(errno.EINVAL, "inner map lives in another arena")
        if not meta_equal(self.inner, value):
            raise self._error(
                errno.EINVAL,
                f"inner map {value.name!r} does not match the template (map type, key and "
                "value size, flags, special fields; max_entries for arrays)",
            )


class ArrayOfMapsMap(_MapRefs, _FdArray):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS."""

    batch_ops = frozenset({"lookup_batch", "update_batch"})

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        index = self._slot(key)
        if index >= self.max_entries:
            return 0
        m = self._slots[index]
        return m.handle if m is not None else 0


class HashOfMapsMap(_MapRefs, BpfMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: hash semantics, values are inner maps."""

    batch_ops = frozenset({"lookup_batch", "lookup_and_delete_batch"})

    def __init__(
        self,
        arena: Arena,
        attrs: MapAttrs,
        fields: tuple[SpecialField, ...],
        inner: BpfMap | None = None,
    ) -> None:
        super().__init__(arena, attrs, fields, inner)
        self._maps: dict[bytes, BpfMap] = {}

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        m = self._maps.get(key)
        return m.handle if m is not None else 0

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -errno.EOPNOTSUPP

    def delete_elem(self, key: bytes) -> int:
        with self._lock:
            return 0 if self._maps.pop(key, None) is not None else -errno.ENOENT

    def next_key(self, key: bytes | None) -> bytes | int:
        with self._lock:
            it = iter(self._maps)
            if key is not None and key in self._maps:
                for k in it:
                    if k == key:
                        break
            return next(it, -errno.ENOENT)

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        if flags > BPF_EXIST:
            raise self._error(errno.EINVAL, f"invalid update flags {flags:#x}")
        self._check_ref(value)
        with self._lock:
            exists = key in self._maps
            rc = check_flags(exists, flags)
            if rc == 0 and not exists and len(self._maps) >= self.max_entries:
                rc = -errno.E2BIG
            if rc == 0:
                self._maps[key] = value
        self._check_rc(rc, "update")

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        m = self._maps.get(key)
        if m is None:
            raise self._error(errno.ENOENT, "no such key")
        return m

    def _u_lookup_and_delete(self, key: bytes, flags: int) -> Any:
        with self._lock:
            m = self._maps.pop(key, None)
        if m is None:
            raise self._error(errno.ENOENT, "no such key")
        return m

    def _batch_walk(self, in_batch: Any, count: int | None, flags: int, delete: bool) -> Any:
        result = super()._batch_walk(in_batch, count, flags, delete=False)
        if delete:
            for k in result.keys:
                self._u_delete(self.encode_key(k))
        return result

    def encode_value(self, value: Any) -> Any:
        return value

    def decode_value(self, raw: Any) -> Any:
        return raw

    def _u_keys(self) -> list[bytes]:
        with self._lock:
            return list(self._maps)

    def __len__(self) -> int:
        return len(self._maps)

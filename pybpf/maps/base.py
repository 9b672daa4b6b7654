"""What every map shares: attributes, the two faces (program side, userspace side), key and
value conversion, special BTF fields (spin lock, timer, workqueue) and map handles.

Place in the pipeline: `maps` sits on `memory` (values live in the Arena) and `btf` (codecs);
`helpers` and `vm` call the program face, `object.py` and users call the userspace face.

The two faces follow the kernel's split between ``map->ops`` (called by helpers, from inside a
running program: raw bytes in, virtual addresses or negative errno out, no exceptions for
expected failures) and the ``bpf()`` syscall (``MapError`` carrying the errno, keys and values
converted from Python objects):

- program face: ``lookup_elem``, ``update_elem``, ``delete_elem``, ``push_elem``,
  ``pop_elem``, ``peek_elem``, ``next_key``, ``iter_elements`` (and per-family extras such as
  ringbuf ``reserve``/``submit``). Keys and values are ``bytes`` of exactly the map's sizes
  (the helper reads them out of the Arena); results are vaddrs (0 for NULL) or ``-errno``.
- userspace face: ``lookup``, ``update``, ``delete``, ``get_next_key``, ``lookup_and_delete``,
  the batch operations and the dict-like protocol.

Conversion rule for the userspace face (one rule for every map):

- ``bytes``/``bytearray``/``memoryview`` are used as they are and must have the exact size;
- an ``int`` is written little-endian in the key/value size (two's complement if negative);
- anything else is encoded through BTF when the map has a key/value type id, else EINVAL;
- on the way out, values (and keys) are decoded through BTF when the map has the type id,
  otherwise returned as ``bytes``. Per-CPU maps return a list with one value per CPU.
"""

from __future__ import annotations

import errno
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pybpf.btf import Btf, Kind
from pybpf.btf import decode_value as btf_decode
from pybpf.btf import encode_value as btf_encode
from pybpf.errors import BpfError, ExhaustionError, MapError, UnsupportedError
from pybpf.memory import Arena, Region
from pybpf.uapi import BPF_F_LOCK, ENOTSUPP, BpfMapType, MapFlag

# Size of the Arena region that stands for a map (what a `struct bpf_map *` points at).
MAP_HANDLE_SIZE = 64

# The BTF struct names of the fields ``copy_map_value`` never overwrites, with their sizes.
SPECIAL_STRUCTS: dict[str, int] = {
    "bpf_spin_lock": 4,
    "bpf_res_spin_lock": 8,
    "bpf_timer": 16,
    "bpf_wq": 16,
}

_N_STRIPES = 256
_STRIPES = tuple(threading.Lock() for _ in range(_N_STRIPES))


def value_lock(lock_vaddr: int) -> threading.Lock:
    """The host lock standing for the ``struct bpf_spin_lock`` at ``lock_vaddr``.

    ``bpf_spin_lock``/``bpf_spin_unlock`` (helpers) and ``BPF_F_LOCK`` copies (maps) take the
    same lock, so they exclude each other as in the kernel. Locks are striped by address; a
    program holds at most one spin lock at a time (verifier rule), so striping cannot deadlock.
    """
    return _STRIPES[(lock_vaddr >> 2) % _N_STRIPES]


def round8(n: int) -> int:
    return (n + 7) & -8


@dataclass(frozen=True)
class MapAttrs:
    """The validated BPF_MAP_CREATE attributes of one map."""

    map_type: BpfMapType
    name: str
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    map_extra: int = 0
    ncpus: int = 1
    btf: Btf | None = None
    key_type_id: int = 0
    value_type_id: int = 0


@dataclass(frozen=True)
class SpecialField:
    """One field of the value that map copies skip (``btf_record`` entry)."""

    kind: str
    offset: int
    size: int


@dataclass
class BatchResult:
    """One batch call: the elements returned, the token to continue with, and the errno.

    ``errno`` is 0 or ENOENT: ENOENT means the walk reached the end (the kernel returns it
    together with the last elements), so a loop stops on ``done``.
    """

    keys: list[Any]
    values: list[Any]
    out_batch: Any
    errno: int = 0

    @property
    def done(self) -> bool:
        return self.errno == errno.ENOENT


_handles: weakref.WeakKeyDictionary[Arena, weakref.WeakValueDictionary[int, BpfMap]] = (
    weakref.WeakKeyDictionary()
)
_handles_lock = threading.Lock()


def map_by_handle(arena: Arena, vaddr: int) -> BpfMap | None:
    """The live map whose handle (``struct bpf_map *`` value) is ``vaddr`` in ``arena``."""
    table = _handles.get(arena)
    return None if table is None else table.get(vaddr)


class BpfMap:
    """Base of every map type. Subclasses implement the program face and the hooks below."""

    # Set by subclasses: values are per CPU; the map has no key; userspace update/delete apply.
    percpu: ClassVar[bool] = False
    keyless: ClassVar[bool] = False

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        self.arena = arena
        self.attrs = attrs
        self.map_type = attrs.map_type
        self.name = attrs.name
        self.key_size = attrs.key_size
        self.value_size = attrs.value_size
        self.max_entries = attrs.max_entries
        # As the kernel, the map keeps the permanent flags; RDONLY/WRONLY belong to the fd.
        self.map_flags = attrs.map_flags & ~(MapFlag.BPF_F_RDONLY | MapFlag.BPF_F_WRONLY)
        self.access_flags = attrs.map_flags & (MapFlag.BPF_F_RDONLY | MapFlag.BPF_F_WRONLY)
        self.map_extra = attrs.map_extra
        self.ncpus = attrs.ncpus
        self.btf = attrs.btf
        self.key_type_id = attrs.key_type_id
        self.value_type_id = attrs.value_type_id
        self.fields = fields
        self.lock_offset: int | None = next(
            (f.offset for f in fields if f.kind == "bpf_spin_lock"), None
        )
        self.frozen = False
        # Called with a value's vaddr when the kernel would free its special fields
        # (``bpf_obj_free_fields``: the element is deleted, replaced or evicted, or an array
        # element is overwritten), so the runtime can cancel a bpf_timer / bpf_wq in it.
        self.on_release: Callable[[int], None] | None = None
        self.elem_size = round8(attrs.value_size)
        # Guards every mutation of the map's own bookkeeping; lookups do not take it.
        self._lock = threading.Lock()
        self._view = arena.view
        self._handle_region = arena.alloc(
            MAP_HANDLE_SIZE, kind="map", name=attrs.name, writable=False
        )
        self.handle = self._handle_region.start
        with _handles_lock:
            _handles.setdefault(arena, weakref.WeakValueDictionary())[self.handle] = self

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} {self.map_type.short} key={self.key_size} "
            f"value={self.value_size} max_entries={self.max_entries}>"
        )

    # ---------------------------------------------------------------- memory helpers

    def _alloc(self, size: int, kind: str = "map_value", align: int = 8) -> Region | None:
        """A zeroed Arena region for map data, or None when the Arena is full (ENOMEM)."""
        try:
            return self.arena.alloc(
                size,
                align=align,
                kind=kind,
                name=self.name,
                writable=not self.map_flags & MapFlag.BPF_F_RDONLY_PROG,
            )
        except ExhaustionError:
            return None

    def _store(self, dst: int, value: bytes) -> None:
        """``copy_map_value``: copy ``value`` to ``dst`` except the special fields."""
        view = self._view
        if not self.fields:
            view[dst : dst + len(value)] = value
            return
        pos = 0
        for f in self.fields:
            view[dst + pos : dst + f.offset] = value[pos : f.offset]
            pos = f.offset + f.size
        view[dst + pos : dst + len(value)] = value[pos:]

    def _store_locked(self, dst: int, value: bytes) -> None:
        """``copy_map_value_locked``: the copy under the value's own spin lock."""
        with value_lock(dst + (self.lock_offset or 0)):
            self._store(dst, value)

    def _release_fields(self, value: int) -> None:
        if self.fields and self.on_release is not None:
            self.on_release(value)

    def _load(self, src: int, locked: bool = False) -> bytes:
        """The value at ``src`` with the special fields zeroed (``check_and_init_map_value``)."""
        if locked and self.lock_offset is not None:
            with value_lock(src + self.lock_offset):
                data = bytearray(self._view[src : src + self.value_size])
        else:
            data = bytearray(self._view[src : src + self.value_size])
        for f in self.fields:
            data[f.offset : f.offset + f.size] = bytes(f.size)
        return bytes(data)

    # ---------------------------------------------------------------- program face

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        """``map->ops->map_lookup_elem``: the value's vaddr, or 0 (NULL)."""
        return 0

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        """``map->ops->map_update_elem``: 0 or ``-errno``."""
        return -errno.EINVAL

    def delete_elem(self, key: bytes) -> int:
        return -errno.EINVAL

    def push_elem(self, value: bytes, flags: int) -> int:
        return -errno.EOPNOTSUPP

    def pop_elem(self, dst: int) -> int:
        """Pop into the ``value_size`` bytes at vaddr ``dst``: 0 or ``-errno``."""
        return -errno.EOPNOTSUPP

    def peek_elem(self, dst: int) -> int:
        """Peek into the bytes at vaddr ``dst`` (bloom filter: test the value there)."""
        return -errno.EOPNOTSUPP

    def next_key(self, key: bytes | None) -> bytes | int:
        """``map_get_next_key``: the key after ``key`` (first if None/absent) or ``-errno``."""
        return -errno.EINVAL

    def iter_elements(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        """(key vaddr, value vaddr) of each element, for ``bpf_for_each_map_elem``."""
        raise UnsupportedError(f"bpf_for_each_map_elem on a {self.map_type.short} map")

    # ---------------------------------------------------------------- userspace hooks

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        vaddr = self.lookup_elem(key)
        if not vaddr:
            raise self._error(errno.ENOENT, "no such element")
        return self._load(vaddr, bool(flags & BPF_F_LOCK))

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        self._check_rc(self.update_elem(key, value, flags), "update")

    def _u_delete(self, key: bytes) -> None:
        self._check_rc(self.delete_elem(key), "delete")

    def _u_lookup_and_delete(self, key: bytes, flags: int) -> Any:
        raise self._error(ENOTSUPP, "lookup_and_delete is not supported by this map type")

    def _u_keys(self) -> list[bytes]:
        """All keys, in ``get_next_key`` order (a snapshot)."""
        out: list[bytes] = []
        key: bytes | None = None
        seen = 0
        while seen <= self.max_entries:
            nxt = self.next_key(key)
            if isinstance(nxt, int):
                if nxt == -errno.ENOENT:
                    return out
                raise self._error(-nxt, "get_next_key failed")
            out.append(nxt)
            key = nxt
            seen += 1
        return out

    # Batch operations the kernel offers for this type (others: ENOTSUPP).
    batch_ops: ClassVar[frozenset[str]] = frozenset()

    # ---------------------------------------------------------------- conversions

    def _error(self, code: int, reason: str) -> MapError:
        return MapError(code, reason, map_name=self.name)

    def _check_rc(self, rc: int, what: str) -> None:
        if rc:
            raise self._error(-rc, f"{what} failed")

    def _to_bytes(self, obj: Any, size: int, type_id: int, what: str) -> bytes:
        if isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
        elif isinstance(obj, int):
            try:
                data = obj.to_bytes(size, "little", signed=obj < 0)
            except OverflowError as e:
                raise self._error(errno.EINVAL, f"{what} {obj} does not fit {size} bytes") from e
        elif self.btf is not None and type_id:
            try:
                data = btf_encode(self.btf, type_id, obj)
            except BpfError as e:
                raise self._error(errno.EINVAL, f"cannot encode {what}: {e}") from e
        else:
            raise self._error(
                errno.EINVAL,
                f"{what} of type {type(obj).__name__} needs BTF for this map "
                f"(give bytes or an int of {size} bytes)",
            )
        if len(data) != size:
            raise self._error(errno.EINVAL, f"{what} must be {size} bytes, got {len(data)}")
        return data

    def _from_bytes(self, data: bytes, type_id: int) -> Any:
        if self.btf is None or not type_id:
            return data
        return btf_decode(self.btf, type_id, data)

    def encode_key(self, key: Any) -> bytes:
        """The raw key bytes of a userspace key (see the module's conversion rule)."""
        if self.keyless:
            if key is not None:
                raise self._error(errno.EINVAL, "this map has no key (pass None)")
            return b""
        return self._to_bytes(key, self.key_size, self.key_type_id, "key")

    def decode_key(self, raw: bytes) -> Any:
        return self._from_bytes(raw, self.key_type_id)

    def encode_value(self, value: Any) -> Any:
        """The raw form a userspace value takes before it is stored."""
        return self._to_bytes(value, self.value_size, self.value_type_id, "value")

    def decode_value(self, raw: Any) -> Any:
        return self._from_bytes(raw, self.value_type_id)

    # ---------------------------------------------------------------- userspace face

    def _check_read(self) -> None:
        if self.access_flags & MapFlag.BPF_F_WRONLY:
            raise self._error(errno.EPERM, "map is write-only for userspace (BPF_F_WRONLY)")

    def _check_write(self) -> None:
        if self.access_flags & MapFlag.BPF_F_RDONLY:
            raise self._error(errno.EPERM, "map is read-only for userspace (BPF_F_RDONLY)")
        if self.frozen:
            raise self._error(errno.EPERM, "map is frozen")

    def _check_lock_flag(self, flags: int) -> None:
        if flags & BPF_F_LOCK and self.lock_offset is None:
            raise self._error(errno.EINVAL, "BPF_F_LOCK needs a struct bpf_spin_lock in the value")

    def lookup(self, key: Any = None, flags: int = 0) -> Any:
        """BPF_MAP_LOOKUP_ELEM: the value (decoded), MapError(ENOENT) when absent."""
        if flags & ~BPF_F_LOCK:
            raise self._error(errno.EINVAL, f"invalid lookup flags {flags:#x}")
        self._check_read()
        self._check_lock_flag(flags)
        return self.decode_value(self._u_lookup(self.encode_key(key), flags))

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        """BPF_MAP_UPDATE_ELEM with BPF_ANY / BPF_NOEXIST / BPF_EXIST (| BPF_F_LOCK)."""
        self._check_write()
        self._check_lock_flag(flags)
        raw_key = self.encode_key(key)
        self._u_update(raw_key, self.encode_value(value), flags)

    def delete(self, key: Any = None) -> None:
        """BPF_MAP_DELETE_ELEM: MapError(ENOENT) when absent (arrays: EINVAL)."""
        self._check_write()
        self._u_delete(self.encode_key(key))

    def get_next_key(self, key: Any = None) -> Any:
        """BPF_MAP_GET_NEXT_KEY: the first key for None or a missing key; ENOENT at the end."""
        self._check_read()
        raw = None if key is None else self.encode_key(key)
        nxt = self.next_key(raw)
        if isinstance(nxt, int):
            raise self._error(-nxt, "no next key" if nxt == -errno.ENOENT else "get_next_key")
        return self.decode_key(nxt)

    def lookup_and_delete(self, key: Any = None, flags: int = 0) -> Any:
        """BPF_MAP_LOOKUP_AND_DELETE_ELEM (queue/stack: pop; hash family: take out)."""
        if flags & ~BPF_F_LOCK:
            raise self._error(errno.EINVAL, f"invalid flags {flags:#x}")
        self._check_read()
        self._check_write()
        self._check_lock_flag(flags)
        return self.decode_value(self._u_lookup_and_delete(self.encode_key(key), flags))

    def freeze(self) -> None:
        """BPF_MAP_FREEZE: userspace may no longer write (programs still may)."""
        if self.fields:
            raise self._error(ENOTSUPP, "maps with special fields cannot be frozen")
        self._check_write()
        self.frozen = True

    def keys(self) -> list[Any]:
        self._check_read()
        return [self.decode_key(k) for k in self._u_keys()]

    def values(self) -> list[Any]:
        return [v for _, v in self.items()]

    def items(self) -> list[tuple[Any, Any]]:
        self._check_read()
        out = []
        for raw in self._u_keys():
            try:
                value = self._u_lookup(raw, 0)
            except MapError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise
            out.append((self.decode_key(raw), self.decode_value(value)))
        return out

    def __getitem__(self, key: Any) -> Any:
        return self.lookup(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def __contains__(self, key: Any) -> bool:
        try:
            self.lookup(key)
        except MapError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._u_keys())

    # ---------------------------------------------------------------- batch operations

    def _check_batch(self, op: str, flags: int) -> None:
        if op not in self.batch_ops:
            raise self._error(ENOTSUPP, f"{op} is not supported by this map type")
        if flags & ~BPF_F_LOCK:
            raise self._error(errno.EINVAL, f"invalid batch elem_flags {flags:#x}")
        self._check_lock_flag(flags)

    def lookup_batch(
        self, in_batch: Any = None, count: int | None = None, flags: int = 0
    ) -> BatchResult:
        """BPF_MAP_LOOKUP_BATCH: up to ``count`` elements after ``in_batch`` (None: start)."""
        self._check_read()
        self._check_batch("lookup_batch", flags)
        return self._batch_walk(in_batch, count, flags, delete=False)

    def lookup_and_delete_batch(
        self, in_batch: Any = None, count: int | None = None, flags: int = 0
    ) -> BatchResult:
        """BPF_MAP_LOOKUP_AND_DELETE_BATCH: like lookup_batch, deleting what it returns."""
        self._check_read()
        self._check_write()
        self._check_batch("lookup_and_delete_batch", flags)
        return self._batch_walk(in_batch, count, flags, delete=True)

    def update_batch(self, keys: list[Any], values: list[Any], flags: int = 0) -> int:
        """BPF_MAP_UPDATE_BATCH: stops at the first failure, naming how many succeeded."""
        self._check_write()
        self._check_batch("update_batch", flags)
        if len(keys) != len(values):
            raise self._error(errno.EINVAL, "update_batch needs as many values as keys")
        for done, (k, v) in enumerate(zip(keys, values, strict=True)):
            try:
                self._u_update(self.encode_key(k), self.encode_value(v), flags)
            except MapError as e:
                raise self._error(
                    e.errno, f"update_batch stopped after {done} elements: {e.reason}"
                ) from e
        return len(keys)

    def delete_batch(self, keys: list[Any], flags: int = 0) -> int:
        """BPF_MAP_DELETE_BATCH: stops at the first failure, naming how many were deleted."""
        self._check_write()
        self._check_batch("delete_batch", flags)
        for done, k in enumerate(keys):
            try:
                self._u_delete(self.encode_key(k))
            except MapError as e:
                raise self._error(
                    e.errno, f"delete_batch stopped after {done} elements: {e.reason}"
                ) from e
        return len(keys)

    def _batch_walk(
        self, in_batch: Any, count: int | None, flags: int, delete: bool
    ) -> BatchResult:
        """``generic_map_lookup_batch``: the token is the last key returned."""
        limit = self.max_entries if count is None else count
        result = BatchResult([], [], in_batch)
        if limit <= 0:
            return result
        prev = None if in_batch is None else self.encode_key(in_batch)
        while len(result.keys) < limit:
            nxt = self.next_key(prev)
            if isinstance(nxt, int):
                result.errno = -nxt
                break
            prev = nxt
            try:
                value = self._u_lookup(nxt, flags)
            except MapError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise
            result.keys.append(self.decode_key(nxt))
            result.values.append(self.decode_value(value))
            result.out_batch = self.decode_key(nxt)
        if result.errno not in (0, errno.ENOENT):
            raise self._error(result.errno, "lookup_batch failed")
        return result


def special_fields(
    btf: Btf | None, value_type_id: int, map_name: str | None = None
) -> tuple[SpecialField, ...]:
    """The special fields of the value type (top-level struct members), sorted by offset.

    Raises MapError(E2BIG) when one kind appears twice, as ``btf_parse_fields`` refuses that.
    """
    if btf is None or not value_type_id:
        return ()
    t = btf.resolve(value_type_id)
    if t.kind is Kind.STRUCT and t.name in SPECIAL_STRUCTS:
        return (SpecialField(t.name, 0, SPECIAL_STRUCTS[t.name]),)
    if t.kind is not Kind.STRUCT:
        return ()
    found: list[SpecialField] = []
    for m in t.members:
        mt = btf.resolve(m.type_id)
        if mt.kind is Kind.STRUCT and mt.name in SPECIAL_STRUCTS:
            if any(f.kind == mt.name for f in found):
                raise MapError(
                    errno.E2BIG, f"value has more than one struct {mt.name}", map_name=map_name
                )
            found.append(SpecialField(mt.name, m.bit_offset // 8, SPECIAL_STRUCTS[mt.name]))
    return tuple(sorted(found, key=lambda f: f.offset))

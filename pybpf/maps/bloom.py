"""BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c) and the kernel's jhash.

Place in the pipeline: created by `maps.types.create_map`; ``bpf_map_push_elem`` adds a value,
``bpf_map_peek_elem`` tests one (0: maybe present, ENOENT: certainly absent).

The hash is the kernel's: ``k`` functions (``map_extra & 0xf``, default 5), function ``i`` is
``jhash2(value, value_size / 4, seed + i)`` when the value size is a multiple of 4, else
``jhash(value, value_size, seed + i)``, masked to a power-of-two bit array of
``roundup_pow_of_two(max_entries * k * 7 / 5)`` bits (at least 64). The seed is always 0 (the
kernel draws a random seed unless BPF_F_ZERO_SEED): results are reproducible, and equal to a
kernel filter created with BPF_F_ZERO_SEED, false positives included.
"""

from __future__ import annotations

import errno
from typing import Any

from pybpf.maps.base import BpfMap, MapAttrs, SpecialField
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY

JHASH_INITVAL = 0xDEADBEEF
_M = 0xFFFFFFFF
DEFAULT_HASH_FUNCS = 5


def _rol(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _M
    a ^= _rol(c, 4)
    c = (c + b) & _M
    b = (b - a) & _M
    b ^= _rol(a, 6)
    a = (a + c) & _M
    c = (c - b) & _M
    c ^= _rol(b, 8)
    b = (b + a) & _M
    a = (a - c) & _M
    a ^= _rol(c, 16)
    c = (c + b) & _M
    b = (b - a) & _M
    b ^= _rol(a, 19)
    a = (a + c) & _M
    c = (c - b) & _M
    c ^= _rol(b, 4)
    b = (b + a) & _M
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b
    c = (c - _rol(b, 14)) & _M
    a ^= c
    a = (a - _rol(c, 11)) & _M
    b ^= a
    b = (b - _rol(a, 25)) & _M
    c ^= b
    c = (c - _rol(b, 16)) & _M
    a ^= c
    a = (a - _rol(c, 4)) & _M
    b ^= a
    b = (b - _rol(a, 14)) & _M
    c ^= b
    c = (c - _rol(b, 24)) & _M
    return c


def _words(data: bytes, count: int) -> list[int]:
    return [int.from_bytes(data[4 * i : 4 * i + 4], "little") for i in range(count)]


def jhash(data: bytes, initval: int) -> int:
    """include/linux/jhash.h ``jhash`` (Bob Jenkins' lookup3 ``hashlittle``)."""
    length = len(data)
    a = b = c = (JHASH_INITVAL + length + initval) & _M
    pos = 0
    while length - pos > 12:
        x, y, z = _words(data[pos : pos + 12], 3)
        a, b, c = _mix((a + x) & _M, (b + y) & _M, (c + z) & _M)
        pos += 12
    if length == pos:
        return c
    x, y, z = _words(data[pos:].ljust(12, b"\0"), 3)
    return _final((a + x) & _M, (b + y) & _M, (c + z) & _M)


def jhash2(words: list[int], initval: int) -> int:
    """include/linux/jhash.h ``jhash2`` over u32 words."""
    n = len(words)
    a = b = c = (JHASH_INITVAL + (n << 2) + initval) & _M
    pos = 0
    while n - pos > 3:
        a, b, c = _mix((a + words[pos]) & _M, (b + words[pos + 1]) & _M, (c + words[pos + 2]) & _M)
        pos += 3
    if n == pos:
        return c
    rest = [*words[pos:], 0, 0][:3]
    return _final((a + rest[0]) & _M, (b + rest[1]) & _M, (c + rest[2]) & _M)


def bitset_mask(max_entries: int, nr_hash_funcs: int) -> int:
    """``bitset_mask`` of ``bloom_map_alloc``: bit array size minus one."""
    nr_bits = max_entries * nr_hash_funcs
    if nr_bits > _M:
        return _M
    nr_bits = (nr_bits // 5) * 7
    if nr_bits > _M or nr_bits > 1 << 31:
        return _M
    nr_bits = 64 if nr_bits <= 64 else 1 << (nr_bits - 1).bit_length()
    return nr_bits - 1


class BloomFilterMap(BpfMap):
    """A keyless set with false positives and no deletion."""

    keyless = True

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self.nr_hash_funcs = (attrs.map_extra & 0xF) or DEFAULT_HASH_FUNCS
        self.bitset_mask = bitset_mask(attrs.max_entries, self.nr_hash_funcs)
        self.seed = 0
        self._aligned = attrs.value_size % 4 == 0
        # The bit array can reach 2**32 bits; only set bits are stored.
        self._bits: set[int] = set()

    def _hashes(self, value: bytes) -> list[int]:
        if self._aligned:
            words = _words(value, self.value_size // 4)
            return [
                jhash2(words, (self.seed + i) & _M) & self.bitset_mask
                for i in range(self.nr_hash_funcs)
            ]
        return [
            jhash(value, (self.seed + i) & _M) & self.bitset_mask for i in range(self.nr_hash_funcs)
        ]

    def contains(self, value: bytes) -> int:
        """0 when every bit of ``value`` is set (maybe present), else ``-ENOENT``."""
        bits = self._bits
        return 0 if all(h in bits for h in self._hashes(value)) else -errno.ENOENT

    # ---------------------------------------------------------------- program face

    def push_elem(self, value: bytes, flags: int) -> int:
        if flags != BPF_ANY:
            return -errno.EINVAL
        hashes = self._hashes(bytes(value))
        with self._lock:
            self._bits.update(hashes)
        return 0

    def peek_elem(self, dst: int) -> int:
        """Test the ``value_size`` bytes at vaddr ``dst`` (an input, unlike queues)."""
        return self.contains(bytes(self._view[dst : dst + self.value_size]))

    def pop_elem(self, dst: int) -> int:
        return -errno.EOPNOTSUPP

    def delete_elem(self, key: bytes) -> int:
        return -errno.EOPNOTSUPP

    def next_key(self, key: bytes | None) -> bytes | int:
        return -errno.EOPNOTSUPP

    # ---------------------------------------------------------------- userspace

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        self._check_rc(self.push_elem(value, flags), "push")

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        raise self._error(errno.EINVAL, "a bloom filter is tested with peek(value)")

    def _u_keys(self) -> list[bytes]:
        raise self._error(errno.EOPNOTSUPP, "a bloom filter has no keys")

    def push(self, value: Any, flags: int = BPF_ANY) -> None:
        """Add ``value`` (BPF_MAP_UPDATE_ELEM with a NULL key)."""
        self.update(None, value, flags)

    def peek(self, value: Any) -> None:
        """BPF_MAP_LOOKUP_ELEM with the value as input: MapError(ENOENT) if surely absent."""
        self._check_read()
        self._check_rc(self.contains(self.encode_value(value)), "peek")

    def __contains__(self, value: Any) -> bool:
        self._check_read()
        return self.contains(self.encode_value(value)) == 0

    def __len__(self) -> int:
        raise self._error(errno.EOPNOTSUPP, "a bloom filter does not count its elements")

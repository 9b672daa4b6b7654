"""BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c) and its userspace consumer.

Place in the pipeline: created by `maps.types.create_map`; the ringbuf helpers call
``reserve``/``submit``/``discard``/``output``/``query``; users drain it with ``consume()``
(libbpf's ``ring_buffer__consume``) or by iterating over it.

Layout, as the kernel's ``struct bpf_ringbuf``: one Arena region whose page 0 is private,
page 1 holds the consumer position, page 2 the producer position, and data starts at page 3.
Each record starts with the 8-byte header ``{u32 len; u32 pg_off}``: ``len`` carries the BUSY
bit (1 << 31) until the record is submitted and the DISCARD bit (1 << 30) if it was discarded;
``pg_off`` is the header's page offset from the start of the region. Records are 8-byte
aligned, so a header never wraps; the kernel maps the data pages twice so a record that wraps
around the end is contiguous. pybpf allocates the data area twice as well: a wrapping record is
written into the second copy and its tail is copied back to the start of the ring on
submit/discard, so producers and consumers see the same bytes as with the kernel's mapping.
Space rule: a record of ``round_up(size + 8, 8)`` bytes fits while the producer stays less
than the ring size ahead of the consumer; records no bigger than that are NULL/-EAGAIN.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from typing import Any

from pybpf.errors import MapError
from pybpf.maps.base import BpfMap, MapAttrs, SpecialField
from pybpf.memory import PAGE_SIZE, Arena
from pybpf.uapi import ENOTSUPP

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
BPF_RB_NO_WAKEUP = 1 << 0
BPF_RB_FORCE_WAKEUP = 1 << 1
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3
RINGBUF_MAX_RECORD_SZ = 0xFFFFFFFF // 4
# Pages before the data: the private header page, the consumer page, the producer page.
RINGBUF_META_PAGES = 3


class RingBufMap(BpfMap):
    """A multi-producer, single-consumer byte ring shared with userspace."""

    keyless = True

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self.size = attrs.max_entries
        self.mask = self.size - 1
        region = arena.alloc(
            RINGBUF_META_PAGES * PAGE_SIZE + 2 * self.size,
            align=PAGE_SIZE,
            kind="ringbuf",
            name=attrs.name,
        )
        self._region = region
        self.consumer_addr = region.start + PAGE_SIZE
        self.producer_addr = region.start + 2 * PAGE_SIZE
        self.data = region.start + RINGBUF_META_PAGES * PAGE_SIZE
        self._cons = 0
        self._prod = 0
        self._consumer_lock = threading.Lock()
        self.wakeups = 0

    def _set_pos(self, addr: int, value: int) -> None:
        self._view[addr : addr + 8] = value.to_bytes(8, "little")

    def _u32(self, addr: int) -> int:
        return int.from_bytes(self._view[addr : addr + 4], "little")

    # ---------------------------------------------------------------- program face

    def reserve(self, size: int, flags: int = 0) -> int:
        """``bpf_ringbuf_reserve``: the vaddr of ``size`` writable bytes, or 0."""
        if flags or size > RINGBUF_MAX_RECORD_SZ or size < 0:
            return 0
        length = (size + BPF_RINGBUF_HDR_SZ + 7) & -8
        if length > self.size:
            return 0
        with self._lock:
            prod = self._prod
            new_prod = prod + length
            if new_prod - self._cons > self.mask:
                return 0
            hdr = self.data + (prod & self.mask)
            pg_off = (hdr - self._region.start) // PAGE_SIZE
            self._view[hdr : hdr + 8] = (size | BPF_RINGBUF_BUSY_BIT).to_bytes(
                4, "little"
            ) + pg_off.to_bytes(4, "little")
            self._prod = new_prod
            self._set_pos(self.producer_addr, new_prod)
        return hdr + BPF_RINGBUF_HDR_SZ

    def _commit(self, sample: int, flags: int, discard: bool) -> None:
        hdr = sample - BPF_RINGBUF_HDR_SZ
        offset = hdr - self.data
        if not 0 <= offset < self.size:
            return
        length = self._u32(hdr)
        size = length & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
        overflow = offset + BPF_RINGBUF_HDR_SZ + size - self.size
        if overflow > 0:
            mirror = self.data + self.size
            self._view[self.data : self.data + overflow] = self._view[mirror : mirror + overflow]
        new_len = length ^ BPF_RINGBUF_BUSY_BIT
        if discard:
            new_len |= BPF_RINGBUF_DISCARD_BIT
        self._view[hdr : hdr + 4] = new_len.to_bytes(4, "little")
        if flags & BPF_RB_FORCE_WAKEUP or (
            (self._cons & self.mask) == offset and not flags & BPF_RB_NO_WAKEUP
        ):
            self.wakeups += 1

    def submit(self, sample: int, flags: int = 0) -> None:
        """``bpf_ringbuf_submit``: publish the record reserved at ``sample``."""
        self._commit(sample, flags, discard=False)

    def discard(self, sample: int, flags: int = 0) -> None:
        """``bpf_ringbuf_discard``: drop the record reserved at ``sample``."""
        self._commit(sample, flags, discard=True)

    def output(self, data: bytes, flags: int = 0) -> int:
        """``bpf_ringbuf_output``: 0, ``-EINVAL`` for unknown flags, ``-EAGAIN`` when full."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -errno.EINVAL
        sample = self.reserve(len(data))
        if not sample:
            return -errno.EAGAIN
        self._view[sample : sample + len(data)] = data
        self._commit(sample, flags, discard=False)
        return 0

    def query(self, flag: int) -> int:
        """``bpf_ringbuf_query``; unknown flags give 0."""
        if flag == BPF_RB_AVAIL_DATA:
            return self._prod - self._cons
        if flag == BPF_RB_RING_SIZE:
            return self.size
        if flag == BPF_RB_CONS_POS:
            return self._cons
        if flag == BPF_RB_PROD_POS:
            return self._prod
        return 0

    # ---------------------------------------------------------------- userspace consumer

    def _read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the ring starting at data offset ``offset`` (may wrap)."""
        start = self.data + (offset & self.mask)
        first = min(size, self.data + self.size - start)
        out = bytes(self._view[start : start + first])
        if first < size:
            out += bytes(self._view[self.data : self.data + size - first])
        return out

    def records(self) -> Iterator[bytes]:
        """Consume records one at a time, oldest first; stops at a busy (unsubmitted) record."""
        while True:
            with self._consumer_lock:
                record: bytes | None = None
                while record is None:
                    cons = self._cons
                    if cons >= self._prod:
                        return
                    length = self._u32(self.data + (cons & self.mask))
                    if length & BPF_RINGBUF_BUSY_BIT:
                        return
                    size = length & ~BPF_RINGBUF_DISCARD_BIT
                    if not length & BPF_RINGBUF_DISCARD_BIT:
                        record = self._read(cons + BPF_RINGBUF_HDR_SZ, size)
                    self._cons = cons + ((size + BPF_RINGBUF_HDR_SZ + 7) & -8)
                    self._set_pos(self.consumer_addr, self._cons)
            yield record

    def consume(self) -> list[bytes]:
        """Every submitted record available now (discarded ones skipped), oldest first."""
        return list(self.records())

    def __iter__(self) -> Iterator[bytes]:
        return self.records()

    # ---------------------------------------------------------------- map syscalls

    def _unsupported(self) -> MapError:
        return self._error(ENOTSUPP, "ring buffers have no elements (use consume())")

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        raise self._unsupported()

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        raise self._unsupported()

    def _u_delete(self, key: bytes) -> None:
        raise self._unsupported()

    def _u_keys(self) -> list[bytes]:
        raise self._unsupported()

    def next_key(self, key: bytes | None) -> bytes | int:
        return -ENOTSUPP

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -ENOTSUPP

    def delete_elem(self, key: bytes) -> int:
        return -ENOTSUPP

    def encode_value(self, value: Any) -> Any:
        raise self._unsupported()

    def __len__(self) -> int:
        return self._prod - self._cons

"""The Arena: the one address space every running program, map and helper shares.

Place in the pipeline: below ``maps`` (which keep their values here), ``helpers`` and ``vm``
(whose interpreter bounds-checks accesses with :meth:`Arena.find` and whose JIT addresses the
same bytes through :attr:`Arena.base`); above ``errors`` only.

A BPF pointer is a *virtual address*: an offset into one anonymous private mapping of ``size``
bytes plus a guard tail; the host address is ``base + vaddr``. The OS backs pages only when
they are touched, so a 4 GiB Arena costs nothing until used. The first ``NULL_GUARD`` bytes are
never handed out, so NULL and small offsets from it fault as such.

Allocation is segregated-fit over coalesced free extents: every free extent sits in a bin by
the bit length of its size; a request looks for a good fit in the bins that may hold one and
otherwise takes any extent from the lowest bin whose every extent is big enough. Freed extents
merge with free neighbours at once, so freeing everything always leaves one extent again.
Extents are multiples of ``GRANULE`` bytes; a region's ``size`` is exactly what was asked for.

Freed map values must outlive every program run that may still hold a pointer to them. As in
the eBPF-for-Windows epoch API, runs enter and exit epochs around their execution, and
:meth:`Arena.defer_free` stamps the region with the current global epoch and advances it; the
region is released once the oldest epoch still open is younger than that stamp, i.e. once
every run that was in progress at the time of the deferral has finished.

One lock guards all mutations. :meth:`Arena.find` reads without it: CPython list operations
are atomic, a region is immutable and live regions never overlap, so a region found to contain
the access is the right answer (or one freed while the lookup ran, which is why memory that
programs may still see is released with ``defer_free``); only a miss (rare: it is a fault)
re-checks under the lock, in case a concurrent insertion shifted the lists between the
bisection and the indexing.
"""

from __future__ import annotations

import ctypes
import mmap
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from itertools import islice
from types import TracebackType

from pybpf.errors import ArenaError, ExhaustionError, MemoryAccessError

PAGE_SIZE = 4096
NULL_GUARD = 64 << 10
GRANULE = 8
MAX_ARENA = 1 << 32  # virtual addresses must fit the u32 packet-pointer fields of UAPI contexts

# Zeroing by madvise(MADV_DONTNEED) hands back fresh zero pages without touching memory;
# below this size slice assignment is cheaper than the system call.
_DISCARD_MIN = 64 << 10
_HOST_PAGE = mmap.PAGESIZE
# Zeros to copy from: slicing a view of them is cheaper than building bytes(n) per allocation.
_ZEROS = memoryview(bytes(max(_DISCARD_MIN, _HOST_PAGE)))
# How many extents of a bin that may or may not fit are tried before a sure fit is taken from
# a bigger bin; a full scan happens only when no bigger bin has anything.
_SCAN_LIMIT = 8
_MAP_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)


@dataclass(frozen=True, slots=True)
class Region:
    """A live allocation: ``size`` bytes at virtual address ``start``.

    ``kind`` says what it holds ("stack", "ctx", "packet", "map_value", "global", "ringbuf",
    "mem", ... free text); ``writable`` False makes :meth:`Arena.write` refuse stores.
    """

    start: int
    size: int
    kind: str
    name: str = ""
    writable: bool = True

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class ArenaStats:
    """A consistent snapshot of the Arena's bookkeeping.

    ``bytes_in_use`` counts the extents of live regions (each rounded up to ``GRANULE``), so
    ``bytes_in_use + bytes_free == capacity`` always holds. Regions waiting for a deferred
    free are still live and counted in both ``regions_live`` and ``deferred_pending``.
    """

    capacity: int
    bytes_in_use: int
    bytes_free: int
    regions_live: int
    free_extents: int
    deferred_pending: int
    epochs_active: int


def _extent(size: int) -> int:
    return (size + GRANULE - 1) & -GRANULE


class _EpochGuard:
    """What :meth:`Arena.epoch` returns: a plain class, cheaper per run than a generator."""

    __slots__ = ("_arena", "_token")

    def __init__(self, arena: Arena) -> None:
        self._arena = arena
        self._token = -1

    def __enter__(self) -> None:
        self._token = self._arena.enter_epoch()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._arena.exit_epoch(self._token)


class Arena:
    """One anonymous mapping, its allocator, its region registry and its epochs."""

    def __init__(self, size: int = 4 << 30, guard: int = 64 << 10) -> None:
        for what, value in (("size", size), ("guard", guard)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ArenaError(f"{what} must be an int, not {type(value).__name__}")
            if value < 0 or value % PAGE_SIZE:
                raise ArenaError(f"{what} {value:#x} is not a non-negative multiple of {PAGE_SIZE}")
        if not NULL_GUARD < size <= MAX_ARENA:
            raise ArenaError(
                f"size {size:#x} must exceed the null guard ({NULL_GUARD:#x}) "
                f"and be at most {MAX_ARENA:#x}"
            )
        try:
            self._mm: mmap.mmap | None = mmap.mmap(-1, size + guard, flags=_MAP_FLAGS)
        except OSError as e:
            raise ExhaustionError(f"cannot map an arena of {size + guard} bytes: {e}") from e
        self.size = size
        self.guard = guard
        self.capacity = size - NULL_GUARD
        self._view = memoryview(self._mm)
        anchor = ctypes.c_char.from_buffer(self._mm)
        self._base = ctypes.addressof(anchor)
        # The ctypes object exports the buffer; dropping it now keeps close() possible.
        del anchor
        self._lock = threading.Lock()
        self._closed = False
        self._starts: list[int] = []
        self._regions: list[Region] = []
        self._live: dict[int, Region] = {}
        self._free_at: dict[int, int] = {}
        self._free_ending: dict[int, int] = {}
        self._bins: list[dict[int, None]] = [{} for _ in range(MAX_ARENA.bit_length() + 1)]
        self._binmap = 0
        self._bytes_free = 0
        self._pending: deque[tuple[int, Region]] = deque()
        self._pending_starts: set[int] = set()
        self._epoch = 1
        self._active: dict[int, int] = {}
        self._next_token = 1
        self._add_free(NULL_GUARD, self.capacity)

    # -- raw access ---------------------------------------------------------------------------

    @property
    def base(self) -> int:
        """Host address of virtual address 0; valid until :meth:`close`."""
        self._check_open()
        return self._base

    @property
    def view(self) -> memoryview:
        """Writable byte view of the whole mapping (``size + guard`` bytes), unchecked."""
        self._check_open()
        return self._view

    # -- allocation ---------------------------------------------------------------------------

    def alloc(
        self,
        size: int,
        *,
        align: int = 8,
        kind: str = "mem",
        name: str = "",
        writable: bool = True,
    ) -> Region:
        """A new zero-filled region of exactly ``size`` bytes at a multiple of ``align``."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ArenaError(f"allocation size must be a positive int, not {size!r}")
        if (
            not isinstance(align, int)
            or isinstance(align, bool)
            or align < 1
            or align & (align - 1)
            or align > self.size
        ):
            raise ArenaError(
                f"alignment must be a power of two up to the arena size, not {align!r}"
            )
        need = _extent(size)
        align = max(align, GRANULE)
        with self._lock:
            self._check_open()
            start = self._take(need, align)
            if start is None and self._pending:
                self._reclaim_locked()
                start = self._take(need, align)
            if start is None:
                raise ExhaustionError(
                    f"arena exhausted: no free extent for {size} bytes aligned to {align} "
                    f"({self._bytes_free} bytes free in {len(self._free_at)} extents)",
                    limit=self.capacity,
                )
            self._zero(start, need)
            region = Region(start, size, kind, name, writable)
            i = bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._regions.insert(i, region)
            self._live[start] = region
        return region

    def free(self, region: Region) -> None:
        """Release ``region`` now; only safe when no running program can hold a pointer to it."""
        with self._lock:
            self._check_open()
            self._check_live(region, "free")
            if region.start in self._pending_starts:
                raise ArenaError(
                    f"free of region {region.start:#x}+{region.size}: a deferred free is pending"
                )
            self._release(region)

    def defer_free(self, region: Region) -> None:
        """Release ``region`` once every epoch entered before this call has exited.

        Until then the region stays live (programs may still read and write it). With no epoch
        open it is released at once.
        """
        with self._lock:
            self._check_open()
            self._check_live(region, "deferred free")
            if region.start in self._pending_starts:
                raise ArenaError(f"region {region.start:#x}+{region.size} deferred twice")
            self._epoch += 1
            if not self._active and not self._pending:
                # What the queue and reclaim below would do, without the round trip.
                self._release(region)
                return
            self._pending.append((self._epoch - 1, region))
            self._pending_starts.add(region.start)
            if not self._active:
                self._reclaim_locked()

    # -- lookups ------------------------------------------------------------------------------

    def find(self, vaddr: int, size: int) -> Region | None:
        """The live region containing all of ``[vaddr, vaddr + size)``, or None.

        The interpreter's bounds check: ``vaddr`` and ``size`` must be ints; ``size < 1``
        finds nothing.
        """
        try:
            r = self._regions[bisect_right(self._starts, vaddr) - 1]
        except IndexError:
            return self._find_locked(vaddr, size)
        s = r.start
        if s <= vaddr and size > 0 and vaddr + size <= s + r.size:
            return r
        return self._find_locked(vaddr, size)

    def region_at(self, vaddr: int) -> Region | None:
        """The live region containing the byte at ``vaddr``, or None."""
        return self.find(vaddr, 1)

    def _find_locked(self, vaddr: int, size: int) -> Region | None:
        with self._lock:
            self._check_open()
            i = bisect_right(self._starts, vaddr) - 1
            if i < 0 or size < 1:
                return None
            r = self._regions[i]
            return r if vaddr + size <= r.start + r.size else None

    def read(self, vaddr: int, size: int) -> bytes:
        """``size`` bytes at ``vaddr``; MemoryAccessError unless inside one live region."""
        if self.find(vaddr, size) is None:
            raise MemoryAccessError(pc=-1, address=vaddr, size=size, write=False)
        try:
            return bytes(self._view[vaddr : vaddr + size])
        except ValueError as e:
            raise ArenaError("arena closed during a read") from e

    def write(self, vaddr: int, data: bytes) -> None:
        """Store ``data`` at ``vaddr``; it must fit inside one live, writable region."""
        if not isinstance(data, bytes | bytearray):
            try:
                data = memoryview(data).tobytes()
            except TypeError as e:
                raise ArenaError(
                    f"write needs a bytes-like object, not {type(data).__name__}"
                ) from e
        size = len(data)
        r = self.find(vaddr, size)
        if r is None or not r.writable:
            raise MemoryAccessError(pc=-1, address=vaddr, size=size, write=True)
        try:
            self._view[vaddr : vaddr + size] = data
        except ValueError as e:
            raise ArenaError("arena closed during a write") from e

    def regions(self) -> Iterator[Region]:
        """The live regions (pending deferred frees included), by address."""
        with self._lock:
            self._check_open()
            return iter(list(self._regions))

    @property
    def stats(self) -> ArenaStats:
        with self._lock:
            self._check_open()
            return ArenaStats(
                capacity=self.capacity,
                bytes_in_use=self.capacity - self._bytes_free,
                bytes_free=self._bytes_free,
                regions_live=len(self._live),
                free_extents=len(self._free_at),
                deferred_pending=len(self._pending),
                epochs_active=len(self._active),
            )

    # -- epochs -------------------------------------------------------------------------------

    def enter_epoch(self) -> int:
        """Open an epoch (re-entrant: nested runs open their own); returns its token."""
        with self._lock:
            self._check_open()
            token = self._next_token
            self._next_token += 1
            self._active[token] = self._epoch
            return token

    def exit_epoch(self, token: int) -> None:
        """Close the epoch ``token`` and release what it was the last to hold back."""
        with self._lock:
            self._check_open()
            if self._active.pop(token, None) is None:
                raise ArenaError(f"exit of an epoch that is not open (token {token!r})")
            if self._pending:
                self._reclaim_locked()

    def epoch(self) -> AbstractContextManager[None]:
        """``with arena.epoch(): run()`` keeps deferred frees of the run's era alive meanwhile."""
        return _EpochGuard(self)

    def reclaim(self) -> int:
        """Release every deferred region no open epoch can still see; returns how many."""
        with self._lock:
            self._check_open()
            return self._reclaim_locked()

    def _reclaim_locked(self) -> int:
        oldest = min(self._active.values()) if self._active else self._epoch
        released = 0
        pending = self._pending
        while pending and pending[0][0] < oldest:
            region = pending.popleft()[1]
            self._pending_starts.discard(region.start)
            self._release(region)
            released += 1
        return released

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unmap the Arena; every later use raises ArenaError. Closing twice is harmless.

        Views sliced from :attr:`view` that are still alive keep the mapping: it is unmapped
        when the last of them is garbage-collected, never under their feet.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._starts = []
            self._regions = []
            self._live.clear()
            self._free_at.clear()
            self._free_ending.clear()
            self._bins = []
            self._pending.clear()
            self._pending_starts.clear()
            self._active.clear()
            with suppress(BufferError):
                self._view.release()
            mm, self._mm = self._mm, None
            if mm is not None:
                with suppress(BufferError):
                    mm.close()

    def __enter__(self) -> Arena:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._live)} regions"
        return f"<Arena size={self.size:#x} {state}>"

    # -- internals (callers hold the lock) ----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ArenaError("use of a closed arena")

    def _check_live(self, region: Region, what: str) -> None:
        live = self._live.get(region.start)
        if live is not region and live != region:
            raise ArenaError(
                f"{what} of region {region.start:#x}+{region.size} that is not live "
                "(double free or foreign region)"
            )

    def _release(self, region: Region) -> None:
        start = region.start
        i = bisect_right(self._starts, start) - 1
        del self._starts[i]
        del self._regions[i]
        del self._live[start]
        size = _extent(region.size)
        if size >= _DISCARD_MIN:
            # Give the pages back to the OS now rather than keeping freed data resident.
            self._discard(start, size)
        self._merge_free(start, size)

    def _add_free(self, start: int, size: int) -> None:
        self._free_at[start] = size
        self._free_ending[start + size] = start
        b = size.bit_length()
        self._bins[b][start] = None
        self._binmap |= 1 << b
        self._bytes_free += size

    # _merge_free and _take are the allocator's hot path (every test run allocates and frees
    # its context): they edit the extent tables inline, in the order removing and adding
    # extents one by one would, so each bin keeps the same order and allocations the same
    # addresses.

    def _merge_free(self, start: int, size: int) -> None:
        free_at, ending, bins = self._free_at, self._free_ending, self._bins
        binmap = self._binmap
        self._bytes_free += size
        end = start + size
        after = free_at.pop(end, None)
        if after is not None:
            del ending[end + after]
            b = after.bit_length()
            bin_ = bins[b]
            del bin_[end]
            if not bin_:
                binmap &= ~(1 << b)
            end += after
        before = ending.pop(start, None)
        if before is not None:
            del free_at[before]
            b = (start - before).bit_length()
            bin_ = bins[b]
            del bin_[before]
            if not bin_:
                binmap &= ~(1 << b)
            start = before
        free_at[start] = end - start
        ending[end] = start
        b = (end - start).bit_length()
        bins[b][start] = None
        self._binmap = binmap | 1 << b

    def _take(self, need: int, align: int) -> int | None:
        """Carve ``need`` bytes at a multiple of ``align`` out of a free extent."""
        slack = align - GRANULE
        low = need.bit_length()
        # Every extent in bin b has at least 2**(b-1) bytes: from bin `sure` on, any will do.
        sure = (need + slack - 1).bit_length() + 1
        # Bins low..sure-1 (sure >= low always) are scanned only when one holds anything.
        may_fit = self._binmap & ((1 << sure) - (1 << low))
        found = self._scan(low, sure, need, align, _SCAN_LIMIT) if may_fit else None
        if found is None:
            above = self._binmap >> sure
            if above:
                bin_ = self._bins[sure + (above & -above).bit_length() - 1]
                start = next(reversed(bin_))
                found = (start, self._free_at[start])
            else:
                found = self._scan(low, sure, need, align, None)
        if found is None:
            return None
        start, size = found
        at = (start + align - 1) & -align
        tail = at + need
        end = start + size
        free_at, ending, bins = self._free_at, self._free_ending, self._bins
        binmap = self._binmap
        b = size.bit_length()
        bin_ = bins[b]
        del bin_[start], free_at[start], ending[end]
        if not bin_:
            binmap &= ~(1 << b)
        # Neighbours of a free extent are never free, so the cut-offs need no merging.
        if at > start:
            free_at[start] = at - start
            ending[at] = start
            b = (at - start).bit_length()
            bins[b][start] = None
            binmap |= 1 << b
        if tail < end:
            free_at[tail] = end - tail
            ending[end] = tail
            b = (end - tail).bit_length()
            bins[b][tail] = None
            binmap |= 1 << b
        self._binmap = binmap
        self._bytes_free -= need
        return at

    def _scan(
        self, low: int, sure: int, need: int, align: int, limit: int | None
    ) -> tuple[int, int] | None:
        free_at = self._free_at
        for b in range(low, sure):
            if not self._binmap >> b & 1:
                continue
            for start in islice(reversed(self._bins[b]), limit):
                size = free_at[start]
                if ((start + align - 1) & -align) + need <= start + size:
                    return start, size
        return None

    def _zero(self, start: int, size: int) -> None:
        end = start + size
        if size < _DISCARD_MIN:
            self._view[start:end] = _ZEROS[:size]
            return
        lo, hi = self._discard(start, size)
        self._view[start:lo] = _ZEROS[: lo - start]
        self._view[hi:end] = _ZEROS[: end - hi]

    def _discard(self, start: int, size: int) -> tuple[int, int]:
        """Drop the whole pages inside the extent (they read back as zeros); returns them."""
        lo = -(-start // _HOST_PAGE) * _HOST_PAGE
        hi = (start + size) // _HOST_PAGE * _HOST_PAGE
        if hi > lo and self._mm is not None:
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        return lo, max(lo, hi)

"""The Arena: allocator, region registry, bounds-checked access, epochs, threads, lifetime."""

from __future__ import annotations

import ctypes
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.errors import ArenaError, BpfError, ExhaustionError, MemoryAccessError
from pybpf.memory import GRANULE, NULL_GUARD, PAGE_SIZE, Arena, Region

SMALL = 1 << 20


@pytest.fixture
def arena():
    with Arena(SMALL) as a:
        yield a


def assert_consistent(a: Arena) -> None:
    """Regions sorted, disjoint, inside the usable space; accounting adds up."""
    regions = list(a.regions())
    for r in regions:
        assert r.start >= NULL_GUARD and r.end <= a.size
    for left, right in pairwise(regions):
        assert left.end <= right.start
    s = a.stats
    assert s.regions_live == len(regions)
    assert s.bytes_in_use == sum(-(-r.size // GRANULE) * GRANULE for r in regions)
    assert s.bytes_in_use + s.bytes_free == s.capacity == a.size - NULL_GUARD


# -- allocation ------------------------------------------------------------------------------


@pytest.mark.parametrize("align", [1, 2, 4, 8, 16, 64, 256, PAGE_SIZE, 4 * PAGE_SIZE, 1 << 16])
def test_alloc_alignment(arena, align):
    # An odd-sized allocation first so the next start is not aligned by accident.
    arena.alloc(24)
    regions = [arena.alloc(size, align=align) for size in (1, 7, 100, 3000)]
    for r in regions:
        assert r.start % max(align, GRANULE) == 0
        assert r.start >= NULL_GUARD
    assert_consistent(arena)


def test_region_fields(arena):
    r = arena.alloc(10, kind="map_value", name="counts", writable=False)
    assert (r.size, r.kind, r.name, r.writable) == (10, "map_value", "counts", False)
    assert r.end == r.start + 10
    assert arena.alloc(1).kind == "mem"


def test_freed_space_is_reused_and_zeroed(arena):
    r = arena.alloc(64)
    arena.write(r.start, b"\xff" * 64)
    arena.free(r)
    again = arena.alloc(64)
    assert again.start == r.start
    assert arena.read(again.start, 64) == bytes(64)


def test_large_recycled_region_is_zeroed_including_unaligned_edges(arena):
    head = arena.alloc(8)
    big = arena.alloc(300_000)
    assert big.start % PAGE_SIZE and big.end % PAGE_SIZE  # partial first and last pages
    for _ in range(2):
        arena.view[big.start : big.end] = b"\xab" * big.size
        arena.free(big)
        big = arena.alloc(300_000)
        assert big.start == head.end
        assert bytes(arena.view[big.start : big.end]) == bytes(big.size)
    arena.view[big.start : big.end] = b"\xcd" * big.size
    arena.free(head)
    arena.free(big)
    whole = arena.alloc(400_000)
    assert whole.start == NULL_GUARD
    assert bytes(arena.view[whole.start : whole.end]) == bytes(whole.size)


def test_fragmentation_does_not_leak(arena):
    small = [arena.alloc(40) for _ in range(500)]
    for r in small[::2]:
        arena.free(r)
    medium = [arena.alloc(120, align=32) for _ in range(50)]
    for r in small[1::2] + medium:
        arena.free(r)
    s = arena.stats
    assert (s.regions_live, s.bytes_in_use, s.free_extents) == (0, 0, 1)
    assert arena.alloc(s.capacity).start == NULL_GUARD


def test_exhaustion():
    with Arena(SMALL) as a:
        everything = a.alloc(a.capacity)
        with pytest.raises(ExhaustionError):
            a.alloc(1)
        a.free(everything)
        chunks = []
        with pytest.raises(ExhaustionError) as info:
            while True:
                chunks.append(a.alloc(4000))
        assert "exhausted" in str(info.value)
        assert len(chunks) == a.capacity // 4000
        with pytest.raises(ExhaustionError):
            a.alloc(a.capacity + 1)
        assert_consistent(a)


def test_exhaustion_reclaims_deferred_frees_first():
    with Arena(SMALL) as a:
        token = a.enter_epoch()
        everything = a.alloc(a.capacity)
        a.defer_free(everything)
        with pytest.raises(ExhaustionError):
            a.alloc(8)  # the open epoch still holds it
        a.exit_epoch(token)
        assert a.alloc(8).start == NULL_GUARD


@pytest.mark.parametrize(
    ("size", "align"),
    [
        (0, 8),
        (-1, 8),
        (1.5, 8),
        ("8", 8),
        (True, 8),
        (8, 0),
        (8, 3),
        (8, -8),
        (8, 24),
        (8, 1 << 40),
    ],
)
def test_bad_alloc_arguments(arena, size, align):
    with pytest.raises(ArenaError):
        arena.alloc(size, align=align)


@pytest.mark.parametrize(
    ("size", "guard"),
    [
        (0, 0),
        (NULL_GUARD, 0),
        (SMALL + 1, 0),
        (SMALL, 100),
        (SMALL, -PAGE_SIZE),
        ((1 << 32) + PAGE_SIZE, 0),
        (1.0, 0),
    ],
)
def test_bad_arena_arguments(size, guard):
    with pytest.raises(ArenaError):
        Arena(size, guard)


def test_double_and_foreign_free(arena):
    r = arena.alloc(16)
    arena.free(r)
    with pytest.raises(ArenaError, match="not live"):
        arena.free(r)
    with pytest.raises(ArenaError):
        arena.free(Region(NULL_GUARD + 4096, 8, "mem"))
    live = arena.alloc(16)
    with pytest.raises(ArenaError):
        arena.free(Region(live.start, 8, "mem"))  # right start, wrong size
    assert issubclass(ArenaError, BpfError)


# -- model-based property test ---------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("alloc"),
            st.integers(1, 20_000),
            st.sampled_from([1, 8, 16, 64, PAGE_SIZE]),
        ),
        st.tuples(st.just("free"), st.integers(0, 10**6), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_random_alloc_free_against_model(seq):
    with Arena(SMALL) as a:
        model: dict[int, tuple[Region, bytes]] = {}
        for op, x, align in seq:
            if op == "alloc":
                try:
                    r = a.alloc(x, align=align)
                except ExhaustionError:
                    continue
                assert r.start % max(align, GRANULE) == 0
                assert a.read(r.start, r.size) == bytes(r.size)
                fill = bytes([len(model) % 255 + 1]) * r.size
                a.write(r.start, fill)
                model[r.start] = (r, fill)
            elif model:
                start = sorted(model)[x % len(model)]
                a.free(model.pop(start)[0])
        assert_consistent(a)
        assert sorted(model) == [r.start for r in a.regions()]
        for r, fill in model.values():
            assert a.read(r.start, r.size) == fill  # nobody else wrote into it
        for r, _ in model.values():
            a.free(r)
        assert (a.stats.free_extents, a.stats.bytes_free) == (1, a.capacity)


# -- registry and bounds ---------------------------------------------------------------------


def test_null_guard(arena):
    assert arena.region_at(0) is None
    assert arena.find(0, 8) is None
    with pytest.raises(MemoryAccessError) as info:
        arena.read(0, 8)
    assert (info.value.pc, info.value.address, info.value.size) == (-1, 0, 8)
    assert "null pointer" in str(info.value)
    with pytest.raises(MemoryAccessError):
        arena.write(16, b"x")
    assert min(arena.alloc(8).start for _ in range(10)) >= NULL_GUARD


def test_region_at_and_find_boundaries(arena):
    a = arena.alloc(32)
    b = arena.alloc(32)  # adjacent to a
    gap = arena.alloc(8)
    c = arena.alloc(100)
    arena.free(gap)
    assert a.end == b.start
    for r in (a, b, c):
        assert arena.region_at(r.start) is r
        assert arena.region_at(r.end - 1) is r
        assert arena.find(r.start, r.size) is r
        assert arena.find(r.end - 1, 1) is r
        assert arena.find(r.start, r.size + 1) is None
        assert arena.find(r.start - 1, 2) is None
    assert arena.region_at(a.end) is b
    assert arena.find(a.end - 4, 8) is None  # straddles two regions
    assert arena.region_at(b.end) is None  # the freed gap
    assert arena.region_at(c.end) is None
    assert arena.region_at(c.start - 1) is None
    assert arena.find(a.start, 0) is None
    assert arena.find(a.start, -4) is None
    assert arena.region_at(arena.size + 10) is None


def test_read_write_bounds(arena):
    r = arena.alloc(16)
    arena.write(r.start + 8, b"12345678")
    assert arena.read(r.start, 16) == bytes(8) + b"12345678"
    arena.write(r.start, memoryview(b"ab"))
    arena.write(r.start + 2, bytearray(b"cd"))
    assert arena.read(r.start, 4) == b"abcd"
    with pytest.raises(MemoryAccessError) as info:
        arena.read(r.start + 12, 8)
    assert (info.value.address, info.value.size, info.value.write) == (r.start + 12, 8, False)
    with pytest.raises(MemoryAccessError) as info:
        arena.write(r.end - 1, b"xy")
    assert info.value.write
    with pytest.raises(ArenaError):
        arena.write(r.start, 12345)


def test_read_only_region(arena):
    ro = arena.alloc(8, kind="global", name=".rodata", writable=False)
    arena.view[ro.start : ro.end] = b"rodata!!"  # the owner fills it through the raw view
    assert arena.read(ro.start, 8) == b"rodata!!"
    with pytest.raises(MemoryAccessError) as info:
        arena.write(ro.start, b"x")
    assert info.value.write and info.value.address == ro.start


def test_view_and_base_see_the_same_bytes(arena):
    r = arena.alloc(8)
    arena.write(r.start, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert ctypes.string_at(arena.base + r.start, 8) == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    ctypes.memmove(arena.base + r.start, b"JITWROTE", 8)
    assert arena.read(r.start, 8) == b"JITWROTE"
    assert len(arena.view) == arena.size + arena.guard and arena.view.format == "B"
    arena.view[arena.size + arena.guard - 1] = 7  # the guard tail is mapped


def test_full_size_arena_is_lazily_backed():
    with Arena() as a:
        assert a.size == 4 << 30 and len(a.view) == (4 << 30) + (64 << 10)
        huge = a.alloc(3 << 30, kind="ringbuf")
        top = a.alloc(a.size - huge.end - 64, align=1)
        a.write(top.end - 8, b"topbytes")
        a.write(huge.end - 8, b"endhuge!")
        assert a.read(top.end - 8, 8) == b"topbytes"
        assert a.find(huge.end - 8, 8) is huge
        a.free(huge)
        again = a.alloc(3 << 30)
        assert a.read(again.end - 8, 8) == bytes(8)


# -- epochs ----------------------------------------------------------------------------------


def test_deferred_free_waits_for_older_epochs(arena):
    older = arena.enter_epoch()
    r = arena.alloc(64, kind="map_value")
    arena.defer_free(r)
    newer = arena.enter_epoch()  # entered after the deferral: must not hold it back
    assert arena.reclaim() == 0
    assert arena.region_at(r.start) is r  # still readable by the older run
    assert arena.stats.deferred_pending == 1
    arena.write(r.start, b"still ok")
    arena.exit_epoch(older)  # reclaims opportunistically
    assert arena.region_at(r.start) is None
    assert arena.stats.deferred_pending == 0
    arena.exit_epoch(newer)
    assert_consistent(arena)


def test_deferred_free_order_and_nesting(arena):
    e1 = arena.enter_epoch()
    first = arena.alloc(8)
    arena.defer_free(first)
    e2 = arena.enter_epoch()
    second = arena.alloc(8)
    arena.defer_free(second)
    with arena.epoch():
        third = arena.alloc(8)
        arena.defer_free(third)
        arena.exit_epoch(e2)  # e1 still holds all three
        assert arena.stats.deferred_pending == 3
        arena.exit_epoch(e1)  # the `with` epoch holds only `third`
        assert arena.stats.deferred_pending == 1
        assert arena.region_at(first.start) is None and arena.region_at(second.start) is None
        assert arena.region_at(third.start) is third
    assert arena.stats.deferred_pending == 0
    assert arena.stats.epochs_active == 0


def test_deferred_free_without_open_epoch_is_immediate(arena):
    r = arena.alloc(8)
    arena.defer_free(r)
    assert arena.region_at(r.start) is None
    assert arena.stats.regions_live == 0


def test_epoch_misuse(arena):
    token = arena.enter_epoch()
    r = arena.alloc(8)
    arena.defer_free(r)
    with pytest.raises(ArenaError, match="deferred twice"):
        arena.defer_free(r)
    with pytest.raises(ArenaError, match="pending"):
        arena.free(r)
    arena.exit_epoch(token)
    with pytest.raises(ArenaError):
        arena.exit_epoch(token)
    with pytest.raises(ArenaError):
        arena.exit_epoch(12345)
    with pytest.raises(ArenaError):
        arena.defer_free(r)


def test_epoch_context_exits_on_error(arena):
    with pytest.raises(MemoryAccessError), arena.epoch():
        arena.read(0, 1)
    assert arena.stats.epochs_active == 0


# -- threads ---------------------------------------------------------------------------------


def test_threads_alloc_free_defer_consistently():
    workers, rounds = 4, 300

    def work(idx: int) -> list[Region]:
        rng = random.Random(idx)
        mine: list[Region] = []
        for i in range(rounds):
            with a.epoch():
                r = a.alloc(rng.randrange(1, 2000), align=rng.choice([8, 64, 4096]))
                assert a.read(r.start, r.size) == bytes(r.size)
                a.write(r.start, bytes([idx + 1]) * r.size)
                mine.append(r)
                for held in mine:
                    assert a.find(held.start, held.size) is held
                    assert a.read(held.start, 1) == bytes([idx + 1])
                if len(mine) > 5:
                    victim = mine.pop(rng.randrange(len(mine)))
                    if i % 2:
                        a.defer_free(victim)
                    else:
                        a.free(victim)
        return mine

    with Arena(16 << 20) as a, ThreadPoolExecutor(workers) as pool:
        kept = [f.result() for f in [pool.submit(work, i) for i in range(workers)]]
        a.reclaim()
        assert a.stats.deferred_pending == 0 and a.stats.epochs_active == 0
        assert sorted(r.start for k in kept for r in k) == [r.start for r in a.regions()]
        assert_consistent(a)
        for idx, mine in enumerate(kept):
            for r in mine:
                assert a.read(r.start, r.size) == bytes([idx + 1]) * r.size


def test_deferred_free_is_held_by_a_run_on_another_thread(arena):
    r = arena.alloc(8)
    inside, release = threading.Event(), threading.Event()
    seen: list[bytes] = []

    def program_run() -> None:
        with arena.epoch():
            inside.set()
            release.wait(10)
            seen.append(arena.read(r.start, 8))

    t = threading.Thread(target=program_run)
    t.start()
    inside.wait(10)
    arena.write(r.start, b"old data")
    arena.defer_free(r)
    assert arena.reclaim() == 0
    release.set()
    t.join()
    assert seen == [b"old data"]
    assert arena.region_at(r.start) is None


# -- lifetime --------------------------------------------------------------------------------


def test_close_and_use_after_close():
    a = Arena(SMALL)
    r = a.alloc(8)
    a.close()
    a.close()
    for use in (
        lambda: a.alloc(8),
        lambda: a.free(r),
        lambda: a.defer_free(r),
        lambda: a.find(r.start, 8),
        lambda: a.region_at(r.start),
        lambda: a.read(r.start, 8),
        lambda: a.write(r.start, b"x"),
        lambda: a.regions(),
        lambda: a.stats,
        lambda: a.view,
        lambda: a.base,
        lambda: a.enter_epoch(),
        lambda: a.reclaim(),
    ):
        with pytest.raises(ArenaError, match="closed"):
            use()
    assert "closed" in repr(a)


def test_close_with_exported_views_does_not_crash():
    a = Arena(SMALL)
    r = a.alloc(8)
    a.write(r.start, b"survives")
    window = a.view[r.start : r.end]
    words = a.view[r.start : r.end].cast("Q")
    a.close()
    # The mapping stays alive for as long as somebody still looks at it.
    assert bytes(window) == b"survives"
    assert words[0] == int.from_bytes(b"survives", "little")
    with pytest.raises(ArenaError):
        a.read(r.start, 8)
    del window, words


def test_lookups_never_miss_while_other_threads_reshape_the_registry():
    # Switch threads as often as possible so lookups interleave with list insertions.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with Arena(4 << 20) as a:
            scratch = [a.alloc(16) for _ in range(200)]
            stable = [a.alloc(32) for _ in range(50)]
            stop = threading.Event()

            def reshape() -> None:
                rng = random.Random(1)
                while not stop.is_set():
                    for i in rng.sample(range(len(scratch)), 20):
                        a.free(scratch[i])
                        scratch[i] = a.alloc(rng.choice([16, 24, 40]))

            def look() -> int:
                misses = 0
                for _ in range(300):
                    for r in stable:
                        misses += a.find(r.start + 8, 8) is not r
                return misses

            with ThreadPoolExecutor(3) as pool:
                writer = pool.submit(reshape)
                readers = [pool.submit(look) for _ in range(2)]
                misses = [f.result() for f in readers]
                stop.set()
                writer.result()
            assert misses == [0, 0]
            assert_consistent(a)
    finally:
        sys.setswitchinterval(old)

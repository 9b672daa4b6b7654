"""Fuzz: seeded mutations of the loader fixtures raise nothing but BpfError and never hang.

Each case takes a fixture, damages it in one targeted way (truncation, byte flips in the ELF
header, section headers, symbols, relocations, BTF, .BTF.ext or code, out-of-range values
in header fields) and loads it; success or a BpfError subclass are both fine.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pybpf.errors import BpfError
from pybpf.loader import load_spec
from pybpf.loader.elf import SHT_REL, SHT_SYMTAB, read_elf

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("loader_*.o"))
CASES = 300
SEED = 20240917
PER_CASE_SECONDS = 5


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def fire(signum, frame):
        raise Hang(f"load did not finish in {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _regions(data: bytes) -> dict[str, list[tuple[int, int]]]:
    elf = read_elf(data)
    shoff = int.from_bytes(data[40:48], "little")
    regions: dict[str, list[tuple[int, int]]] = {
        "elf_header": [(0, 64)],
        "section_headers": [(shoff, shoff + 64 * len(elf.sections))],
    }
    for sec in elf.sections[1:]:
        if not sec.size or not sec.data:
            continue
        span = (sec.offset, sec.offset + sec.size)
        if sec.type == SHT_REL:
            regions.setdefault("relocations", []).append(span)
        elif sec.type == SHT_SYMTAB:
            regions.setdefault("symbols", []).append(span)
        elif sec.name == ".BTF":
            regions.setdefault("btf", []).append(span)
        elif sec.name == ".BTF.ext":
            regions.setdefault("btf_ext", []).append(span)
        elif sec.executable:
            regions.setdefault("code", []).append(span)
        elif sec.name in (".maps", "maps", ".struct_ops", ".struct_ops.link"):
            regions.setdefault("defs", []).append(span)
    return regions


def _flip(rng: random.Random, data: bytearray, span: tuple[int, int]) -> None:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(span[0], span[1])
        data[at] ^= 1 << rng.randrange(8)


def _poke(rng: random.Random, data: bytearray, span: tuple[int, int]) -> None:
    """Overwrite an aligned 4- or 8-byte field with an out-of-range value."""
    width = rng.choice((4, 8))
    start = span[0] + rng.randrange(max((span[1] - span[0]) // width, 1)) * width
    value = rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFF, 1 << 40, rng.getrandbits(32)))
    data[start : start + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


def mutate(rng: random.Random, original: bytes) -> tuple[str, bytes]:
    regions = _regions(original)
    data = bytearray(original)
    how = rng.choice(["truncate", "flip", "flip", "flip", "poke", "poke"])
    if how == "truncate":
        return how, bytes(data[: rng.randrange(len(data))])
    where = rng.choice(sorted(regions))
    span = rng.choice(regions[where])
    (_flip if how == "flip" else _poke)(rng, data, span)
    return f"{how} {where}", bytes(data)


def _case_ids() -> list[int]:
    return list(range(CASES))


@pytest.fixture(scope="module")
def originals() -> list[bytes]:
    if not FIXTURES:
        pytest.skip("no loader fixtures")
    return [p.read_bytes() for p in FIXTURES]


def test_fuzz_only_bpf_errors(originals: list[bytes]) -> None:
    rng = random.Random(SEED)
    kinds: dict[str, int] = {}
    started = time.perf_counter()
    for case in _case_ids():
        index = rng.randrange(len(originals))
        how, blob = mutate(rng, originals[index])
        # shown by pytest when a case fails: any exception but BpfError propagates
        print(f"case {case}: {how} of {FIXTURES[index].name}")
        try:
            with time_limit(PER_CASE_SECONDS):
                load_spec(blob, name="fuzz")
            outcome = "loaded"
        except BpfError as e:
            outcome = type(e).__name__
        kinds[outcome] = kinds.get(outcome, 0) + 1
    print(kinds)
    assert sum(kinds.values()) == CASES
    assert len(kinds) > 2, kinds  # the mutations reach several kinds of failure
    assert time.perf_counter() - started < 60

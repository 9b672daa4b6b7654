"""Fuzz: seeded mutations of the loader fixtures raise nothing but BpfError and never hang.

Each case takes a fixture, damages it in one targeted way (truncation, byte flips in the ELF
header, section headers, symbols, relocations, BTF, .BTF.ext or code, out-of-range values
in header fields) and loads it; success or a BpfError subclass are both fine.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from elf_fuzz import run_fuzz

from pybpf.loader.elf import SHT_REL, SHT_SYMTAB, read_elf

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("loader_*.o"))
CASES = 300
SEED = 20240917
PER_CASE_SECONDS = 5


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


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    assert FIXTURES, "the committed loader fixtures are missing"
    return {p.name: p.read_bytes() for p in FIXTURES}


def test_fuzz_only_bpf_errors(originals: dict[str, bytes]) -> None:
    started = time.perf_counter()
    kinds = run_fuzz(originals, mutate, cases=CASES, seed=SEED, case_seconds=PER_CASE_SECONDS)
    print(kinds)
    assert sum(kinds.values()) == CASES
    assert len(kinds) > 2, kinds  # the mutations reach several kinds of failure
    assert time.perf_counter() - started < 60

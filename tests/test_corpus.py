"""The loader against real libbpf on objects written the way BPF projects write them.

`tests/corpus/*.c` are programs in the styles found in the wild (libbpf-bootstrap, kernel
selftests, Cilium/Katran-like packet code); `tests/corpus/expected/*.json` is what libbpf
itself reported for each committed object (recorded by `tests/corpus/record_libbpf.py`: the
open-time view, and instruction counts after libbpf appended subprograms). Each test here
loads the object with `load_spec` and compares every recorded field; the last ones check that
`pybpf inspect --json` agrees with the Python API. Regression tests for discrepancies the
corpus found follow at the end.
"""

from __future__ import annotations

import json
import random
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from elf_fuzz import run_fuzz

from pybpf.btf import Kind
from pybpf.cli import main as cli_main
from pybpf.loader import MapSpec, ObjectSpec, ProgramSpec, load_spec, object_name
from pybpf.loader.elf import SHT_REL, SHT_SYMTAB, read_elf
from pybpf.uapi import BpfMapType, MapFlag, ProgFlag

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = sorted((CORPUS / "expected").glob("*.json"))
STRUCT_OPS = BpfMapType.STRUCT_OPS
SECTION_FLAGS = ProgFlag.BPF_F_SLEEPABLE | ProgFlag.BPF_F_XDP_HAS_FRAGS
MAP_SCALARS = ("key_size", "value_size", "max_entries", "map_flags", "numa_node", "map_extra")


def _expected(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture(scope="module", params=EXPECTED, ids=lambda p: p.stem)
def case(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ObjectSpec]:
    expected = _expected(request.param)
    return expected, load_spec(CORPUS / expected["object"])


def test_corpus_is_there() -> None:
    assert len(EXPECTED) >= 10
    for path in EXPECTED:
        assert (CORPUS / path.stem).with_suffix(".o").exists()
        assert (CORPUS / path.stem).with_suffix(".c").exists()


def _own_length(p: ProgramSpec) -> int:
    """The program's own code: libbpf's open-time count, before subprograms are appended."""
    return p.subprograms[0].start if p.subprograms else p.slot_count


def _program_view(p: ProgramSpec) -> dict[str, Any]:
    # libbpf adds the flags a SEC() implies (sleepable, XDP frags) only to the load
    # attributes, so bpf_program__flags shows just the ones asked for explicitly.
    return {
        "name": p.name,
        "section": p.section,
        "type": int(p.prog_type),
        "expected_attach_type": int(p.expected_attach_type or 0),
        "autoload": p.autoload,
        "flags": int(p.prog_flags & ~SECTION_FLAGS),
        "insn_cnt": _own_length(p),
    }


def test_object(case) -> None:
    expected, spec = case
    opened = expected["open"]
    assert spec.name == opened["object_name"]
    # Without a "version" section libbpf reports the running kernel's version; pybpf, which
    # has no running kernel, reports 0.
    from_object = opened["kversion"] != opened["running_kernel_version"]
    assert spec.version == (opened["kversion"] if from_object else 0)


def test_sleepable_flag(case) -> None:
    _, spec = case
    for p in spec.programs.values():
        assert bool(p.prog_flags & ProgFlag.BPF_F_SLEEPABLE) == p.sleepable


def test_programs(case) -> None:
    expected, spec = case
    keys = ("name", "section", "type", "expected_attach_type", "autoload", "flags", "insn_cnt")
    want = [{k: p[k] for k in keys} for p in expected["open"]["programs"]]
    assert [_program_view(p) for p in spec.programs.values()] == want


def test_instruction_counts_after_appending_subprograms(case) -> None:
    expected, spec = case
    counts = expected["prepared"].get("insn_cnt")
    if counts is None:
        pytest.skip(f"not recorded: {expected['prepared'].get('error')}")
    assert {n: spec.programs[n].slot_count for n in counts} == counts


def _map_view(m: MapSpec, *, inner: bool = False) -> dict[str, Any]:
    out = {"name": m.name, "type": int(m.type), **{k: getattr(m, k) for k in MAP_SCALARS}}
    out["btf_key_type_id"] = m.key_type_id
    out["btf_value_type_id"] = m.value_type_id
    if inner:
        return out
    out["internal"] = m.internal is not None
    out["autocreate"] = m.autocreate
    out["pinned_by_name"] = m.pinning == 1
    out["inner"] = _map_view(m.inner, inner=True) if m.inner is not None else None
    out["initial_value"] = None
    if m.internal is not None:
        out["initial_value"] = (m.data if m.data is not None else bytes(m.value_size)).hex()
    return out


def _libbpf_map_view(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m[k] for k in ("name", "type", *MAP_SCALARS, "btf_key_type_id")}
    out["btf_value_type_id"] = m["btf_value_type_id"]
    if "internal" not in m:
        return out
    out["internal"] = m["internal"]
    out["autocreate"] = m["autocreate"]
    # libbpf's default pin root; pybpf keeps the request, not a path
    out["pinned_by_name"] = m["pin_path"] == f"/sys/fs/bpf/{m['name']}"
    assert m["pin_path"] in (None, f"/sys/fs/bpf/{m['name']}")
    out["inner"] = _libbpf_map_view(m["inner"]) if m["inner"] is not None else None
    out["initial_value"] = m["initial_value"]
    return out


def test_maps(case) -> None:
    expected, spec = case
    want = [_libbpf_map_view(m) for m in expected["open"]["maps"] if m["type"] != STRUCT_OPS]
    assert [_map_view(m) for m in spec.maps.values()] == want


def _function_pointer_offsets(spec: ObjectSpec, type_id: int) -> dict[int, str]:
    btf = spec.btf
    out = {}
    for member in btf[type_id].members:
        t = btf.resolve(member.type_id)
        if t.kind is Kind.PTR and btf.resolve(t.type_id).kind is Kind.FUNC_PROTO:
            out[member.bit_offset // 8] = member.name
    return out


def test_struct_ops(case) -> None:
    """libbpf makes each struct_ops variable a STRUCT_OPS map; pybpf keeps them apart."""
    expected, spec = case
    want = [m for m in expected["open"]["maps"] if m["type"] == STRUCT_OPS]
    assert [s.name for s in spec.struct_ops.values()] == [m["name"] for m in want]
    for m in want:
        ops = spec.struct_ops[m["name"]]
        flags = MapFlag.BPF_F_LINK if ops.link else MapFlag(0)
        got = (4, ops.size, 1, int(flags), ops.type_id, ops.autocreate)
        assert got == (
            m["key_size"],
            m["value_size"],
            m["max_entries"],
            m["map_flags"],
            m["btf_value_type_id"],
            m["autocreate"],
        )
        slots = _function_pointer_offsets(spec, ops.type_id)
        members = {slots[int(off)]: prog for off, prog in m["struct_ops_members"].items()}
        assert ops.members == members
        data = bytearray(ops.data)
        for off in slots:
            data[off : off + 8] = bytes(8)
        assert data.hex() == m["initial_value"]


def _inspect_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli_main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_json_agrees_with_the_api(case, capsys) -> None:
    expected, spec = case
    shown = _inspect_json(CORPUS / expected["object"], capsys)
    assert shown["name"] == spec.name and shown["license"] == spec.license
    assert [
        (p["name"], p["section"], p["type"], p["insns"], p["autoload"]) for p in shown["programs"]
    ] == [(p.name, p.section, p.type, p.slot_count, p.autoload) for p in spec.programs.values()]
    assert [
        (m["name"], m["type"], m["key_size"], m["value_size"], m["max_entries"])
        for m in shown["maps"]
    ] == [
        (m.name, m.type.short, m.key_size, m.value_size, m.max_entries) for m in spec.maps.values()
    ]
    assert [s["name"] for s in shown["struct_ops"]] == list(spec.struct_ops)


# Regressions found by the corpus


def test_inspect_names_internal_maps_as_libbpf(capsys) -> None:
    """`pybpf inspect` used the file name ("globals.o") as the object name, so internal maps
    came out as "globals..data"; libbpf cuts the base name at its first dot."""
    expected = _expected(CORPUS / "expected" / "globals.json")
    shown = _inspect_json(CORPUS / "globals.o", capsys)
    assert shown["name"] == "globals"
    assert [m["name"] for m in shown["maps"]] == [m["name"] for m in expected["open"]["maps"]]
    assert object_name("dir.x/minimal.bpf.o") == "minimal"
    assert object_name("a_rather_long_object_name.o") == "a_rather_long_o"


def test_struct_ops_in_section_order() -> None:
    """libbpf creates struct_ops maps section by section in ELF order; the loader used to
    take .struct_ops before .struct_ops.link whatever the file said."""
    spec = load_spec(CORPUS / "struct_ops.o")
    assert list(spec.struct_ops) == ["bpf_reno", "bpf_reno_legacy"]
    assert [s.link for s in spec.struct_ops.values()] == [True, False]


# Fuzz: structure-aware mutations of the corpus objects (a short seeded run; the same
# mutator ran a 2,000-case campaign when the corpus was added).

FUZZ_CASES = 100
FUZZ_SEED = 0xC0DE
FUZZ_CASE_SECONDS = 5
_EDGES = (0, 1, 7, 8, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def _fields(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """(offset, width) of the fields worth damaging, by kind."""
    elf = read_elf(data)
    shoff = struct.unpack_from("<Q", data, 40)[0]
    out: dict[str, list[tuple[int, int]]] = {
        "ehdr": [(o, w) for o, w in ((24, 8), (32, 8), (40, 8), (58, 2), (60, 2), (62, 2))],
        "shdr": [],
    }
    # sh_name, type, flags, addr, offset, size, link, info, addralign, entsize
    layout = ((0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8), (56, 8))
    for index, sec in enumerate(elf.sections[1:], start=1):
        base = shoff + 64 * index
        out["shdr"] += [(base + o, w) for o, w in layout]
        if not sec.size or sec.offset + sec.size > len(data):
            continue
        if sec.type == SHT_SYMTAB:
            # st_name, st_info/other, st_shndx, st_value, st_size
            for at in range(sec.offset + 24, sec.offset + sec.size, 24):
                out.setdefault("symbols", []).extend(
                    [(at, 4), (at + 4, 1), (at + 6, 2), (at + 8, 8), (at + 16, 8)]
                )
        elif sec.type == SHT_REL:
            for at in range(sec.offset, sec.offset + sec.size, 16):
                out.setdefault("relocations", []).extend([(at, 8), (at + 8, 4), (at + 12, 4)])
        else:
            kind = {".BTF": "btf", ".BTF.ext": "btf_ext"}.get(sec.name)
            if kind is None:
                kind = "code" if sec.executable else "data"
            step = 8 if kind == "code" else 4
            out.setdefault(kind, []).extend(
                (at, 4) for at in range(sec.offset, sec.offset + sec.size - 3, step)
            )
    return out


def mutate(rng: random.Random, original: bytes) -> tuple[str, bytes]:
    data = bytearray(original)
    how = rng.choice(("truncate", "field", "field", "field", "bits", "swap"))
    if how == "truncate":
        return how, bytes(data[: rng.randrange(len(data))])
    fields = _fields(original)
    kind = rng.choice(sorted(fields))
    count = rng.randint(1, 3)
    for _ in range(count):
        at, width = rng.choice(fields[kind])
        if how == "bits":
            data[at + rng.randrange(width)] ^= 1 << rng.randrange(8)
        elif how == "swap":
            other, w2 = rng.choice(fields[kind])
            n = min(width, w2)
            data[at : at + n], data[other : other + n] = data[other : other + n], data[at : at + n]
        else:
            old = int.from_bytes(data[at : at + width], "little")
            value = rng.choice((*_EDGES, old + 1, old - 1, old * 2, rng.getrandbits(8 * width)))
            data[at : at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return f"{how} {kind} x{count}", bytes(data)


def test_fuzz_corpus_mutations_raise_only_bpf_errors() -> None:
    started = time.perf_counter()
    originals = {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.o"))}
    outcomes = run_fuzz(
        originals, mutate, cases=FUZZ_CASES, seed=FUZZ_SEED, case_seconds=FUZZ_CASE_SECONDS
    )
    assert sum(outcomes.values()) == FUZZ_CASES
    assert len(outcomes) > 2, outcomes
    assert time.perf_counter() - started < 30

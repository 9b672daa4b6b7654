"""`.BTF` parsing and lookups against fixture objects; raw dumps against bpftool's output."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from btf_support import FIXTURES, btf_bytes, read_sections, symbols

from pybpf.btf import Btf, IntEncoding, Kind, Linkage, parse_btf
from pybpf.btf.dump import dump_raw
from pybpf.errors import BtfError

GOLDEN = ["btf_kinds", "btf_core", "btf_core_target"]


@pytest.fixture(scope="module")
def kinds() -> Btf:
    return parse_btf(btf_bytes("btf_kinds.o"))


@pytest.mark.parametrize("name", GOLDEN)
def test_raw_dump_matches_bpftool_golden(name: str) -> None:
    # The golden files were produced by `bpftool btf dump file X.o` (bpftool v7.1.0, libbpf 1.1).
    expected = (FIXTURES / f"{name}.bpftool-raw.txt").read_text()
    assert dump_raw(parse_btf(btf_bytes(f"{name}.o"))) == expected


def _objects_with_btf() -> list[str]:
    return sorted(
        p.name for p in FIXTURES.glob("*.o") if ".BTF" in read_sections(FIXTURES / p.name)
    )


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
@pytest.mark.parametrize("name", _objects_with_btf())
def test_raw_dump_matches_live_bpftool(name: str) -> None:
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(FIXTURES / name)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert dump_raw(parse_btf(btf_bytes(name))) == out


def test_every_kind_present(kinds: Btf) -> None:
    assert {t.kind for t in kinds.types} == set(Kind)


def test_ints_and_encodings(kinds: Btf) -> None:
    i = kinds.find("int", Kind.INT)
    assert i is not None
    assert (i.size, i.int_bits, i.int_offset, i.int_encoding) == (4, 32, 0, IntEncoding.SIGNED)
    b = kinds.find("_Bool")
    assert b is not None and b.int_encoding == IntEncoding.BOOL
    u = kinds.find("unsigned long long")
    assert u is not None and u.int_encoding == IntEncoding.NONE and not u.is_signed


def test_struct_members_and_bitfields(kinds: Btf) -> None:
    flags = kinds.find("flags", Kind.STRUCT)
    assert flags is not None and flags.kflag and flags.size == 4
    layout = [(m.name, m.bit_offset, m.bitfield_size) for m in flags.members]
    assert layout == [("a", 0, 3), ("b", 3, 5), ("c", 8, 7), ("d", 16, 0), ("e", 24, 1)]
    record = kinds.find("record", Kind.STRUCT)
    assert record is not None
    names = [m.name for m in record.members]
    assert names[:4] == ["count", "limit", "color", "big"]
    point = next(m for m in record.members if m.name == "point")
    assert kinds[point.type_id].kind is Kind.STRUCT and kinds[point.type_id].name == ""


def test_enums_with_signedness(kinds: Btf) -> None:
    color = kinds.find("color")
    assert color is not None and color.kind is Kind.ENUM and color.kflag
    assert [(v.name, v.value) for v in color.values] == [("RED", 0), ("GREEN", 5), ("BLUE", -3)]
    big = kinds.find("big")
    assert big is not None and big.kind is Kind.ENUM64 and big.size == 8
    assert [(v.name, v.value) for v in big.values] == [("SMALL", 1), ("HUGE", 0x123456789A)]


def test_modifiers_typedefs_and_resolve(kinds: Btf) -> None:
    cv = kinds.find("cv_counter_t", Kind.TYPEDEF)
    assert cv is not None
    assert kinds.resolve(cv.id).name == "unsigned int"
    assert kinds.type_name(kinds[cv.type_id].id) == "const volatile counter_t"
    assert kinds.size_of(cv.id) == 4
    tag = kinds.find("user", Kind.TYPE_TAG)
    assert tag is not None and kinds.resolve(tag.id).name == "int"


def test_type_names(kinds: Btf) -> None:
    record = kinds.find("record", Kind.STRUCT)
    assert record is not None
    by_member = {m.name: kinds.type_name(m.type_id) for m in record.members}
    assert by_member["matrix"] == "long long[2][3]"
    assert by_member["name"] == "char[8]"
    assert by_member["op"] == "binop_t"
    binop = kinds.find("binop_t", Kind.TYPEDEF)
    assert binop is not None and kinds.type_name(binop.type_id) == "int (*)(int, int)"
    assert by_member["opq"] == "struct opaque *"
    assert by_member["uopq"] == "union uopaque *"
    assert by_member["rp"] == "char *restrict"
    combine = kinds.find("combine", Kind.FUNC)
    assert combine is not None and kinds.type_name(combine.id) == "int combine(int x, int y)"


def test_sizes(kinds: Btf) -> None:
    record = kinds.find("record", Kind.STRUCT)
    assert record is not None
    sizes = {m.name: kinds.size_of(m.type_id) for m in record.members}
    assert sizes["matrix"] == 48 and sizes["name"] == 8 and sizes["op"] == 8
    assert sizes["ratio"] == 8 and sizes["big"] == 8 and sizes["num"] == 4
    assert kinds.size_of(record.id) == record.size == 152
    fwd = kinds.find("opaque", Kind.FWD)
    assert fwd is not None
    with pytest.raises(BtfError, match="no size"):
        kinds.size_of(fwd.id)
    with pytest.raises(BtfError, match="unknown type id"):
        kinds[10_000]


def test_funcs_decl_tags_and_linkage(kinds: Btf) -> None:
    combine = kinds.find("combine", Kind.FUNC)
    add = kinds.find("add", Kind.FUNC)
    assert combine is not None and add is not None
    assert combine.linkage == Linkage.GLOBAL and add.linkage == Linkage.STATIC
    tags = {(t.name, t.component_idx) for t in kinds.types if t.kind is Kind.DECL_TAG}
    assert tags == {("record", -1), ("field_tag", 11), ("arg_tag", 0), ("helper_tag", -1)}
    proto = kinds[combine.type_id]
    assert [p.name for p in proto.params] == ["x", "y"]


def test_find_all_and_datasecs(kinds: Btf) -> None:
    assert [t.kind for t in kinds.find_all("record")] == [Kind.STRUCT, Kind.DECL_TAG]
    assert kinds.find("record", Kind.UNION) is None
    data = kinds.datasec(".data")
    assert data is not None and data.size == 0
    assert kinds.datasec(".nope") is None


def test_fixup_datasec_from_symbols() -> None:
    btf = parse_btf(btf_bytes("btf_kinds.o"))
    sections = read_sections(FIXTURES / "btf_kinds.o")
    syms = symbols(FIXTURES / "btf_kinds.o")
    for sec in (".data", ".bss", ".rodata"):
        index = sections[sec].index
        offsets = {name: value for name, (shndx, value) in syms.items() if shndx == index}
        btf.fixup_datasec(sec, len(sections[sec].data), offsets)
    data = btf.datasec(".data")
    assert data is not None and data.size == len(sections[".data"].data)
    layout = {btf[v.type_id].name: (v.offset, v.size) for v in data.vars}
    assert layout["data_counter"] == (syms["data_counter"][1], 4)
    assert layout["global_rec"] == (syms["global_rec"][1], 152)
    assert [v.offset for v in data.vars] == sorted(v.offset for v in data.vars)
    with pytest.raises(BtfError, match="no symbol for global variable"):
        btf.fixup_datasec(".bss", 16, {})
    with pytest.raises(BtfError, match="overruns"):
        btf.fixup_datasec(".rodata", 2, {"ro_limit": 0})

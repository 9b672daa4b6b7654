"""Loader tests: every fixture through `load_spec`, checked against what clang/libbpf produce."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pybpf.btf import LineInfo
from pybpf.errors import BtfError, ElfFormatError, LoadError, RelocationError
from pybpf.isa import with_pcs
from pybpf.isa.opcodes import (
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
)
from pybpf.loader import RelocKind, classify_section, load_spec
from pybpf.loader.elf import read_elf
from pybpf.loader.maps import adjust_ringbuf_size, internal_map_name
from pybpf.loader.sections import SECTION_DEFS
from pybpf.loader.summary import format_summary, summarize
from pybpf.uapi import BpfAttachType, BpfMapType, BpfProgType, MapFlag

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"


def fx(name: str) -> Path:
    return FIXTURES / f"{name}.o"


def insns_at(prog):
    return dict(with_pcs(prog.insns))


def test_section_table_is_libbpfs():
    assert len(SECTION_DEFS) == 116
    assert len({d.pattern for d in SECTION_DEFS}) == 116


@pytest.mark.parametrize(
    ("name", "ptype", "attach", "target", "autoload", "sleepable"),
    [
        ("xdp", BpfProgType.XDP, BpfAttachType.XDP, None, True, False),
        ("?xdp", BpfProgType.XDP, BpfAttachType.XDP, None, False, False),
        ("xdp.frags", BpfProgType.XDP, BpfAttachType.XDP, None, True, False),
        ("tc/ingress", BpfProgType.SCHED_CLS, BpfAttachType.TCX_INGRESS, None, True, False),
        ("tcx/egress", BpfProgType.SCHED_CLS, BpfAttachType.TCX_EGRESS, None, True, False),
        ("classifier", BpfProgType.SCHED_CLS, None, None, True, False),
        ("kprobe/do_unlinkat", BpfProgType.KPROBE, None, "do_unlinkat", True, False),
        ("kprobe", BpfProgType.KPROBE, None, None, True, False),
        ("tp/sched/sched_switch", BpfProgType.TRACEPOINT, None, "sched/sched_switch", True, False),
        ("fentry.s/f", BpfProgType.TRACING, BpfAttachType.TRACE_FENTRY, "f", True, True),
        ("struct_ops.s/x", BpfProgType.STRUCT_OPS, None, "x", True, True),
        ("syscall", BpfProgType.SYSCALL, None, None, True, True),
        ("cgroup/connect4", BpfProgType.CGROUP_SOCK_ADDR, BpfAttachType.CGROUP_INET4_CONNECT,
         None, True, False),
        ("sk_skb/stream_parser", BpfProgType.SK_SKB, BpfAttachType.SK_SKB_STREAM_PARSER, None,
         True, False),
        ("netfilter", BpfProgType.NETFILTER, BpfAttachType.NETFILTER, None, True, False),
    ],
)  # fmt: skip
def test_classify_section(name, ptype, attach, target, autoload, sleepable):
    info = classify_section(name)
    assert info is not None
    assert (info.prog_type, info.expected_attach_type, info.attach_to) == (ptype, attach, target)
    assert (info.autoload, info.sleepable) == (autoload, sleepable)


@pytest.mark.parametrize("name", ["kprobefoo", "xdp/foo", "tc/bogus", "unknown", "sk_msg/x"])
def test_classify_unknown(name):
    assert classify_section(name) is None


def test_ringbuf_and_internal_names():
    assert [adjust_ringbuf_size(n) for n in (0, 1, 4096, 5000, 8192, 12288)] == [
        0, 4096, 4096, 8192, 8192, 16384,
    ]  # fmt: skip
    assert internal_map_name("my_object_name", ".rodata") == "my_objec.rodata"
    assert internal_map_name("my_object_name", ".bss") == "my_objec.bss"
    assert internal_map_name("my_object_name", ".kconfig") == "my_obje.kconfig"
    assert internal_map_name("my_object_name", ".rodata.abracadabra") == ".rodata.abracad"


def test_every_map_type():
    spec = load_spec(fx("loader_maps"))
    got = {m.name: (m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
           for m in spec.maps.values()}  # fmt: skip
    assert got == {
        "counts": (BpfMapType.ARRAY, 4, 8, 256, 0),
        "percpu_counts": (BpfMapType.PERCPU_ARRAY, 4, 8, 4, 0),
        "by_len": (BpfMapType.HASH, 4, 8, 1024, MapFlag.BPF_F_NO_PREALLOC),
        "percpu_by_byte": (BpfMapType.PERCPU_HASH, 1, 8, 64, 0),
        "lru": (BpfMapType.LRU_HASH, 4, 8, 128, 0),
        "lru_percpu": (BpfMapType.LRU_PERCPU_HASH, 4, 8, 128, MapFlag.BPF_F_NO_COMMON_LRU),
        "routes": (BpfMapType.LPM_TRIE, 8, 4, 16, MapFlag.BPF_F_NO_PREALLOC),
        "lengths_queue": (BpfMapType.QUEUE, 0, 4, 32, 0),
        "lengths_stack": (BpfMapType.STACK, 0, 4, 32, 0),
        "events": (BpfMapType.RINGBUF, 0, 0, 8192, 0),
        "perf_events": (BpfMapType.PERF_EVENT_ARRAY, 4, 4, 0, 0),
        "seen": (BpfMapType.BLOOM_FILTER, 0, 4, 100, 0),
    }
    assert spec.maps["seen"].map_extra == 3
    assert spec.btf.type_name(spec.maps["percpu_counts"].value_type_id) == "struct pair"
    assert spec.btf.type_name(spec.maps["routes"].key_type_id) == "struct lpm_key"
    prog = spec.programs["xdp_count"]
    assert prog.prog_type is BpfProgType.XDP and prog.expected_attach_type is BpfAttachType.XDP
    at = insns_at(prog)
    for r in prog.relocations:
        assert r.kind is RelocKind.MAP_FD
        assert at[r.pc].src_reg == BPF_PSEUDO_MAP_FD and at[r.pc].imm == 0
    assert set(prog.maps_used) == set(spec.maps) - {"perf_events"}


def test_global_data_and_kconfig():
    spec = load_spec(fx("loader_globals"))
    assert spec.license == "Dual BSD/GPL" and spec.gpl_compatible
    assert spec.version == 0x060100
    data, rodata, custom, bss, kconfig = spec.maps.values()
    assert (data.name, data.internal, data.data) == (
        "loader_g.data",
        "data",
        (7).to_bytes(4, "little"),
    )
    assert (rodata.name, rodata.internal) == ("loader_g.rodata", "rodata")
    assert rodata.map_flags & MapFlag.BPF_F_RDONLY_PROG
    assert rodata.data[:4] == (3).to_bytes(4, "little") and rodata.data[4:9] == b"hello"
    assert (custom.name, custom.data) == (".data.custom", (0x1234).to_bytes(4, "little"))
    assert (bss.name, bss.value_size, bss.data) == ("loader_g.bss", 24, None)
    assert (kconfig.name, kconfig.internal, kconfig.value_size) == ("loader_.kconfig", "kconfig", 8)
    assert all(m.type is BpfMapType.ARRAY and m.max_entries == 1 for m in spec.maps.values())
    assert spec.btf.type_name(data.value_type_id) == ".data"
    prog = spec.programs["tc_globals"]
    at = insns_at(prog)
    values = {(r.target, r.offset) for r in prog.relocations}
    assert values == {
        ("loader_g.bss", 0),
        ("loader_g.bss", 8),
        ("loader_g.data", 0),
        ("loader_g.rodata", 0),
        (".data.custom", 0),
    }
    for r in prog.relocations:
        assert r.kind is RelocKind.MAP_VALUE
        assert at[r.pc].src_reg == BPF_PSEUDO_MAP_VALUE and at[r.pc].next_imm == r.offset
    ext = spec.externs
    assert (ext["LINUX_KERNEL_VERSION"].offset, ext["CONFIG_HZ"].offset) == (4, 0)
    assert ext["CONFIG_HZ"].weak and not ext["LINUX_KERNEL_VERSION"].weak
    kc = [r for r in spec.programs["socket_version"].relocations if r.kind is RelocKind.KCONFIG]
    assert {(r.target, r.offset, r.weak) for r in kc} == {
        ("CONFIG_HZ", 0, True), ("LINUX_KERNEL_VERSION", 4, False),
    }  # fmt: skip


def test_subprograms_callbacks_tail_calls_map_in_map():
    spec = load_spec(fx("loader_calls"))
    prog = spec.programs["xdp_calls"]
    assert [(s.name, s.start) for s in prog.subprograms] == [
        ("add_index", 44), ("add_value", 51), ("sum_to", 57), ("triple", 87),
    ]  # fmt: skip
    assert prog.slot_count == 90
    at = insns_at(prog)
    starts = {s.name: s.start for s in prog.subprograms}
    for r in prog.relocations:
        insn = at[r.pc]
        if r.kind is RelocKind.SUBPROG:
            assert insn.src_reg == BPF_PSEUDO_CALL and r.pc + insn.imm + 1 == starts[r.target]
        elif r.kind is RelocKind.FUNC:
            assert insn.src_reg == BPF_PSEUDO_FUNC and r.pc + insn.imm + 1 == starts[r.target]
    # the static call inside sum_to (no ELF relocation) also lands on triple
    assert any(r.pc >= 57 and r.target == "triple" for r in prog.relocations)
    assert {r.target for r in prog.relocations if r.kind is RelocKind.FUNC} == {
        "add_index", "add_value",
    }  # fmt: skip
    tail = spec.programs["tail_target"]
    assert [(s.name, s.start) for s in tail.subprograms] == [("sum_to", 3), ("triple", 33)]
    assert spec.maps["jump_table"].init_slots == {0: "tail_target", 2: "tail_other"}
    outer = spec.maps["outer"]
    assert outer.type is BpfMapType.ARRAY_OF_MAPS and outer.init_slots == {1: "inner_b"}
    assert outer.inner is not None and outer.inner.name == "outer.inner"
    assert (outer.inner.type, outer.inner.value_size, outer.inner.max_entries) == (
        BpfMapType.ARRAY, 4, 2,
    )  # fmt: skip
    assert spec.maps["outer_hash"].inner.type is BpfMapType.ARRAY
    assert spec.helpers == [1, 12, 164, 181]


def test_line_info_rebased_to_appended_subprograms():
    spec = load_spec(fx("loader_calls"))
    prog = spec.programs["xdp_calls"]
    pcs = {li.insn_off for li in prog.line_info}
    assert pcs <= set(insns_at(prog)) and prog.line_info[0].insn_off == 0
    sum_to = next(s for s in prog.subprograms if s.name == "sum_to")
    line = prog.line_at(sum_to.start)
    assert isinstance(line, LineInfo) and "sum_to" in line.source
    assert line.file.endswith("loader_calls.c")
    assert any(fi.insn_off == sum_to.start for fi in prog.func_info)
    assert prog.subprogram_at(sum_to.start + 1) == "sum_to"
    assert "bpf_loop" in prog.line_at(13).source


def test_struct_ops():
    spec = load_spec(fx("loader_struct_ops"))
    basic, linked = spec.struct_ops["cc_basic"], spec.struct_ops["cc_linked"]
    assert (basic.type_name, basic.size, basic.link, basic.section) == (
        "pybpf_cc_ops", 48, False, ".struct_ops",
    )  # fmt: skip
    assert basic.members == {"ssthresh": "cc_ssthresh", "cong_avoid": "cc_cong_avoid"}
    assert linked.link and linked.members == {
        "ssthresh": "cc_ssthresh",
        "undo_cwnd": "cc_undo_cwnd",
    }
    assert basic.data[24:28] == (5).to_bytes(4, "little") and basic.data[28:40] == b"pybpf_basic\0"
    assert spec.btf[basic.type_id].name == "pybpf_cc_ops"
    undo = spec.programs["cc_undo_cwnd"]
    assert undo.prog_type is BpfProgType.STRUCT_OPS and undo.sleepable


def test_kfuncs_and_ksyms():
    spec = load_spec(fx("loader_kfuncs"))
    prog = spec.programs["tc_wq"]
    assert prog.kfuncs == ["bpf_kfunc_may_be_missing", "bpf_wq_init", "bpf_wq_set_callback_impl",
                           "bpf_wq_start"]  # fmt: skip
    at = insns_at(prog)
    for r in prog.relocations:
        if r.kind is RelocKind.KFUNC:
            assert at[r.pc].src_reg == BPF_PSEUDO_KFUNC_CALL
            assert r.weak == (r.target == "bpf_kfunc_may_be_missing")
    assert [s.name for s in prog.subprograms] == ["wq_callback"]
    ksyms = {r.target: r.weak for r in prog.relocations if r.kind is RelocKind.KSYM}
    assert ksyms == {"bpf_kfunc_may_be_missing": True, "bpf_prog_active": False}
    assert spec.externs["pybpf_typed_ksym"].typed and not spec.externs["bpf_prog_active"].typed
    assert spec.kfuncs == prog.kfuncs


def test_legacy_maps_with_and_without_btf():
    data = fx("loader_legacy").read_bytes()
    for blob in (data, _strip_btf(data)):
        spec = load_spec(blob, name="loader_legacy")
        assert (spec.btf is None) == (blob is not data)
        a, h = spec.maps["legacy_array"], spec.maps["legacy_counts"]
        assert (a.type, a.key_size, a.value_size, a.max_entries) == (BpfMapType.ARRAY, 4, 4, 8)
        assert (h.type, h.map_flags, h.max_entries) == (BpfMapType.HASH, 1, 64)
        assert spec.license == "MIT" and not spec.gpl_compatible
        prog = spec.programs["socket_legacy"]
        assert {r.target for r in prog.relocations} == {"legacy_array", "legacy_counts"}


def _strip_btf(data: bytes) -> bytes:
    """The object with its .BTF/.BTF.ext sections renamed out of the loader's sight."""
    return data.replace(b".BTF", b".XTF")


def test_sections_fixture():
    spec = load_spec(fx("loader_sections"))
    assert spec.license == "GPL v2" and spec.version == 0x050A00
    got = {p.name: (p.type, p.attach_to, p.autoload) for p in spec.programs.values()}
    assert got["sec_kprobe"] == ("kprobe", "do_unlinkat", True)
    assert got["sec_xdp_manual"] == ("xdp", None, False)
    assert got["sec_tracepoint"] == ("tracepoint", "syscalls/sys_enter_openat", True)
    assert got["sec_fentry"] == ("tracing", "do_unlinkat", True)
    assert got["sec_lsm_sleepable"][0] == "lsm" and spec.programs["sec_lsm_sleepable"].sleepable
    assert spec.programs["sec_cgroup_skb"].expected_attach_type is BpfAttachType.CGROUP_INET_INGRESS
    assert spec.programs["sec_tc"].expected_attach_type is None
    assert len(spec.programs) == 24


def test_core_without_and_with_target():
    plain = load_spec(fx("loader_core"))
    moved = load_spec(fx("loader_core"), target_btf=fx("loader_core_target"))
    p0, p1 = plain.programs["kprobe_core"], moved.programs["kprobe_core"]
    assert all(c.target_value is None for c in p0.core_relos)
    values = {(c.kind, c.access): c.target_value for c in p1.core_relos}
    assert values[("field_byte_offset", "0:0")] == 28  # pid moved
    assert values[("field_byte_offset", "0:1")] == 24  # tgid moved
    assert values[("field_byte_size", "0:3")] == 2  # flags narrowed
    assert values[("field_exists", "0:1")] == 0  # task_like___old::removed_field is gone
    assert values[("type_size", "0")] == 40
    assert values[("enumval_value", "1")] == 4
    at0, at1 = insns_at(p0), insns_at(p1)
    for c in p1.core_relos:
        if c.kind == "field_byte_offset" and c.access == "0:0":
            assert at0[c.pc].imm == 0 and at1[c.pc].imm == 28
    direct = moved.programs["tp_btf_core"]
    flags_load = next(c for c in direct.core_relos if c.access == "0:3")
    insn = insns_at(direct)[flags_load.pc]
    assert insn.offset == 32 and insn.spec.name == "ldxh"  # u32 read narrowed to u16


def test_core_unsatisfiable_is_an_error_at_its_line():
    with pytest.raises(BtfError) as e:
        load_spec(fx("loader_core"), target_btf=fx("loader_maps"))
    assert "loader_core.c:" in str(e.value) and e.value.section == "kprobe/do_task"
    spec = load_spec(fx("loader_core"), target_btf=fx("loader_maps"), core_poison=True)
    poisoned = [c for c in spec.programs["kprobe_core"].core_relos if c.poisoned]
    assert poisoned and insns_at(spec.programs["kprobe_core"])[poisoned[0].pc].imm == 0xBAD2310


def test_unknown_program_section_is_named():
    data = fx("loader_legacy").read_bytes().replace(b"socket\0", b"sockex\0")
    with pytest.raises(LoadError) as e:
        load_spec(data)
    assert e.value.section == "sockex"


def test_bytes_and_path_agree():
    path = fx("loader_calls")
    a, b = load_spec(path), load_spec(path.read_bytes(), name="loader_calls")
    assert summarize(a) | {"object": None} == summarize(b)


def test_inspect_golden():
    d = summarize(load_spec(fx("loader_calls")))
    golden = GOLDEN / "inspect_loader_calls.json"
    assert json.loads(golden.read_text()) == d
    text = format_summary(d)
    assert "xdp_calls: xdp [xdp] 90 insns" in text and "[1] = inner_b" in text


@pytest.mark.skipif(shutil.which("llvm-readelf-19") is None, reason="llvm-readelf-19 not installed")
def test_program_sizes_match_readelf():
    out = subprocess.run(
        ["llvm-readelf-19", "-s", str(fx("loader_sections"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    sizes = {f[7]: int(f[2]) // 8 for f in (line.split() for line in out.splitlines())
             if len(f) == 8 and f[3] == "FUNC"}  # fmt: skip
    spec = load_spec(fx("loader_sections"))
    assert {n: p.slot_count for n, p in spec.programs.items()} == sizes


def _rel_entry(data: bytes, section: str) -> int:
    """File offset of the first entry of relocation section ``section``."""
    sec = read_elf(data).by_name(section)
    assert sec is not None
    return sec.offset


def _patch(data: bytes, at: int, value: int, width: int) -> bytes:
    return data[:at] + value.to_bytes(width, "little") + data[at + width :]


def _bad_inputs():
    data = fx("loader_calls").read_bytes()
    rel = _rel_entry(data, ".relxdp")
    shoff = int.from_bytes(data[40:48], "little")
    return [
        ("truncated", data[:100], ElfFormatError, None),
        ("class32", data[:4] + b"\x01" + data[5:], ElfFormatError, None),
        ("big-endian", data[:5] + b"\x02" + data[6:], ElfFormatError, None),
        ("machine", _patch(data, 18, 62, 2), ElfFormatError, None),
        ("section name", _patch(data, shoff + 64 * 3, 0xFFFFFF, 4), ElfFormatError, None),
        ("symbol index", _patch(data, rel + 12, 9999, 4), RelocationError, ".relxdp"),
        ("reloc offset", _patch(data, rel, 0x100000, 8), RelocationError, ".relxdp"),
        ("reloc on exit", _patch(data, rel, 0x10, 8), RelocationError, None),
        ("reloc type", _patch(data, rel + 8, 77, 4), RelocationError, ".relxdp"),
    ]


@pytest.mark.parametrize(
    ("what", "blob", "error", "section"), _bad_inputs(), ids=[c[0] for c in _bad_inputs()]
)
def test_bad_input_names_where(what, blob, error, section):
    with pytest.raises(error) as e:
        load_spec(blob)
    if section is not None:
        assert e.value.section == section and e.value.offset is not None


def test_hash_of_maps_slot_is_a_key_beyond_max_entries():
    # libbpf keeps `.values = {[7] = &inner_b}` of a 4-entry hash-of-maps: the slot is the key
    # it updates the outer map with after creation, not an index bounded by max_entries.
    spec = load_spec(Path(__file__).parent / "kernel" / "map_in_map.o")
    outer = spec.maps["outer_hash"]
    assert (outer.type, outer.max_entries) == (BpfMapType.HASH_OF_MAPS, 4)
    assert outer.init_slots == {7: "inner_b"}

"""The declaration vocabulary and the helper table: ids, HelperSet as a value, user helpers,
program types of every declaration, and the bpf_wq program types of the kfunc's docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pybpf.errors import LinkError
from pybpf.helpers import (
    DEFAULT_HELPERS,
    PROG_TYPES,
    ArgKind,
    ArgMod,
    ArgType,
    HelperDecl,
    HelperFlag,
    HelperSet,
    KfuncDecl,
    RetKind,
)
from pybpf.helpers.decl import ARG_ANYTHING, ARG_PTR_TO_MEM, MEM_RDONLY
from pybpf.memory import Arena
from pybpf.uapi import BpfProgType as T
from tests.helpers_support import Harness

SHARED = Path(__file__).parents[1].parent / "shared"
HELPER_DEFS = Path("/usr/include/bpf/bpf_helper_defs.h")

# Kernel helper numbers, read off include/uapi/linux/bpf.h's ___BPF_FUNC_MAPPER and libbpf's
# bpf_helper_defs.h.
KERNEL_IDS = {
    "map_lookup_elem": 1,
    "map_update_elem": 2,
    "map_delete_elem": 3,
    "probe_read": 4,
    "ktime_get_ns": 5,
    "trace_printk": 6,
    "get_prandom_u32": 7,
    "get_smp_processor_id": 8,
    "skb_store_bytes": 9,
    "l3_csum_replace": 10,
    "l4_csum_replace": 11,
    "tail_call": 12,
    "get_current_pid_tgid": 14,
    "get_current_uid_gid": 15,
    "get_current_comm": 16,
    "redirect": 23,
    "perf_event_output": 25,
    "skb_load_bytes": 26,
    "csum_diff": 28,
    "xdp_adjust_head": 44,
    "probe_read_str": 45,
    "redirect_map": 51,
    "xdp_adjust_meta": 54,
    "xdp_adjust_tail": 65,
    "map_push_elem": 87,
    "map_pop_elem": 88,
    "map_peek_elem": 89,
    "spin_lock": 93,
    "spin_unlock": 94,
    "probe_read_user": 112,
    "probe_read_kernel": 113,
    "probe_read_user_str": 114,
    "probe_read_kernel_str": 115,
    "jiffies64": 118,
    "ktime_get_boot_ns": 125,
    "ringbuf_output": 130,
    "ringbuf_reserve": 131,
    "ringbuf_submit": 132,
    "ringbuf_discard": 133,
    "ringbuf_query": 134,
    "ktime_get_coarse_ns": 160,
    "for_each_map_elem": 164,
    "snprintf": 165,
    "timer_init": 169,
    "timer_set_callback": 170,
    "timer_start": 171,
    "timer_cancel": 172,
    "loop": 181,
    "xdp_get_buff_len": 188,
    "xdp_load_bytes": 189,
    "xdp_store_bytes": 190,
}


def test_every_required_helper_has_its_kernel_id() -> None:
    got = {h.name: h.id for h in DEFAULT_HELPERS.helpers}
    assert got == KERNEL_IDS


@pytest.mark.skipif(not HELPER_DEFS.exists(), reason="libbpf's bpf_helper_defs.h not installed")
def test_ids_match_installed_libbpf_header() -> None:
    text = HELPER_DEFS.read_text()
    ids = {
        m[1]: int(m[2])
        for m in re.finditer(
            r"\(\*\s*(?:const\s+)?bpf_(\w+)\)\(.*?= \(void \*\) (\d+);", text, re.S
        )
    }
    for h in DEFAULT_HELPERS.helpers:
        assert ids[h.name] == h.id, h.name


def test_signatures_are_well_formed() -> None:
    for h in DEFAULT_HELPERS.helpers:
        assert len(h.args) <= 5
        assert all(isinstance(a, ArgKind) for a in h.args)
        # A size argument always follows the pointer it bounds.
        for i, a in enumerate(h.args):
            if a.is_size:
                assert i > 0 and h.args[i - 1].base in (
                    ArgType.PTR_TO_MEM,
                    ArgType.PTR_TO_UNINIT_MEM,
                    ArgType.CONST_MAP_PTR,
                ), h.name


def test_every_declared_program_type_has_a_row() -> None:
    for d in DEFAULT_HELPERS:
        if d.prog_types is not None:
            assert d.prog_types <= set(PROG_TYPES), d.name


def test_gpl_only_and_flags_spot_checks() -> None:
    by = DEFAULT_HELPERS.by_name
    assert by["trace_printk"].flags & HelperFlag.GPL_ONLY
    assert by["snprintf"].flags & HelperFlag.GPL_ONLY
    assert by["probe_read_kernel"].flags & HelperFlag.GPL_ONLY
    assert not by["map_lookup_elem"].flags & HelperFlag.GPL_ONLY
    assert by["xdp_adjust_head"].flags & HelperFlag.CHANGES_PKT_DATA
    assert by["map_lookup_elem"].ret is RetKind.PTR_TO_MAP_VALUE_OR_NULL
    assert by["ringbuf_reserve"].ret is RetKind.PTR_TO_ALLOC_MEM_OR_NULL
    assert str(by["snprintf"].args[3]) == "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY"


def _seed_wq_types() -> set[str]:
    seeds = sorted((SHARED / "seeds").glob("004_*.txt"))
    if not seeds:
        pytest.skip("shared/seeds/004 (bpf_wq_init documentation) not present")
    text = seeds[0].read_text()
    section = text.split("can make use of this kfunc:", 1)[1].split("Example", 1)[0]
    return set(re.findall(r"BPF_PROG_TYPE_(\w+)", section))


@pytest.mark.parametrize("name", ["bpf_wq_init", "bpf_wq_set_callback_impl", "bpf_wq_start"])
def test_wq_kfunc_program_types_follow_the_documentation(name: str) -> None:
    k = DEFAULT_HELPERS.kfunc(name)
    assert k.prog_types is not None
    assert {t.name for t in k.prog_types} == _seed_wq_types()


def test_wq_set_callback_newer_name_is_an_alias() -> None:
    assert DEFAULT_HELPERS.kfunc("bpf_wq_set_callback") is DEFAULT_HELPERS.kfunc(
        "bpf_wq_set_callback_impl"
    )
    assert not DEFAULT_HELPERS.kfunc("bpf_wq_init").allowed_in(T.KPROBE)
    assert DEFAULT_HELPERS.kfunc("bpf_wq_init").allowed_in(T.XDP)


def _double(run: object, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return 2 * r1


MY_HELPER = HelperDecl(
    1000, "my_double", RetKind.INTEGER, (ARG_ANYTHING,), _double, prog_types={T.XDP}
)


def test_helper_set_is_a_value() -> None:
    extended = DEFAULT_HELPERS.with_(MY_HELPER)
    assert 1000 in extended and 1000 not in DEFAULT_HELPERS
    assert len(extended) == len(DEFAULT_HELPERS) + 1
    assert extended.by_id[1000] is MY_HELPER
    with pytest.raises(TypeError):
        extended.by_id[5] = MY_HELPER
    with pytest.raises(AttributeError):
        extended.helpers = ()
    assert "my_double" not in DEFAULT_HELPERS.without("my_double")
    assert "loop" not in DEFAULT_HELPERS.without("loop")
    assert "loop" in DEFAULT_HELPERS


def test_with_replaces_same_id_or_name() -> None:
    fake = HelperDecl(5, "ktime_get_ns", RetKind.INTEGER, (), lambda *a: 42)
    s = DEFAULT_HELPERS.with_(fake)
    assert s.by_id[5] is fake and len(s) == len(DEFAULT_HELPERS)
    renamed = HelperDecl(5, "my_clock", RetKind.INTEGER, (), lambda *a: 7)
    s2 = DEFAULT_HELPERS.with_(renamed)
    assert s2.by_id[5] is renamed and "ktime_get_ns" not in s2


def test_duplicates_and_bad_declarations_are_link_errors() -> None:
    a = HelperDecl(7, "a", RetKind.INTEGER, (), _double)
    b = HelperDecl(7, "b", RetKind.INTEGER, (), _double)
    with pytest.raises(LinkError):
        HelperSet((a, b))
    with pytest.raises(LinkError):
        HelperDecl(1, "too_many", RetKind.INTEGER, (ARG_ANYTHING,) * 6, _double)
    with pytest.raises(LinkError):
        DEFAULT_HELPERS.helper(999_999)
    with pytest.raises(LinkError):
        DEFAULT_HELPERS.kfunc("map_lookup_elem")


def test_user_helpers_and_kfuncs_bind_like_builtin_ones() -> None:
    kf = KfuncDecl("my_kfunc", RetKind.INTEGER, (), lambda run, *r: r[0] + r[1])
    s = DEFAULT_HELPERS.with_(MY_HELPER, kf)
    with Arena(1 << 24) as arena:
        h = Harness(arena, T.XDP, helper_set=s)
        assert h.helpers[1000](21, 0, 0, 0, 0) == 42
        assert h.call("my_kfunc", 3, 4) == 7
    assert MY_HELPER in PROG_TYPES[T.XDP].helpers(s)
    assert MY_HELPER not in PROG_TYPES[T.SCHED_CLS].helpers(s)


def test_arg_kind_composition() -> None:
    k = ARG_PTR_TO_MEM | MEM_RDONLY | ArgMod.PTR_MAYBE_NULL
    assert k.maybe_null and k.base is ArgType.PTR_TO_MEM
    assert not ARG_PTR_TO_MEM.maybe_null
    assert RetKind.PTR_TO_MAP_VALUE_OR_NULL.maybe_null and not RetKind.INTEGER.maybe_null

"""`.BTF.ext` records and CO-RE resolution of btf_core.o against btf_core_target.o.

Expected target values follow from the C layout of btf_core_target.c (x86-64/BPF ABI):
`struct core_task` = reserved[3] @0, prio_and_flags @24, flags:3 @bit 208, prio:9 @bit 211,
parent @32, arr[8] @40, tgid @72, inner @80 (b @80, a @84), start_time @96, state @104,
pid @108, size 112; `STATE_GONE` is 9 there.
"""

from __future__ import annotations

import pytest
from btf_support import btf_bytes, btf_ext_bytes

from pybpf.btf import (
    Btf,
    BtfExt,
    CoreRelo,
    CoreReloKind,
    Kind,
    core_resolve,
    parse_btf,
    parse_btf_ext,
)
from pybpf.errors import BtfError

K = CoreReloKind
SECTION = "raw_tp/sched_switch"


@pytest.fixture(scope="module")
def local() -> Btf:
    return parse_btf(btf_bytes("btf_core.o"))


@pytest.fixture(scope="module")
def target() -> Btf:
    return parse_btf(btf_bytes("btf_core_target.o"))


@pytest.fixture(scope="module")
def ext(local: Btf) -> BtfExt:
    return parse_btf_ext(btf_ext_bytes("btf_core.o"), local)


def test_func_and_line_info(local: Btf, ext: BtfExt) -> None:
    (func,) = ext.func_info[SECTION]
    assert func.insn_off == 0 and local[func.type_id].kind is Kind.FUNC
    assert local[func.type_id].name == "core_prog"
    lines = ext.line_info[SECTION]
    assert lines[0].file.endswith("btf_core.c") and lines[0].line == 51
    assert lines[0].column == 32
    assert lines[0].source == "\tstruct core_task *t = (void *)bpf_get_current_task();"
    assert [ln.insn_off for ln in lines] == sorted(ln.insn_off for ln in lines)
    sources = {ln.line: ln.source.strip() for ln in lines}
    assert sources[54] == "emit(0, BPF_CORE_READ(t, pid));"


def test_every_relo_kind_is_present(ext: BtfExt) -> None:
    assert {r.kind for r in ext.core_relos[SECTION]} == set(CoreReloKind)


# (kind, access string, local type name, local value, target value, poisoned)
EXPECTED = [
    (K.FIELD_BYTE_OFFSET, "0:0", "core_task", 0, 108, False),  # pid
    (K.FIELD_BYTE_OFFSET, "0:7", "core_task", 48, 32, False),  # parent
    (K.FIELD_BYTE_OFFSET, "0:1", "core_task", 4, 72, False),  # tgid
    (K.FIELD_BYTE_OFFSET, "0:5:1", "core_task", 28, 80, False),  # inner.b (moved first)
    (K.FIELD_BYTE_OFFSET, "0:6:2", "core_task", 40, 48, False),  # arr[2]
    (K.FIELD_BYTE_OFFSET, "0:8", "core_task", 56, 104, False),  # state
    (K.FIELD_BYTE_OFFSET, "0:4", "core_task", 16, 16, True),  # removed: gone
    (K.FIELD_EXISTS, "0:4", "core_task", 1, 0, False),
    (K.FIELD_EXISTS, "0:1", "core_task___v2", 1, 1, False),  # flavour finds start_time
    (K.FIELD_BYTE_SIZE, "0:5", "core_task", 8, 16, False),  # inner grew
    (K.FIELD_BYTE_OFFSET, "0:3", "core_task", 8, 24, False),  # prio bitfield load
    (K.FIELD_BYTE_SIZE, "0:3", "core_task", 4, 4, False),
    (K.FIELD_LSHIFT_U64, "0:3", "core_task", 54, 36, False),
    (K.FIELD_RSHIFT_U64, "0:3", "core_task", 58, 55, False),
    (K.FIELD_SIGNED, "0:3", "core_task", 1, 1, False),
    (K.TYPE_EXISTS, "0", "core_missing", 1, 0, False),
    (K.TYPE_SIZE, "0", "core_task", 64, 112, False),
    (K.ENUMVAL_VALUE, "2", "core_state", 2, 9, False),
    (K.ENUMVAL_EXISTS, "1", "core_state", 1, 1, False),
    (K.TYPE_MATCHES, "0", "core_inner", 1, 1, False),
]


@pytest.mark.parametrize(("kind", "access", "type_name", "lv", "tv", "poison"), EXPECTED)
def test_resolve_against_target(
    local: Btf,
    target: Btf,
    ext: BtfExt,
    kind: CoreReloKind,
    access: str,
    type_name: str,
    lv: int,
    tv: int,
    poison: bool,
) -> None:
    relo = next(
        r
        for r in ext.core_relos[SECTION]
        if r.kind is kind and r.access_str == access and local[r.type_id].name == type_name
    )
    res = core_resolve(relo, local, target)
    assert (res.local_value, res.target_value, res.poison) == (lv, tv, poison)
    if poison:
        assert "core_task.removed" in res.reason and "not found" in res.reason
    left = core_resolve(relo, local, None)
    assert (left.local_value, left.target_value, left.poison) == (lv, lv, False)


def test_type_ids(local: Btf, target: Btf, ext: BtfExt) -> None:
    by_kind = {r.kind: r for r in ext.core_relos[SECTION]}
    local_id = core_resolve(by_kind[K.TYPE_ID_LOCAL], local, target)
    assert local_id.local_value == local_id.target_value == by_kind[K.TYPE_ID_LOCAL].type_id
    assert local[local_id.local_value].name == "core_task_t"
    res = core_resolve(by_kind[K.TYPE_ID_TARGET], local, target)
    assert target[res.target_value].name == "core_task"
    assert target[res.target_value].kind is Kind.STRUCT and not res.validate


def _relo(local: Btf, name: str, access: str, kind: CoreReloKind) -> CoreRelo:
    t = local.find(name)
    assert t is not None
    return CoreRelo(0, t.id, access, kind)


def test_enum_value_missing_is_poison_and_exists_zero(local: Btf) -> None:
    target = parse_btf(btf_bytes("btf_kinds.o"))  # has no enum core_state at all
    res = core_resolve(_relo(local, "core_state", "2", K.ENUMVAL_VALUE), local, target)
    assert res.poison and "enum core_state.STATE_GONE" in res.reason
    res = core_resolve(_relo(local, "core_state", "2", K.ENUMVAL_EXISTS), local, target)
    assert (res.target_value, res.poison) == (0, False)
    res = core_resolve(_relo(local, "core_task", "0", K.TYPE_SIZE), local, target)
    assert (res.local_value, res.target_value, res.poison) == (64, 0, False)


def test_type_matches_fails_on_layout_change(local: Btf, target: Btf) -> None:
    # Local core_task has `removed` and a 4-bit `flags`; the target lacks `removed`.
    res = core_resolve(_relo(local, "core_task", "0", K.TYPE_MATCHES), local, target)
    assert (res.local_value, res.target_value) == (1, 0)


def test_ambiguous_candidates_are_an_error(local: Btf, target: Btf) -> None:
    twin = parse_btf(btf_bytes("btf_core_target.o"))
    core_task = twin.find("core_task", Kind.STRUCT)
    assert core_task is not None
    clone = type(core_task)(**{**core_task.__dict__, "id": len(twin.types)})
    clone.members = [type(m)(**m.__dict__) for m in core_task.members]
    clone.members[-1].bit_offset = 0  # pid moved in the second candidate
    clone.name = "core_task___other"
    twin.types.append(clone)
    with pytest.raises(BtfError, match="ambiguous"):
        core_resolve(_relo(local, "core_task", "0:0", K.FIELD_BYTE_OFFSET), local, twin)


@pytest.mark.parametrize(
    ("access", "kind", "message"),
    [
        ("", K.FIELD_BYTE_OFFSET, "bad access string"),
        (":1", K.FIELD_BYTE_OFFSET, "bad access string"),
        ("0:x", K.FIELD_BYTE_OFFSET, "bad access string"),
        ("0:99", K.FIELD_BYTE_OFFSET, "does not exist"),
        ("0:6:9", K.FIELD_BYTE_OFFSET, "out of bounds"),
        ("0:0:1", K.FIELD_BYTE_OFFSET, "steps into INT"),
        ("1", K.TYPE_SIZE, "type relocation with access string"),
        ("0", K.ENUMVAL_VALUE, "is not an enumerator"),
    ],
)
def test_malformed_relocations(local: Btf, access: str, kind: CoreReloKind, message: str) -> None:
    with pytest.raises(BtfError, match=message):
        core_resolve(_relo(local, "core_task", access, kind), local, None)


def test_flavour_suffix_rules() -> None:
    from pybpf.btf import essential_name

    assert essential_name("task_struct___v2") == "task_struct"
    assert essential_name("a___b___c") == "a___b"
    assert essential_name("__x___") == "__x___"
    assert essential_name("x____y") == "x____y"
    assert essential_name("plain") == "plain"

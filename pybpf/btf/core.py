"""CO-RE: compute what a `.BTF.ext` core_relo record means against a target BTF.

The loader calls `core_resolve` for every relocation of a program and patches the instruction
with `target_value` (or poisons it). The rules are libbpf's (tools/lib/bpf/relo_core.c):
candidates are target types of a compatible kind whose name matches once `___flavour`
suffixes are dropped; the access string is replayed on each candidate by member *name*
(looking through anonymous members) and array index; all matching candidates must agree.
Nothing found means 0 for the *_EXISTS kinds and TYPE_* kinds, and a poisoned instruction for
the others. A malformed relocation or an ambiguous match is a `BtfError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybpf.btf.ext import CoreRelo, CoreReloKind
from pybpf.btf.types import (
    COMPOSITE_KINDS,
    ENUM_KINDS,
    MAX_DEPTH,
    Btf,
    BtfType,
    IntEncoding,
    Kind,
    essential_name,
)
from pybpf.errors import BtfError

SPEC_MAX_LEN = 64  # libbpf's BPF_CORE_SPEC_MAX_LEN

_FIELD_KINDS = frozenset(
    {
        CoreReloKind.FIELD_BYTE_OFFSET,
        CoreReloKind.FIELD_BYTE_SIZE,
        CoreReloKind.FIELD_EXISTS,
        CoreReloKind.FIELD_SIGNED,
        CoreReloKind.FIELD_LSHIFT_U64,
        CoreReloKind.FIELD_RSHIFT_U64,
    }
)
_TYPE_KINDS = frozenset(
    {
        CoreReloKind.TYPE_ID_LOCAL,
        CoreReloKind.TYPE_ID_TARGET,
        CoreReloKind.TYPE_EXISTS,
        CoreReloKind.TYPE_MATCHES,
        CoreReloKind.TYPE_SIZE,
    }
)
_ENUMVAL_KINDS = frozenset({CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE})


@dataclass
class CoreResult:
    """What to do with the relocated instruction.

    `local_value` is what the compiler put in the instruction (the loader may check it when
    `validate`), `target_value` what it must become. For FIELD_BYTE_OFFSET of a load/store,
    `local_size`/`target_size` are the access sizes; when they differ the loader changes the
    instruction's size if `size_change_ok`, and poisons it otherwise (libbpf's rule).
    """

    local_value: int
    target_value: int
    poison: bool = False
    reason: str = ""
    validate: bool = True
    local_size: int = 0
    target_size: int = 0
    size_change_ok: bool = True
    target_type_id: int = 0


@dataclass
class _Access:
    type_id: int
    idx: int
    name: str | None


@dataclass
class _Spec:
    btf: Btf
    root_id: int
    kind: CoreReloKind
    accs: list[_Access] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    bit_offset: int = 0

    def describe(self) -> str:
        text = self.btf.type_name(self.root_id)
        for i, acc in enumerate(self.accs):
            if acc.name is not None:
                text += f".{acc.name}"
            elif i > 0 or acc.idx > 0:
                text += f"[{acc.idx}]"
        return text


class _Poison(Exception):
    """Internal signal: the relocation cannot be satisfied, the instruction gets poisoned."""


def _resolve(btf: Btf, type_id: int) -> BtfType:
    return btf.resolve(type_id)


def _size(btf: Btf, type_id: int) -> int:
    return btf.size_of(type_id)


def _is_flex_array(btf: Btf, acc: _Access, nelems: int) -> bool:
    if acc.name is None or nelems > 0:
        return False
    return acc.idx == len(btf[acc.type_id].members) - 1


def _parse_spec(btf: Btf, relo: CoreRelo) -> _Spec:
    text = relo.access_str
    what = f"CO-RE relocation {relo.kind.name} at insn {relo.insn_off}"
    spec = _Spec(btf, relo.type_id, relo.kind)
    if not text or text.startswith(":"):
        raise BtfError(f"{what}: bad access string {text!r}", section=btf.section)
    if relo.kind in _TYPE_KINDS:
        if text != "0":
            raise BtfError(f"{what}: type relocation with access string {text!r}")
        return spec
    parts = text.split(":")
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise BtfError(f"{what}: bad access string {text!r}", section=btf.section)
    if len(parts) > SPEC_MAX_LEN:
        raise BtfError(f"{what}: access string longer than {SPEC_MAX_LEN}", section=btf.section)
    spec.raw = [int(p) for p in parts]
    t = _resolve(btf, relo.type_id)
    first = spec.raw[0]
    if relo.kind in _ENUMVAL_KINDS:
        if t.kind not in ENUM_KINDS or len(spec.raw) > 1 or first >= len(t.values):
            raise BtfError(
                f"{what}: {text!r} is not an enumerator of {btf.type_name(relo.type_id)}",
                section=btf.section,
            )
        spec.accs.append(_Access(t.id, first, t.values[first].name))
        return spec
    spec.accs.append(_Access(t.id, first, None))
    spec.bit_offset = first * _size(btf, t.id) * 8
    type_id = t.id
    for idx in spec.raw[1:]:
        t = _resolve(btf, type_id)
        if t.kind in COMPOSITE_KINDS:
            if idx >= len(t.members):
                raise BtfError(
                    f"{what}: member #{idx} of {btf.type_name(t.id)} does not exist",
                    section=btf.section,
                )
            member = t.members[idx]
            spec.bit_offset += member.bit_offset
            if member.name:
                spec.accs.append(_Access(t.id, idx, member.name))
            type_id = member.type_id
        elif t.kind is Kind.ARRAY and t.array is not None:
            elem = _resolve(btf, t.array[0])
            if not _is_flex_array(btf, spec.accs[-1], t.array[2]) and idx >= t.array[2]:
                raise BtfError(
                    f"{what}: index {idx} out of bounds of {btf.type_name(t.id)}",
                    section=btf.section,
                )
            spec.accs.append(_Access(elem.id, idx, None))
            spec.bit_offset += idx * _size(btf, elem.id) * 8
            type_id = elem.id
        else:
            raise BtfError(
                f"{what}: {text!r} steps into {t.kind.name} {btf.type_name(t.id)}",
                section=btf.section,
            )
    return spec


def _kind_compat(a: BtfType, b: BtfType) -> bool:
    return a.kind is b.kind or (a.kind in ENUM_KINDS and b.kind in ENUM_KINDS)


def _names_compat(a: str, b: str) -> bool:
    """Anonymous on either side, or equal without flavours (enums, forward declarations)."""
    ea, eb = essential_name(a), essential_name(b)
    return not ea or not eb or ea == eb


def _fields_compat(local: Btf, local_id: int, target: Btf, target_id: int) -> bool:
    for _ in range(MAX_DEPTH):
        lt, tt = _resolve(local, local_id), _resolve(target, target_id)
        if lt.kind in COMPOSITE_KINDS and tt.kind in COMPOSITE_KINDS:
            return True
        if not _kind_compat(lt, tt):
            return False
        if lt.kind in (Kind.PTR, Kind.FLOAT):
            return True
        if lt.kind in ENUM_KINDS or lt.kind is Kind.FWD:
            return _names_compat(lt.name, tt.name)
        if lt.kind is Kind.INT:
            return lt.int_offset == 0 and tt.int_offset == 0
        if lt.kind is Kind.ARRAY and lt.array is not None and tt.array is not None:
            local_id, target_id = lt.array[0], tt.array[0]
            continue
        return False
    raise BtfError(f"CO-RE field types nest deeper than {MAX_DEPTH}")


def _match_member(
    local: Btf, local_acc: _Access, target: Btf, target_id: int, spec: _Spec
) -> tuple[bool, int]:
    """Find the local named member in target type `target_id` (through anonymous members)."""
    tt = _resolve(target, target_id)
    if tt.kind not in COMPOSITE_KINDS:
        return False, 0
    local_member = local[local_acc.type_id].members[local_acc.idx]
    for i, m in enumerate(tt.members):
        if len(spec.raw) == SPEC_MAX_LEN:
            raise BtfError(f"CO-RE target nesting deeper than {SPEC_MAX_LEN}")
        spec.bit_offset += m.bit_offset
        spec.raw.append(i)
        if not m.name:
            found, next_id = _match_member(local, local_acc, target, m.type_id, spec)
            if found:
                return True, next_id
        elif m.name == local_member.name:
            if _fields_compat(local, local_member.type_id, target, m.type_id):
                spec.accs.append(_Access(tt.id, i, m.name))
                return True, m.type_id
            return False, 0
        spec.bit_offset -= m.bit_offset
        spec.raw.pop()
    return False, 0


def _types_compat(local: Btf, local_id: int, target: Btf, target_id: int, level: int) -> bool:
    if not _kind_compat(local[local_id], target[target_id]):
        return False
    for _ in range(MAX_DEPTH):
        lt, tt = _resolve(local, local_id), _resolve(target, target_id)
        if not _kind_compat(lt, tt):
            return False
        if lt.kind in (Kind.VOID, Kind.FWD) or lt.kind in COMPOSITE_KINDS or lt.kind in ENUM_KINDS:
            return True
        if lt.kind is Kind.INT:
            return lt.int_offset == 0 and tt.int_offset == 0
        if lt.kind is Kind.PTR:
            local_id, target_id = lt.type_id, tt.type_id
        elif lt.kind is Kind.ARRAY and lt.array is not None and tt.array is not None:
            local_id, target_id = lt.array[0], tt.array[0]
        elif lt.kind is Kind.FUNC_PROTO:
            if len(lt.params) != len(tt.params) or level <= 0:
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                lid, tid = _resolve(local, lp.type_id).id, _resolve(target, tp.type_id).id
                if not _types_compat(local, lid, target, tid, level - 1):
                    return False
            local_id, target_id = lt.type_id, tt.type_id
        else:
            return False
    raise BtfError(f"CO-RE types nest deeper than {MAX_DEPTH}")


def _names_match(local_name: str, target_name: str) -> bool:
    if not target_name:
        return not local_name
    return essential_name(local_name) == essential_name(target_name)


def _types_match(
    local: Btf, local_id: int, target: Btf, target_id: int, behind_ptr: bool, level: int
) -> bool:
    """libbpf's stricter TYPE_MATCHES relation (bpf_core_types_match)."""
    if level <= 0:
        raise BtfError("CO-RE type match recursion too deep")
    for _ in range(MAX_DEPTH):
        lt, tt = _resolve(local, local_id), _resolve(target, target_id)
        if not _names_match(lt.name, tt.name):
            return False
        lk, tk = lt.kind, tt.kind
        if lk is Kind.VOID:
            return tk is Kind.VOID
        if lk is Kind.FWD:
            if behind_ptr and tk in COMPOSITE_KINDS:
                return (tk is Kind.UNION) == lt.kflag
            return tk is Kind.FWD and lt.kflag == tt.kflag
        if lk in ENUM_KINDS:
            if tk not in ENUM_KINDS or lt.size != tt.size or len(lt.values) > len(tt.values):
                return False
            return all(any(_names_match(lv.name, tv.name) for tv in tt.values) for lv in lt.values)
        if lk in COMPOSITE_KINDS:
            if behind_ptr:
                return lk is tk or (tk is Kind.FWD and (lk is Kind.UNION) == tt.kflag)
            if lk is not tk or len(lt.members) > len(tt.members):
                return False
            return all(
                any(
                    _names_match(lm.name, tm.name)
                    and _types_match(local, lm.type_id, target, tm.type_id, behind_ptr, level - 1)
                    for tm in tt.members
                )
                for lm in lt.members
            )
        if lk is Kind.INT:
            return (
                tk is Kind.INT
                and lt.size == tt.size
                and bool(lt.int_encoding & IntEncoding.SIGNED)
                == bool(tt.int_encoding & IntEncoding.SIGNED)
            )
        if lk is Kind.PTR:
            if tk is not Kind.PTR:
                return False
            behind_ptr = True
            local_id, target_id = lt.type_id, tt.type_id
        elif lk is Kind.ARRAY and lt.array is not None:
            if tk is not Kind.ARRAY or tt.array is None or lt.array[2] != tt.array[2]:
                return False
            local_id, target_id = lt.array[0], tt.array[0]
        elif lk is Kind.FUNC_PROTO:
            if tk is not Kind.FUNC_PROTO or len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not _types_match(local, lp.type_id, target, tp.type_id, behind_ptr, level - 1):
                    return False
            local_id, target_id = lt.type_id, tt.type_id
        else:
            return False
    raise BtfError(f"CO-RE types nest deeper than {MAX_DEPTH}")


def _spec_match(local_spec: _Spec, target: Btf, target_id: int) -> _Spec | None:
    """The target spec when candidate `target_id` satisfies the local spec, else None."""
    spec = _Spec(target, target_id, local_spec.kind)
    local = local_spec.btf
    kind = local_spec.kind
    if kind in _TYPE_KINDS:
        if kind is CoreReloKind.TYPE_MATCHES:
            ok = _types_match(local, local_spec.root_id, target, target_id, False, 1 << 30)
        else:
            ok = _types_compat(local, local_spec.root_id, target, target_id, 1 << 30)
        return spec if ok else None
    if kind in _ENUMVAL_KINDS:
        tt = _resolve(target, target_id)
        if tt.kind not in ENUM_KINDS:
            return None
        wanted = essential_name(local_spec.accs[0].name or "")
        for i, v in enumerate(tt.values):
            if essential_name(v.name) == wanted:
                spec.accs.append(_Access(tt.id, i, v.name))
                spec.raw.append(i)
                return spec
        return None
    for i, local_acc in enumerate(local_spec.accs):
        tt = _resolve(target, target_id)
        target_id = tt.id
        if local_acc.name is not None:
            found, target_id = _match_member(local, local_acc, target, target_id, spec)
            if not found:
                return None
            continue
        if i > 0:
            if tt.kind is not Kind.ARRAY or tt.array is None:
                return None
            nelems = tt.array[2]
            if not _is_flex_array(target, spec.accs[-1], nelems) and local_acc.idx >= nelems:
                return None
            target_id = _resolve(target, tt.array[0]).id
        if len(spec.raw) == SPEC_MAX_LEN:
            raise BtfError(f"CO-RE target nesting deeper than {SPEC_MAX_LEN}")
        spec.accs.append(_Access(target_id, local_acc.idx, None))
        spec.raw.append(local_acc.idx)
        spec.bit_offset += local_acc.idx * _size(target, target_id) * 8
    return spec


@dataclass
class _FieldValue:
    value: int
    size: int = 0
    type_id: int = 0
    validate: bool = True


def _innermost_element(btf: Btf, type_id: int) -> BtfType:
    t = _resolve(btf, type_id)
    for _ in range(MAX_DEPTH):
        if t.kind is not Kind.ARRAY or t.array is None:
            return t
        t = _resolve(btf, t.array[0])
    raise BtfError(f"array nests deeper than {MAX_DEPTH}")


def _field_value(kind: CoreReloKind, spec: _Spec | None) -> _FieldValue:
    if kind is CoreReloKind.FIELD_EXISTS:
        return _FieldValue(1 if spec else 0)
    if spec is None:
        raise _Poison
    btf = spec.btf
    acc = spec.accs[-1]
    if acc.name is None:
        if kind is CoreReloKind.FIELD_BYTE_OFFSET:
            elem = _innermost_element(btf, acc.type_id)
            return _FieldValue(spec.bit_offset // 8, _size(btf, elem.id), acc.type_id)
        if kind is CoreReloKind.FIELD_BYTE_SIZE:
            return _FieldValue(_size(btf, acc.type_id))
        raise BtfError(f"CO-RE {kind.name} cannot apply to an array element access")
    owner = btf[acc.type_id]
    member = owner.members[acc.idx]
    mt = _resolve(btf, member.type_id)
    bit_off = spec.bit_offset
    bit_size = member.bitfield_size
    bitfield = bit_size > 0
    if bitfield:
        byte_size = mt.size
        if byte_size <= 0:
            raise BtfError(f"CO-RE bitfield {member.name!r} has a sizeless type")
        byte_off = bit_off // 8 // byte_size * byte_size
        while bit_off + bit_size - byte_off * 8 > byte_size * 8:
            if byte_size >= 8:
                raise BtfError(f"CO-RE bitfield {member.name!r} cannot be read with 64-bit load")
            byte_size *= 2
            byte_off = bit_off // 8 // byte_size * byte_size
    else:
        byte_size = _size(btf, mt.id)
        byte_off = bit_off // 8
        bit_size = byte_size * 8
    if kind is CoreReloKind.FIELD_BYTE_OFFSET:
        if bitfield:
            return _FieldValue(byte_off, validate=False)
        elem = _innermost_element(btf, mt.id)
        return _FieldValue(byte_off, _size(btf, elem.id), mt.id, validate=True)
    if kind is CoreReloKind.FIELD_BYTE_SIZE:
        return _FieldValue(byte_size, validate=not bitfield)
    if kind is CoreReloKind.FIELD_SIGNED:
        return _FieldValue(int(mt.is_signed), validate=True)
    if kind is CoreReloKind.FIELD_LSHIFT_U64:
        return _FieldValue(64 - (bit_off + bit_size - byte_off * 8), validate=not bitfield)
    return _FieldValue(64 - bit_size, validate=True)


def _type_value(kind: CoreReloKind, spec: _Spec | None) -> int:
    if spec is None:
        return 0
    if kind is CoreReloKind.TYPE_ID_TARGET:
        return spec.root_id
    if kind is CoreReloKind.TYPE_SIZE:
        return _size(spec.btf, spec.root_id)
    return 1


def _enumval_value(kind: CoreReloKind, spec: _Spec | None) -> int:
    if kind is CoreReloKind.ENUMVAL_EXISTS:
        return 1 if spec else 0
    if spec is None:
        raise _Poison
    acc = spec.accs[0]
    return spec.btf[acc.type_id].values[acc.idx].value


def _calc(relo: CoreRelo, local_spec: _Spec, target_spec: _Spec | None) -> CoreResult:
    kind = relo.kind
    try:
        if kind in _FIELD_KINDS:
            local = _field_value(kind, local_spec)
            targ = _field_value(kind, target_spec)
            res = CoreResult(
                local.value,
                targ.value,
                validate=local.validate,
                local_size=local.size,
                target_size=targ.size,
                target_type_id=targ.type_id,
            )
            if target_spec is not None and local.size != targ.size:
                lt, tt = local_spec.btf[local.type_id], target_spec.btf[targ.type_id]
                unsigned_ints = (
                    lt.kind is Kind.INT
                    and tt.kind is Kind.INT
                    and not lt.is_signed
                    and not tt.is_signed
                )
                res.size_change_ok = (lt.kind is tt.kind is Kind.PTR) or unsigned_ints
            return res
        if kind in _TYPE_KINDS:
            target_id = target_spec.root_id if target_spec else 0
            return CoreResult(
                _type_value(kind, local_spec),
                _type_value(kind, target_spec),
                validate=kind is not CoreReloKind.TYPE_ID_TARGET,
                target_type_id=target_id,
            )
        return CoreResult(_enumval_value(kind, local_spec), _enumval_value(kind, target_spec))
    except _Poison:
        if kind in _FIELD_KINDS:
            local_value = _field_value(kind, local_spec).value
        else:
            local_value = _enumval_value(kind, local_spec)
        return CoreResult(
            local_value,
            local_value,
            poison=True,
            reason=f"{local_spec.describe()} ({relo.access_str}) not found in the target BTF",
        )


def core_resolve(relo: CoreRelo, local: Btf, target: Btf | None) -> CoreResult:
    local_spec = _parse_spec(local, relo)
    if relo.kind is CoreReloKind.TYPE_ID_LOCAL:
        return CoreResult(relo.type_id, relo.type_id, validate=False)
    if target is None:
        res = _calc(relo, local_spec, local_spec)
        res.target_value, res.target_size = res.local_value, res.local_size
        res.size_change_ok = True
        return res
    local_type = local[relo.type_id]
    if not local_type.name:
        raise BtfError(
            f"CO-RE relocation {relo.kind.name} at insn {relo.insn_off} of an anonymous type "
            "(libbpf cannot match anonymous types either)",
            section=local.section,
        )
    wanted = essential_name(local_type.name)
    chosen: tuple[CoreResult, _Spec] | None = None
    for cand in target.types:
        if not cand.name or not _kind_compat(cand, local_type):
            continue
        if essential_name(cand.name) != wanted:
            continue
        cand_spec = _spec_match(local_spec, target, cand.id)
        if cand_spec is None:
            continue
        res = _calc(relo, local_spec, cand_spec)
        if chosen is None:
            chosen = (res, cand_spec)
            continue
        first, first_spec = chosen
        if cand_spec.bit_offset != first_spec.bit_offset:
            raise BtfError(
                f"CO-RE relocation at insn {relo.insn_off}: {local_spec.describe()} is ambiguous "
                f"(bit offset {first_spec.bit_offset} in [{first_spec.root_id}], "
                f"{cand_spec.bit_offset} in [{cand.id}])",
                section=local.section,
            )
        if res.poison != first.poison or res.target_value != first.target_value:
            raise BtfError(
                f"CO-RE relocation at insn {relo.insn_off}: {local_spec.describe()} is ambiguous "
                f"(value {first.target_value} from [{first_spec.root_id}], "
                f"{res.target_value} from [{cand.id}])",
                section=local.section,
            )
    if chosen is not None:
        return chosen[0]
    return _calc(relo, local_spec, None)

"""C declarators for BTF types: `int (*op)(int, int)`, `char name[8]`, `struct foo *const p`.

Shared by `Btf.type_name` (error messages, `inspect`) and `dump_c`, which passes its own
spelling for anonymous structs/unions/enums so their bodies are printed inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pybpf.btf.types import MAX_DEPTH, BtfType, Kind
from pybpf.errors import BtfError

if TYPE_CHECKING:
    from pybpf.btf.types import Btf

BaseName = Callable[[BtfType], str]

_QUALIFIERS = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}


def plain_base_name(t: BtfType) -> str:
    """How a type with no declarator of its own is spelled."""
    if t.kind is Kind.VOID:
        return "void"
    if t.kind in (Kind.STRUCT, Kind.UNION):
        keyword = t.kind.name.lower()
        return f"{keyword} {t.name}" if t.name else f"{keyword} {{...}}"
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return f"enum {t.name}" if t.name else "enum {...}"
    if t.kind is Kind.FWD:
        return f"{'union' if t.kflag else 'struct'} {t.name}"
    return t.name


def declaration(btf: Btf, type_id: int, name: str, base_name: BaseName = plain_base_name) -> str:
    """`type_id` declared as `name` (an empty name gives the abstract type, e.g. `int[4]`)."""
    return _declare(btf, type_id, name, base_name, 0)


def _join(base: str, inner: str) -> str:
    if not inner:
        return base
    if inner.startswith("["):
        return base + inner
    return f"{base} {inner}"


def _declare(btf: Btf, type_id: int, inner: str, base_name: BaseName, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise BtfError(f"type [{type_id}] nests deeper than {MAX_DEPTH}", section=btf.section)
    t = btf[type_id]
    kind = t.kind
    if kind is Kind.PTR:
        target = btf[t.type_id]
        inner = "*" + inner
        if target.kind in (Kind.ARRAY, Kind.FUNC_PROTO):
            inner = f"({inner})"
        return _declare(btf, t.type_id, inner, base_name, depth + 1)
    if kind in _QUALIFIERS:
        word = _QUALIFIERS[kind]
        if _points(btf, t.type_id):
            return _declare(btf, t.type_id, f"{word} {inner}".strip(), base_name, depth + 1)
        return f"{word} {_declare(btf, t.type_id, inner, base_name, depth + 1)}"
    if kind is Kind.TYPE_TAG:
        return _declare(btf, t.type_id, inner, base_name, depth + 1)
    if kind is Kind.ARRAY and t.array is not None:
        return _declare(btf, t.array[0], f"{inner}[{t.array[2]}]", base_name, depth + 1)
    if kind is Kind.FUNC_PROTO:
        params = [
            "..."
            if p.type_id == 0 and i == len(t.params) - 1 and i
            else _declare(btf, p.type_id, p.name, base_name, depth + 1)
            for i, p in enumerate(t.params)
        ]
        inner = f"{inner}({', '.join(params) or 'void'})"
        return _declare(btf, t.type_id, inner, base_name, depth + 1)
    if kind is Kind.FUNC:
        return _declare(btf, t.type_id, inner or t.name, base_name, depth + 1)
    if kind is Kind.VAR:
        return _declare(btf, t.type_id, inner or t.name, base_name, depth + 1)
    if kind is Kind.DECL_TAG:
        return f'__attribute__((btf_decl_tag("{t.name}")))'
    if kind is Kind.DATASEC:
        return _join(t.name, inner)
    return _join(base_name(t), inner)


def _points(btf: Btf, type_id: int) -> bool:
    """Whether a qualifier applies to a pointer (and so is written after its `*`)."""
    t = btf[type_id]
    for _ in range(MAX_DEPTH):
        if t.kind not in _QUALIFIERS and t.kind is not Kind.TYPE_TAG:
            return t.kind is Kind.PTR
        t = btf[t.type_id]
    return False

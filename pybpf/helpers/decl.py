"""The declaration vocabulary for helpers and kfuncs, and the immutable HelperSet.

Place in the pipeline: the single source of truth the verifier reads signatures from, the
interpreter and JIT bind implementations from, and the disassembler takes names from. A
:class:`HelperDecl` is one helper (kernel id, name, return kind, argument kinds in the kernel's
``ARG_*`` vocabulary, flags, the program types that may call it, the implementation); a
:class:`KfuncDecl` is one kfunc, named by its BTF name. A :class:`HelperSet` is a plain value:
users extend it with :meth:`HelperSet.with_` and get a new set; nothing registers itself by
being imported.

An implementation is ``impl(run, r1, r2, r3, r4, r5) -> int`` where ``run`` is the
:class:`pybpf.helpers.context.RunContext` of the current run; it may return a negative errno,
which :func:`pybpf.helpers.bind.bind` turns into the 64-bit two's complement r0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntFlag
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pybpf.errors import LinkError
from pybpf.uapi import BpfProgType

if TYPE_CHECKING:
    from pybpf.helpers.context import RunContext

Impl = Callable[["RunContext", int, int, int, int, int], int]


class ArgType(Enum):
    """The base of a helper argument type (``enum bpf_arg_type`` without its modifier bits)."""

    DONTCARE = "ARG_DONTCARE"
    ANYTHING = "ARG_ANYTHING"
    CONST_MAP_PTR = "ARG_CONST_MAP_PTR"
    PTR_TO_MAP_KEY = "ARG_PTR_TO_MAP_KEY"
    PTR_TO_MAP_VALUE = "ARG_PTR_TO_MAP_VALUE"
    PTR_TO_MEM = "ARG_PTR_TO_MEM"
    PTR_TO_UNINIT_MEM = "ARG_PTR_TO_UNINIT_MEM"
    CONST_SIZE = "ARG_CONST_SIZE"
    CONST_SIZE_OR_ZERO = "ARG_CONST_SIZE_OR_ZERO"
    CONST_ALLOC_SIZE_OR_ZERO = "ARG_CONST_ALLOC_SIZE_OR_ZERO"
    PTR_TO_CTX = "ARG_PTR_TO_CTX"
    PTR_TO_FUNC = "ARG_PTR_TO_FUNC"
    PTR_TO_STACK = "ARG_PTR_TO_STACK"
    PTR_TO_ALLOC_MEM = "ARG_PTR_TO_ALLOC_MEM"  # ARG_PTR_TO_RINGBUF_MEM in older kernels
    PTR_TO_SPIN_LOCK = "ARG_PTR_TO_SPIN_LOCK"
    PTR_TO_TIMER = "ARG_PTR_TO_TIMER"
    PTR_TO_LONG = "ARG_PTR_TO_LONG"
    PTR_TO_INT = "ARG_PTR_TO_INT"
    PTR_TO_CONST_STR = "ARG_PTR_TO_CONST_STR"
    PTR_TO_BTF_ID = "ARG_PTR_TO_BTF_ID"
    PTR_TO_SOCK_COMMON = "ARG_PTR_TO_SOCK_COMMON"
    PTR_TO_SOCKET = "ARG_PTR_TO_SOCKET"
    PTR_TO_DYNPTR = "ARG_PTR_TO_DYNPTR"


class ArgMod(IntFlag):
    """Modifier bits the kernel ORs into an argument type (``PTR_MAYBE_NULL``, ...)."""

    NONE = 0
    PTR_MAYBE_NULL = 1 << 0
    MEM_RDONLY = 1 << 1
    MEM_UNINIT = 1 << 2
    MEM_ALLOC = 1 << 3
    MEM_FIXED_SIZE = 1 << 4
    OBJ_RELEASE = 1 << 5


@dataclass(frozen=True, slots=True)
class ArgKind:
    """One argument's type: a base plus modifiers, e.g. ``ARG_PTR_TO_MEM | MEM_RDONLY``."""

    base: ArgType
    mods: ArgMod = ArgMod.NONE

    def __or__(self, mod: ArgMod) -> ArgKind:
        return ArgKind(self.base, self.mods | mod)

    @property
    def maybe_null(self) -> bool:
        return bool(self.mods & ArgMod.PTR_MAYBE_NULL)

    @property
    def is_size(self) -> bool:
        return self.base in (
            ArgType.CONST_SIZE,
            ArgType.CONST_SIZE_OR_ZERO,
            ArgType.CONST_ALLOC_SIZE_OR_ZERO,
        )

    def __str__(self) -> str:
        names = [self.base.value] + [m.name for m in ArgMod if m and self.mods & m and m.name]
        return " | ".join(names)


# The kernel's spellings, so declarations read like the kernel's bpf_func_proto tables.
ARG_ANYTHING = ArgKind(ArgType.ANYTHING)
ARG_CONST_MAP_PTR = ArgKind(ArgType.CONST_MAP_PTR)
ARG_PTR_TO_MAP_KEY = ArgKind(ArgType.PTR_TO_MAP_KEY)
ARG_PTR_TO_MAP_VALUE = ArgKind(ArgType.PTR_TO_MAP_VALUE)
ARG_PTR_TO_MEM = ArgKind(ArgType.PTR_TO_MEM)
ARG_PTR_TO_UNINIT_MEM = ArgKind(ArgType.PTR_TO_UNINIT_MEM)
ARG_CONST_SIZE = ArgKind(ArgType.CONST_SIZE)
ARG_CONST_SIZE_OR_ZERO = ArgKind(ArgType.CONST_SIZE_OR_ZERO)
ARG_CONST_ALLOC_SIZE_OR_ZERO = ArgKind(ArgType.CONST_ALLOC_SIZE_OR_ZERO)
ARG_PTR_TO_CTX = ArgKind(ArgType.PTR_TO_CTX)
ARG_PTR_TO_FUNC = ArgKind(ArgType.PTR_TO_FUNC)
ARG_PTR_TO_STACK = ArgKind(ArgType.PTR_TO_STACK)
ARG_PTR_TO_ALLOC_MEM = ArgKind(ArgType.PTR_TO_ALLOC_MEM)
ARG_PTR_TO_RINGBUF_MEM = ARG_PTR_TO_ALLOC_MEM | ArgMod.MEM_ALLOC | ArgMod.OBJ_RELEASE
ARG_PTR_TO_SPIN_LOCK = ArgKind(ArgType.PTR_TO_SPIN_LOCK)
ARG_PTR_TO_TIMER = ArgKind(ArgType.PTR_TO_TIMER)
ARG_PTR_TO_LONG = ArgKind(ArgType.PTR_TO_LONG)
ARG_PTR_TO_INT = ArgKind(ArgType.PTR_TO_INT)
ARG_PTR_TO_CONST_STR = ArgKind(ArgType.PTR_TO_CONST_STR)
ARG_PTR_TO_BTF_ID = ArgKind(ArgType.PTR_TO_BTF_ID)
ARG_PTR_TO_MEM_OR_NULL = ARG_PTR_TO_MEM | ArgMod.PTR_MAYBE_NULL
ARG_PTR_TO_CTX_OR_NULL = ARG_PTR_TO_CTX | ArgMod.PTR_MAYBE_NULL
ARG_PTR_TO_STACK_OR_NULL = ARG_PTR_TO_STACK | ArgMod.PTR_MAYBE_NULL
MEM_RDONLY = ArgMod.MEM_RDONLY
PTR_MAYBE_NULL = ArgMod.PTR_MAYBE_NULL


class RetKind(Enum):
    """What a helper returns (``enum bpf_return_type``)."""

    INTEGER = "RET_INTEGER"
    VOID = "RET_VOID"
    PTR_TO_MAP_VALUE = "RET_PTR_TO_MAP_VALUE"
    PTR_TO_MAP_VALUE_OR_NULL = "RET_PTR_TO_MAP_VALUE_OR_NULL"
    PTR_TO_SOCKET_OR_NULL = "RET_PTR_TO_SOCKET_OR_NULL"
    PTR_TO_TCP_SOCK_OR_NULL = "RET_PTR_TO_TCP_SOCK_OR_NULL"
    PTR_TO_SOCK_COMMON_OR_NULL = "RET_PTR_TO_SOCK_COMMON_OR_NULL"
    PTR_TO_ALLOC_MEM_OR_NULL = "RET_PTR_TO_ALLOC_MEM_OR_NULL"  # RET_PTR_TO_RINGBUF_MEM_OR_NULL
    PTR_TO_DYNPTR_MEM_OR_NULL = "RET_PTR_TO_DYNPTR_MEM_OR_NULL"
    PTR_TO_BTF_ID_OR_NULL = "RET_PTR_TO_BTF_ID_OR_NULL"
    PTR_TO_BTF_ID = "RET_PTR_TO_BTF_ID"
    PTR_TO_MEM_OR_BTF_ID = "RET_PTR_TO_MEM_OR_BTF_ID"
    PTR_TO_MEM_OR_BTF_ID_OR_NULL = "RET_PTR_TO_MEM_OR_BTF_ID_OR_NULL"

    @property
    def maybe_null(self) -> bool:
        return self.value.endswith("_OR_NULL")


RET_PTR_TO_RINGBUF_MEM_OR_NULL = RetKind.PTR_TO_ALLOC_MEM_OR_NULL


class HelperFlag(IntFlag):
    """Properties of a helper's or kfunc's proto beyond its signature.

    The ``KF_*`` members are the kernel's kfunc flags (``BTF_ID_FLAGS``); ``GPL_ONLY``,
    ``PKT_ACCESS`` and ``CHANGES_PKT_DATA`` are ``bpf_func_proto`` fields and the verifier's
    ``bpf_helper_changes_pkt_data`` list; ``MAY_SLEEP`` is the helper-side sleepable mark.
    """

    NONE = 0
    GPL_ONLY = 1 << 0
    PKT_ACCESS = 1 << 1
    CHANGES_PKT_DATA = 1 << 2
    MAY_SLEEP = 1 << 3
    KF_ACQUIRE = 1 << 8
    KF_RELEASE = 1 << 9
    KF_RET_NULL = 1 << 10
    KF_TRUSTED_ARGS = 1 << 11
    KF_SLEEPABLE = 1 << 12
    KF_DESTRUCTIVE = 1 << 13
    KF_RCU = 1 << 14
    KF_ITER_NEW = 1 << 15
    KF_ITER_NEXT = 1 << 16
    KF_ITER_DESTROY = 1 << 17
    KF_IMPLICIT_ARGS = 1 << 18


class KfuncArgKind(Enum):
    """How the kernel classifies a kfunc argument from its BTF type and name suffix."""

    SCALAR = "KF_ARG_PTR_TO_SCALAR"  # plain integer argument (not a pointer at all)
    PTR_TO_CTX = "KF_ARG_PTR_TO_CTX"
    PTR_TO_MAP = "KF_ARG_PTR_TO_MAP"  # ``p__map`` suffix
    PTR_TO_MEM = "KF_ARG_PTR_TO_MEM"
    PTR_TO_MEM_SIZE = "KF_ARG_PTR_TO_MEM_SIZE"
    PTR_TO_BTF_ID = "KF_ARG_PTR_TO_BTF_ID"
    PTR_TO_CALLBACK = "KF_ARG_PTR_TO_CALLBACK"
    PTR_TO_WORKQUEUE = "KF_ARG_PTR_TO_WORKQUEUE"
    PTR_TO_TIMER = "KF_ARG_PTR_TO_TIMER"
    PTR_TO_DYNPTR = "KF_ARG_PTR_TO_DYNPTR"
    PTR_TO_ITER = "KF_ARG_PTR_TO_ITER"
    PROG_AUX = "KF_ARG_PROG_AUX"  # ``aux__prog`` / implicit: filled in by the verifier
    CONST = "KF_ARG_CONST"  # ``__k`` suffix: must be a known constant


ProgTypes = frozenset[BpfProgType] | None


def _prog_types(value: Iterable[BpfProgType] | None) -> ProgTypes:
    return None if value is None else frozenset(value)


@dataclass(frozen=True, slots=True)
class HelperDecl:
    """One helper: the kernel's id (explicit), name, signature, flags, callers, implementation.

    ``prog_types`` None means every program type may call it (the kernel's
    ``bpf_base_func_proto`` helpers, judged for a privileged loader). ``id`` None is allowed
    for helpers a user adds that have no kernel number; they can only be called by name
    through a custom loader, so :class:`HelperSet` keys them by name only.
    """

    id: int | None
    name: str
    ret: RetKind
    args: tuple[ArgKind, ...]
    impl: Impl
    flags: HelperFlag = HelperFlag.NONE
    prog_types: ProgTypes = None
    doc: str = ""

    def __post_init__(self) -> None:
        if len(self.args) > 5:
            raise LinkError(f"helper {self.name}: {len(self.args)} arguments, at most 5")
        if self.id is not None and self.id < 0:
            raise LinkError(f"helper {self.name}: negative id {self.id}")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "prog_types", _prog_types(self.prog_types))

    @property
    def gpl_only(self) -> bool:
        return bool(self.flags & HelperFlag.GPL_ONLY)

    def allowed_in(self, prog_type: BpfProgType) -> bool:
        return self.prog_types is None or prog_type in self.prog_types


@dataclass(frozen=True, slots=True)
class KfuncArg:
    """One kfunc parameter: its BTF name and how the verifier classifies it."""

    name: str
    kind: KfuncArgKind
    type_name: str = ""


@dataclass(frozen=True, slots=True)
class KfuncDecl:
    """One kfunc, resolved by its BTF name (``call`` with src_reg BPF_PSEUDO_KFUNC_CALL).

    ``aliases`` are other BTF names bound to the same declaration (a kfunc renamed across
    kernel versions, e.g. ``bpf_wq_set_callback_impl`` and ``bpf_wq_set_callback``).
    """

    btf_name: str
    ret: RetKind
    args: tuple[KfuncArg, ...]
    impl: Impl
    flags: HelperFlag = HelperFlag.NONE
    prog_types: ProgTypes = None
    aliases: tuple[str, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if len(self.args) > 5:
            raise LinkError(f"kfunc {self.btf_name}: {len(self.args)} arguments, at most 5")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "prog_types", _prog_types(self.prog_types))

    @property
    def name(self) -> str:
        return self.btf_name

    @property
    def names(self) -> tuple[str, ...]:
        return (self.btf_name, *self.aliases)

    def allowed_in(self, prog_type: BpfProgType) -> bool:
        return self.prog_types is None or prog_type in self.prog_types


Decl = HelperDecl | KfuncDecl


@dataclass(frozen=True, slots=True)
class HelperSet:
    """An immutable collection of helper and kfunc declarations.

    ``by_id`` maps kernel helper ids to helpers; ``by_name`` maps every name (helper names,
    kfunc BTF names and their aliases) to its declaration. :meth:`with_` returns a new set in
    which the given declarations replace any with the same id or name.
    """

    helpers: tuple[HelperDecl, ...] = ()
    kfuncs: tuple[KfuncDecl, ...] = ()
    _by_id: Mapping[int, HelperDecl] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, Decl] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[int, HelperDecl] = {}
        by_name: dict[str, Decl] = {}
        for h in self.helpers:
            if h.id is not None:
                if h.id in by_id:
                    other = by_id[h.id].name
                    raise LinkError(f"helper id {h.id} declared twice ({other}, {h.name})")
                by_id[h.id] = h
            if h.name in by_name:
                raise LinkError(f"helper name {h.name!r} declared twice")
            by_name[h.name] = h
        for k in self.kfuncs:
            for n in k.names:
                if n in by_name:
                    raise LinkError(f"kfunc name {n!r} declared twice")
                by_name[n] = k
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @classmethod
    def of(cls, *decls: Decl) -> HelperSet:
        return cls().with_(*decls)

    @property
    def by_id(self) -> Mapping[int, HelperDecl]:
        return self._by_id

    @property
    def by_name(self) -> Mapping[str, Decl]:
        return self._by_name

    def with_(self, *decls: Decl) -> HelperSet:
        """A new set with ``decls`` added; each replaces a declaration of the same id or name."""
        helpers = list(self.helpers)
        kfuncs = list(self.kfuncs)
        for d in decls:
            if isinstance(d, HelperDecl):
                helpers = [
                    h for h in helpers if h.name != d.name and (d.id is None or h.id != d.id)
                ]
                kfuncs = [k for k in kfuncs if d.name not in k.names]
                helpers.append(d)
            elif isinstance(d, KfuncDecl):
                kfuncs = [k for k in kfuncs if not set(k.names) & set(d.names)]
                helpers = [h for h in helpers if h.name not in d.names]
                kfuncs.append(d)
            else:
                raise LinkError(f"not a helper or kfunc declaration: {d!r}")
        return HelperSet(tuple(helpers), tuple(kfuncs))

    def without(self, *names: str) -> HelperSet:
        """A new set without the declarations named (helper names or kfunc BTF names)."""
        gone = set(names)
        return HelperSet(
            tuple(h for h in self.helpers if h.name not in gone),
            tuple(k for k in self.kfuncs if not set(k.names) & gone),
        )

    def helper(self, helper_id: int) -> HelperDecl:
        try:
            return self._by_id[helper_id]
        except KeyError:
            raise LinkError(f"unknown helper id {helper_id}") from None

    def kfunc(self, name: str) -> KfuncDecl:
        d = self._by_name.get(name)
        if not isinstance(d, KfuncDecl):
            raise LinkError(f"unknown kfunc {name!r}")
        return d

    def allowed(self, prog_type: BpfProgType) -> tuple[Decl, ...]:
        """Every declaration a program of ``prog_type`` may call."""
        return tuple(d for d in (*self.helpers, *self.kfuncs) if d.allowed_in(prog_type))

    def __iter__(self) -> Iterator[Decl]:
        yield from self.helpers
        yield from self.kfuncs

    def __len__(self) -> int:
        return len(self.helpers) + len(self.kfuncs)

    def __contains__(self, key: Any) -> bool:
        if isinstance(key, int):
            return key in self._by_id
        return key in self._by_name

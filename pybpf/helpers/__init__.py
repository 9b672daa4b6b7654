"""Helpers, kfuncs and program types: declarations, implementations, run state, contexts.

Place in the pipeline: above ``maps`` (helpers call the map program face) and below
``verifier`` / ``vm`` (which read the declarations and call the implementations). The public
pieces:

- :mod:`~pybpf.helpers.decl`: ``HelperDecl``, ``KfuncDecl``, ``ArgKind`` / ``RetKind`` /
  ``HelperFlag`` / ``KfuncArgKind``, and the immutable ``HelperSet``;
- :data:`DEFAULT_HELPERS`: every helper and kfunc pybpf implements;
- :class:`RunContext` / :class:`Environment` / :class:`SharedState` / :class:`MapTable`:
  the run state helpers work on; :func:`bind` / :func:`bind_kfuncs`: the r1..r5 closures;
- :mod:`~pybpf.helpers.progtypes`: ``PROG_TYPES`` and :func:`build_context`.
"""

from pybpf.helpers.bind import HelperFn, bind, bind_by_name, bind_kfuncs
from pybpf.helpers.context import (
    AsyncEvent,
    Environment,
    MapTable,
    PacketState,
    RedirectRecord,
    RunContext,
    SharedState,
    TailCallRequest,
)
from pybpf.helpers.decl import (
    ArgKind,
    ArgMod,
    ArgType,
    HelperDecl,
    HelperFlag,
    HelperSet,
    KfuncArg,
    KfuncArgKind,
    KfuncDecl,
    RetKind,
)
from pybpf.helpers.progtypes import (
    BY_NAME,
    PROG_TYPES,
    BuiltContext,
    CtxField,
    CtxLayout,
    ProgTypeInfo,
    build_context,
    prog_type_info,
)
from pybpf.helpers.table import DEFAULT_HELPERS

__all__ = [
    "BY_NAME",
    "DEFAULT_HELPERS",
    "PROG_TYPES",
    "ArgKind",
    "ArgMod",
    "ArgType",
    "AsyncEvent",
    "BuiltContext",
    "CtxField",
    "CtxLayout",
    "Environment",
    "HelperDecl",
    "HelperFlag",
    "HelperFn",
    "HelperSet",
    "KfuncArg",
    "KfuncArgKind",
    "KfuncDecl",
    "MapTable",
    "PacketState",
    "ProgTypeInfo",
    "RedirectRecord",
    "RetKind",
    "RunContext",
    "SharedState",
    "TailCallRequest",
    "bind",
    "bind_by_name",
    "bind_kfuncs",
    "build_context",
    "prog_type_info",
]

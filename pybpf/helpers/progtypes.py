"""The program-type table: context layouts, allowed helpers, return ranges, and test-run contexts.

Place in the pipeline: the verifier reads ``PROG_TYPES`` (which ctx bytes a type may read or
write, which u32 fields are packet pointers, the return range); the object layer calls
:func:`build_context` before a run and :meth:`BuiltContext.data_out` /
:meth:`BuiltContext.ctx_out` after it. Allowed helpers are not restated here: they derive from
the declarations' ``prog_types`` (:meth:`ProgTypeInfo.helpers`).

Offsets are the UAPI header's (include/uapi/linux/bpf.h, asm/ptrace.h for x86-64
``pt_regs``). Contexts are laid out as net/bpf/test_run.c lays them out (Linux 6.18):

- xdp: a 4096-byte frame; 256 bytes of headroom (XDP_PACKET_HEADROOM, less the metadata a
  user ctx asks for), the packet, and 320 bytes (the x86-64 skb_shared_info) reserved at the
  end; the first 40 bytes (``struct xdp_frame``) are never reachable by adjust_head/meta.
  A packet longer than that linear room (3520 bytes with no metadata) continues in up to
  17 page-sized fragments (multi-buffer XDP), whatever the program's xdp.frags flag.
  ``data_out`` starts at ``data_meta`` and ends with the fragments; a user ctx gives
  ``data`` = metadata length and ``data_end`` (the whole length), and gets them back as
  offsets from ``data_meta``.
- __sk_buff types: 64 bytes of headroom (NET_SKB_PAD); ``protocol`` and ``pkt_type`` come
  from the Ethernet header as eth_type_trans sets them on the loopback device; tc programs
  see the packet from the Ethernet header, socket_filter and cgroup_skb from the network
  header (their ``data_out`` gets 14 zero bytes in front, as the kernel pushes a zeroed MAC
  header back), and cgroup_skb's ``data_end`` reads 0 because test_run never computes it.
  Only the fields test_run accepts may be non-zero in a user ctx; ``ctx_out`` carries back
  the fields test_run copies back.
- raw_tracepoint / tracing / lsm / struct_ops: the ctx is the u64 argument array (at most
  12); syscall: the user's ctx bytes, copied back after the run; kprobe, tracepoint and
  perf_event (which the kernel cannot test-run) get the user's bytes in their UAPI struct.

Virtual addresses fit the u32 packet-pointer fields, so ``data`` / ``data_end`` /
``data_meta`` hold real pointers during the run and no context rewriting is needed.
"""

from __future__ import annotations

import errno
import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from pybpf.errors import RunInputError, UnsupportedError
from pybpf.helpers.context import Frag, PacketState, RunContext
from pybpf.helpers.ctxaccess import ctx_accesses, max_ctx_offset
from pybpf.helpers.decl import Decl, HelperSet
from pybpf.helpers.table import DEFAULT_HELPERS
from pybpf.isa import OPS, Instruction, OpSpec, Shape
from pybpf.memory import Arena, Region
from pybpf.uapi import ETH_HLEN, XDP_METADATA_MAX
from pybpf.uapi import BpfProgType as T

PAGE_SIZE = 4096
XDP_PACKET_HEADROOM = 256
XDP_FRAME_SIZE = 40  # sizeof(struct xdp_frame) on x86-64
SKB_SHARED_INFO = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
NET_SKB_PAD = 64
MAX_SKB_FRAGS = 17  # CONFIG_MAX_SKB_FRAGS default
MAX_BPF_FUNC_ARGS = 12
U16_MAX = 0xFFFF
NO_QUEUE_MAPPING = U16_MAX  # skb->queue_mapping's "none"; a program cannot store it or above
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535
LOOPBACK_IFINDEX = 1
TCP_CLOSE = 7
AF_INET, AF_INET6 = 2, 10
ETH_P_IP, ETH_P_IPV6, ETH_P_802_3, ETH_P_802_2 = 0x0800, 0x86DD, 0x0001, 0x0004
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST = 0, 1, 2, 3

SKB_TYPES = frozenset({T.SOCKET_FILTER, T.SCHED_CLS, T.SCHED_ACT, T.CGROUP_SKB})
_SF, _TC, _CG = (
    frozenset({T.SOCKET_FILTER}),
    frozenset({T.SCHED_CLS, T.SCHED_ACT}),
    frozenset({T.CGROUP_SKB}),
)


@dataclass(frozen=True, slots=True)
class CtxField:
    """One context field: where it is, who may read / write it, what it points to.

    ``readers`` / ``writers`` None means every program type using the layout; ``packet`` is
    "data", "data_end" or "data_meta" for the u32 fields holding packet pointers;
    ``pointer`` marks 64-bit pointer fields (``__sk_buff.sk``, ``flow_keys``).
    ``kernel_size`` is the width of the kernel field behind a UAPI slot when it is narrower
    (net/core/filter.c's convert_ctx_access loads and stores that many bytes of it);
    ``store_limit`` a value from which the kernel drops a store (queue_mapping).
    """

    name: str
    offset: int
    size: int
    readers: frozenset[T] | None = None
    writers: frozenset[T] = frozenset()
    packet: str | None = None
    pointer: bool = False
    kernel_size: int | None = None
    store_limit: int | None = None

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def stored(self) -> int:
        """How many bytes of the field the kernel keeps."""
        return self.kernel_size or self.size

    def readable_by(self, prog_type: T) -> bool:
        return self.readers is None or prog_type in self.readers

    def writable_by(self, prog_type: T) -> bool:
        return prog_type in self.writers


@dataclass(frozen=True, slots=True)
class CtxLayout:
    """A UAPI context struct: its name, size and fields (sorted by offset)."""

    struct: str
    size: int
    fields: tuple[CtxField, ...]
    by_name: Mapping[str, CtxField] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(sorted(self.fields, key=lambda f: f.offset)))
        object.__setattr__(self, "by_name", MappingProxyType({f.name: f for f in self.fields}))

    def field_at(self, offset: int, size: int = 1) -> CtxField | None:
        """The field containing all of ``[offset, offset + size)``, or None."""
        for f in self.fields:
            if f.offset <= offset and offset + size <= f.end:
                return f
        return None

    @property
    def packet_fields(self) -> dict[str, CtxField]:
        return {f.packet: f for f in self.fields if f.packet}


def _u32s(rows: Iterable[tuple[str, int]], **kw: Any) -> list[CtxField]:
    return [CtxField(name, off, 4, **kw) for name, off in rows]


XDP_MD = CtxLayout(
    "xdp_md",
    24,
    (
        CtxField("data", 0, 4, packet="data"),
        CtxField("data_end", 4, 4, packet="data_end"),
        CtxField("data_meta", 8, 4, packet="data_meta"),
        CtxField("ingress_ifindex", 12, 4),
        CtxField("rx_queue_index", 16, 4),
        CtxField("egress_ifindex", 20, 4),
    ),
)

SK_BUFF = CtxLayout(
    "__sk_buff",
    192,
    (
        CtxField("len", 0, 4),
        CtxField("pkt_type", 4, 4),
        CtxField("mark", 8, 4, writers=_TC | _CG),
        CtxField("queue_mapping", 12, 4, writers=_TC, kernel_size=2, store_limit=NO_QUEUE_MAPPING),
        CtxField("protocol", 16, 4, kernel_size=2),
        CtxField("vlan_present", 20, 4),
        CtxField("vlan_tci", 24, 4, kernel_size=2),
        CtxField("vlan_proto", 28, 4, kernel_size=2),
        CtxField("priority", 32, 4, writers=_TC | _CG),
        *_u32s((("ingress_ifindex", 36), ("ifindex", 40))),
        CtxField("tc_index", 44, 4, writers=_TC, kernel_size=2),
        CtxField("cb", 48, 20, writers=_SF | _TC | _CG),
        CtxField("hash", 68, 4),
        CtxField("tc_classid", 72, 4, readers=_TC, writers=_TC, kernel_size=2),
        CtxField("data", 76, 4, readers=_TC | _CG, packet="data"),
        CtxField("data_end", 80, 4, readers=_TC | _CG, packet="data_end"),
        CtxField("napi_id", 84, 4),
        *_u32s((("family", 88), ("remote_ip4", 92), ("local_ip4", 96)), readers=_CG),
        CtxField("remote_ip6", 100, 16, readers=_CG),
        CtxField("local_ip6", 116, 16, readers=_CG),
        *_u32s((("remote_port", 132), ("local_port", 136)), readers=_CG),
        CtxField("data_meta", 140, 4, readers=_TC, packet="data_meta"),
        CtxField("flow_keys", 144, 8, readers=frozenset({T.FLOW_DISSECTOR}), pointer=True),
        CtxField("tstamp", 152, 8, readers=_TC | _CG, writers=_TC | _CG),
        CtxField("wire_len", 160, 4, readers=_TC),
        CtxField("gso_segs", 164, 4, kernel_size=2),
        CtxField("sk", 168, 8, pointer=True),
        CtxField("gso_size", 176, 4, kernel_size=2),
        CtxField("tstamp_type", 180, 1, readers=_TC),
        CtxField("hwtstamp", 184, 8, readers=_TC | _CG),
    ),
)

BPF_SOCK_SIZE = 80  # struct bpf_sock, read through __sk_buff.sk

_PT_REGS_NAMES = [
    "r15",
    "r14",
    "r13",
    "r12",
    "rbp",
    "rbx",
    "r11",
    "r10",
    "r9",
    "r8",
    "rax",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "orig_rax",
    "rip",
    "cs",
    "eflags",
    "rsp",
    "ss",
]
PT_REGS = CtxLayout(
    "pt_regs", 168, tuple(CtxField(n, 8 * i, 8) for i, n in enumerate(_PT_REGS_NAMES))
)
PERF_EVENT_DATA = CtxLayout(
    "bpf_perf_event_data",
    184,
    (*PT_REGS.fields, CtxField("sample_period", 168, 8), CtxField("addr", 176, 8)),
)
U64_ARGS = CtxLayout(
    "u64[]", 8 * MAX_BPF_FUNC_ARGS, tuple(CtxField(f"arg{i}", 8 * i, 8) for i in range(12))
)


@dataclass(frozen=True, slots=True)
class ProgTypeInfo:
    """One program type: enum value, name, ctx layout, return range, how a run builds its ctx.

    ``name`` is the kernel enum's lower-case suffix, as libbpf and bpftool print it. ``ctx``
    None means the ctx is opaque bytes (tracepoint records, syscall arguments). ``retval``
    is the range the verifier enforces on r0 at exit for the type's default attach type, or
    None when it enforces none. ``run`` names the builder :func:`build_context` uses:
    "xdp", "skb", "args" (u64 array), "bytes" (user ctx bytes) or None (cannot run).
    """

    prog_type: T
    ctx: CtxLayout | None
    retval: tuple[int, int] | None
    run: str | None

    @property
    def name(self) -> str:
        return self.prog_type.short

    def helpers(self, helper_set: HelperSet | None = None) -> tuple[Decl, ...]:
        """The helpers and kfuncs this type may call, derived from the declarations."""
        return (helper_set or DEFAULT_HELPERS).allowed(self.prog_type)


_ZERO_ONE = (0, 1)

PROG_TYPES: Mapping[T, ProgTypeInfo] = MappingProxyType(
    {
        info.prog_type: info
        for info in (
            ProgTypeInfo(T.SOCKET_FILTER, SK_BUFF, None, "skb"),
            ProgTypeInfo(T.KPROBE, PT_REGS, None, "bytes"),
            ProgTypeInfo(T.SCHED_CLS, SK_BUFF, None, "skb"),
            ProgTypeInfo(T.SCHED_ACT, SK_BUFF, None, "skb"),
            ProgTypeInfo(T.TRACEPOINT, None, None, "bytes"),
            ProgTypeInfo(T.XDP, XDP_MD, None, "xdp"),
            ProgTypeInfo(T.PERF_EVENT, PERF_EVENT_DATA, None, "bytes"),
            ProgTypeInfo(T.CGROUP_SKB, SK_BUFF, _ZERO_ONE, "skb"),
            ProgTypeInfo(T.CGROUP_SOCK, None, _ZERO_ONE, None),
            ProgTypeInfo(T.LWT_IN, SK_BUFF, None, None),
            ProgTypeInfo(T.LWT_OUT, SK_BUFF, None, None),
            ProgTypeInfo(T.LWT_XMIT, SK_BUFF, None, None),
            ProgTypeInfo(T.SOCK_OPS, None, _ZERO_ONE, None),
            ProgTypeInfo(T.SK_SKB, SK_BUFF, None, None),
            ProgTypeInfo(T.CGROUP_DEVICE, None, _ZERO_ONE, None),
            ProgTypeInfo(T.SK_MSG, None, None, None),
            ProgTypeInfo(T.RAW_TRACEPOINT, U64_ARGS, None, "args"),
            ProgTypeInfo(T.CGROUP_SOCK_ADDR, None, _ZERO_ONE, None),
            ProgTypeInfo(T.LWT_SEG6LOCAL, SK_BUFF, None, None),
            ProgTypeInfo(T.LIRC_MODE2, None, None, None),
            ProgTypeInfo(T.SK_REUSEPORT, None, None, None),
            ProgTypeInfo(T.FLOW_DISSECTOR, None, None, None),
            ProgTypeInfo(T.CGROUP_SYSCTL, None, _ZERO_ONE, None),
            ProgTypeInfo(T.RAW_TRACEPOINT_WRITABLE, U64_ARGS, None, "args"),
            ProgTypeInfo(T.CGROUP_SOCKOPT, None, _ZERO_ONE, None),
            ProgTypeInfo(T.TRACING, U64_ARGS, None, "args"),
            ProgTypeInfo(T.STRUCT_OPS, U64_ARGS, None, "args"),
            ProgTypeInfo(T.EXT, None, None, None),
            ProgTypeInfo(T.LSM, U64_ARGS, None, "args"),
            ProgTypeInfo(T.SK_LOOKUP, None, (0, 1), None),
            ProgTypeInfo(T.SYSCALL, None, None, "bytes"),
            ProgTypeInfo(T.NETFILTER, None, (0, 1), None),
        )
    }
)
BY_NAME: Mapping[str, ProgTypeInfo] = MappingProxyType({i.name: i for i in PROG_TYPES.values()})


def prog_type_info(prog_type: T | str) -> ProgTypeInfo:
    """The row for an enum member or a name ("xdp", "sched_cls", "BPF_PROG_TYPE_XDP", ...)."""
    if isinstance(prog_type, T):
        info = PROG_TYPES.get(prog_type)
    else:
        try:
            info = PROG_TYPES.get(T.from_short(prog_type))
        except ValueError:
            info = None
    if info is None:
        raise UnsupportedError("program type", str(prog_type))
    return info


def convert_ctx_accesses(insns: Sequence[Instruction], prog_type: T) -> list[Instruction]:
    """``insns`` with the ctx accesses :func:`ctx_accesses` finds rewritten where the kernel's
    field is narrower than its UAPI slot, as convert_ctx_access rewrites them: a load or
    store of the slot becomes one of ``kernel_size`` bytes at the same offset (loads
    zero-extend, stores keep the low bytes), and a constant store the kernel drops
    (``store_limit``) becomes a no-op jump. A register store at or above the limit is
    stored truncated (the kernel's rewrite adds a compare-and-skip instruction, which would
    move every later pc)."""
    layout = prog_type_info(prog_type).ctx
    narrow = {f.offset: f for f in layout.fields if f.kernel_size} if layout else {}
    if not narrow:
        return list(insns)
    accesses = ctx_accesses(insns)
    out = []
    pc = 0
    for insn in insns:
        access = accesses.get(pc)
        f = narrow.get(access.offset) if access is not None else None
        if access is not None and f is not None and f.stored < access.size:
            spec, limit = insn.spec, f.store_limit
            if spec.shape is Shape.ST and limit is not None and insn.imm >= limit:
                insn = Instruction(_JA.opcode)
            else:
                row = _row(spec.shape, spec.sem, 8 * f.stored)
                insn = replace(insn, opcode=row.opcode)
        out.append(insn)
        pc += insn.slots
    return out


def _row(shape: Shape, sem: str, width: int) -> OpSpec:
    return next(o for o in OPS if (o.shape, o.sem, o.width) == (shape, sem, width))


_JA = next(o for o in OPS if o.shape is Shape.JA)


# -- building contexts as BPF_PROG_TEST_RUN does ----------------------------------------------


@dataclass(slots=True)
class BuiltContext:
    """A ctx (and packet) laid out in the Arena for one run; read back and free afterwards.

    ``ctx_addr`` is what r1 holds at entry (0 for a NULL ctx). Call :meth:`attach` to hand
    the packet to a RunContext, :meth:`data_out` / :meth:`ctx_out` after the run, and
    :meth:`free` when done (regions go through the Arena's deferred free).
    """

    arena: Arena
    prog_type: T
    ctx_addr: int
    ctx_size: int
    regions: list[Region]
    packet: PacketState | None = None
    user_ctx: bytes | None = None
    l2: bool = True

    def attach(self, run: RunContext) -> None:
        run.packet = self.packet
        run.ctx_addr = self.ctx_addr
        run.prog_type = self.prog_type

    def ctx_bytes(self) -> bytes:
        return self.arena.read(self.ctx_addr, self.ctx_size) if self.ctx_size else b""

    def data_out(self) -> bytes | None:
        """The packet as BPF_PROG_TEST_RUN returns it in ``data_out`` (None without packet)."""
        p = self.packet
        if p is None:
            return None
        if self.prog_type is T.XDP:
            linear = self.arena.read(p.data_meta, p.data_end - p.data_meta)
            return linear + b"".join(self.arena.read(f.start, f.size) for f in p.frags)
        body = self.arena.read(p.data, p.data_end - p.data)
        return body if self.l2 else bytes(ETH_HLEN) + body

    def ctx_out(self) -> bytes | None:
        """The ctx as BPF_PROG_TEST_RUN returns it in ``ctx_out`` (None if none comes back)."""
        info = PROG_TYPES[self.prog_type]
        if info.run == "xdp":
            return self._xdp_ctx_out()
        if info.run == "skb":
            return self._skb_ctx_out()
        if info.run == "args" or self.ctx_size == 0:
            return None
        return self.ctx_bytes()

    def _xdp_ctx_out(self) -> bytes | None:
        if self.user_ctx is None or self.packet is None:
            return None
        p = self.packet
        out = bytearray(self.user_ctx)
        struct.pack_into("<II", out, 0, p.data - p.data_meta, p.data_end - p.data_meta)
        return bytes(out)

    def _skb_ctx_out(self) -> bytes | None:
        if self.user_ctx is None:
            return None
        live = self.ctx_bytes()
        out = bytearray(self.user_ctx)
        for name in _SKB_CTX_OUT:
            f = SK_BUFF.by_name[name]
            out[f.offset : f.end] = live[f.offset : f.end]
        return bytes(out)

    def free(self) -> None:
        for r in self.regions:
            self.arena.defer_free(r)
        self.regions.clear()


def _user_ctx(ctx: bytes | None, size: int) -> bytes | None:
    """bpf_ctx_init: bytes beyond ``size`` must be zero (E2BIG), shorter input is zero-padded."""
    if ctx is None:
        return None
    if any(ctx[size:]):
        raise RunInputError(errno.E2BIG, f"ctx has non-zero bytes beyond {size}")
    return bytes(ctx[:size]).ljust(size, b"\0")


# Types whose test_run (bpf_prog_test_run_syscall / _raw_tp) runs the program once on the
# caller's ctx bytes: it refuses a repeat count and a ctx shorter than the furthest ctx byte
# the program accesses (prog->aux->max_ctx_offset), both with EINVAL.
_ONE_SHOT_RUNS = frozenset({T.SYSCALL, T.RAW_TRACEPOINT})


def build_context(
    arena: Arena,
    prog_type: T | str,
    data: bytes | None = None,
    ctx: bytes | None = None,
    *,
    repeat: int = 1,
    insns: Sequence[Instruction] = (),
) -> BuiltContext:
    """Lay out the ctx (and packet) for one run of a ``prog_type`` program, as test_run does.

    ``repeat`` is the caller's run count (1 stands for the kernel's 0: one run); ``insns``
    the linked program, whose ctx accesses bound the ctx a syscall or raw_tracepoint run
    needs (see :mod:`pybpf.helpers.ctxaccess` for what the scan sees). Raises RunInputError
    for input the kernel refuses (with its errno) and UnsupportedError for program types or
    features no run can be built for.
    """
    info = prog_type_info(prog_type)
    if info.run == "xdp":
        return _build_xdp(arena, data, ctx)
    if info.run == "skb":
        return _build_skb(arena, info.prog_type, data, ctx)
    if info.run in ("args", "bytes"):
        if data:
            raise RunInputError(errno.EINVAL, f"{info.name} programs take no packet data")
        if info.prog_type in _ONE_SHOT_RUNS:
            if repeat > 1:
                raise RunInputError(errno.EINVAL, f"{info.name} test runs take no repeat count")
            reach = _max_ctx_offset(tuple(insns))
            if len(ctx or b"") < reach:
                raise RunInputError(
                    errno.EINVAL,
                    f"ctx of {len(ctx or b'')} bytes; the program accesses ctx up to {reach}",
                )
        return _build_bytes(arena, info, ctx or b"")
    raise UnsupportedError("test run", f"{info.name} programs")


@functools.lru_cache(maxsize=128)
def _max_ctx_offset(insns: tuple[Instruction, ...]) -> int:
    return max_ctx_offset(insns)


def _alloc(arena: Arena, size: int, kind: str, name: str) -> Region:
    return arena.alloc(max(size, 1), kind=kind, name=name, align=64)


def _build_xdp(arena: Arena, data: bytes | None, ctx: bytes | None) -> BuiltContext:
    data = data or b""
    size = len(data)
    user = _user_ctx(ctx, XDP_MD.size)
    headroom = XDP_PACKET_HEADROOM
    meta_sz = 0
    linear = size
    ingress = rx_queue = egress = 0
    if user is not None:
        d, d_end, d_meta, ingress, rx_queue, egress = struct.unpack("<6I", user)
        if d_meta or d_end != size or d > d_end:
            raise RunInputError(
                errno.EINVAL, "xdp_md: data_meta must be 0, data <= data_end == len"
            )
        if d & 3 or d > XDP_METADATA_MAX or d > headroom - XDP_FRAME_SIZE:
            raise RunInputError(errno.EINVAL, f"xdp_md: metadata length {d} invalid")
        meta_sz = d
        headroom -= meta_sz
    # test_run keeps what fits the page beside the headroom and the skb_shared_info tail
    # linear (metadata included) and puts the rest in page-sized fragments, for every
    # program (the xdp.frags flag only says the program copes with them).
    linear = min(size, PAGE_SIZE - headroom - SKB_SHARED_INFO)
    if linear < ETH_HLEN:
        raise RunInputError(errno.EINVAL, f"packet of {linear} bytes, at least 14")
    if user is not None:
        _check_xdp_rxq(ingress, rx_queue, egress)
    if -(-(size - linear) // PAGE_SIZE) > MAX_SKB_FRAGS:
        raise RunInputError(errno.ENOMEM, f"packet of {size} bytes needs over 17 fragments")
    frame = _alloc(arena, PAGE_SIZE, "packet", "xdp frame")
    ctx_region = _alloc(arena, XDP_MD.size, "ctx", "xdp_md")
    start = frame.start + headroom
    arena.write(start, data[:linear])
    regions = [frame, ctx_region]
    frags = []
    for at in range(linear, size, PAGE_SIZE):
        page = _alloc(arena, PAGE_SIZE, "packet", "xdp frag")
        chunk = data[at : at + PAGE_SIZE]
        arena.write(page.start, chunk)
        regions.append(page)
        frags.append(Frag(page.start, len(chunk)))
    packet = PacketState(
        region=frame,
        hard_start=frame.start,
        hard_end=frame.start + PAGE_SIZE - SKB_SHARED_INFO,
        data=start + meta_sz,
        data_end=start + linear,
        data_meta=start,
        ctx_addr=ctx_region.start,
        ctx_fields={n: f.offset for n, f in XDP_MD.packet_fields.items()},
        frame_reserved=XDP_FRAME_SIZE,
        frags=frags,
        frag_room=PAGE_SIZE,
    )
    fields = (
        packet.data,
        packet.data_end,
        packet.data_meta,
        ingress or LOOPBACK_IFINDEX,
        rx_queue,
        0,
    )
    arena.write(ctx_region.start, struct.pack("<6I", *fields))
    return BuiltContext(arena, T.XDP, ctx_region.start, XDP_MD.size, regions, packet, user)


def _check_xdp_rxq(ingress: int, rx_queue: int, egress: int) -> None:
    """xdp_convert_md_to_buff: the ingress device is looked up (only loopback, with its one
    rx queue, exists in the test-run netns modelled here)."""
    if egress or (not ingress and rx_queue):
        raise RunInputError(errno.EINVAL, "xdp_md: egress_ifindex or rx_queue_index set")
    if ingress > LOOPBACK_IFINDEX:
        raise RunInputError(errno.ENODEV, f"xdp_md.ingress_ifindex {ingress}: no such device")
    if ingress and rx_queue:
        raise RunInputError(errno.EINVAL, f"xdp_md.rx_queue_index {rx_queue}: lo has one queue")


def _pkt_type(dest: bytes) -> int:
    # eth_type_trans on lo: its address and its broadcast address are both all zeros, so
    # every group address (all-ones too) is PACKET_MULTICAST and none is PACKET_BROADCAST.
    if dest[0] & 1:
        return PACKET_MULTICAST
    return PACKET_HOST if dest == bytes(6) else PACKET_OTHERHOST


def _eth_protocol(data: bytes) -> int:
    """eth_type_trans's skb->protocol, as the u16 a program loads (network byte order)."""
    proto = int.from_bytes(data[12:14], "big")
    if proto < 0x0600:
        payload = data[ETH_HLEN : ETH_HLEN + 2]
        proto = ETH_P_802_3 if payload == b"\xff\xff" else ETH_P_802_2
    return int.from_bytes(proto.to_bytes(2, "big"), "little")


# The fields convert_skb_to___skb copies back into ctx_out (test_run.c).
_SKB_CTX_OUT = (
    "mark",
    "priority",
    "ingress_ifindex",
    "ifindex",
    "tstamp",
    "cb",
    "wire_len",
    "gso_segs",
    "hwtstamp",
)

# (start, end) byte ranges of __sk_buff a user ctx must leave zero (test_run.c).
_SKB_CTX_ZERO = ((0, 8), (12, 32), (44, 48), (68, 152), (168, 176), (180, 184))


def _build_skb(arena: Arena, prog_type: T, data: bytes | None, ctx: bytes | None) -> BuiltContext:
    data = data or b""
    size = len(data)
    if size < ETH_HLEN:
        raise RunInputError(errno.EINVAL, f"packet of {size} bytes, at least 14")
    if size > PAGE_SIZE - NET_SKB_PAD - SKB_SHARED_INFO:
        raise RunInputError(errno.EINVAL, f"packet of {size} bytes is too large")
    user = _user_ctx(ctx, SK_BUFF.size)
    l2 = prog_type in (T.SCHED_CLS, T.SCHED_ACT)
    skb_len = size if l2 else size - ETH_HLEN
    mark = priority = ingress_ifindex = tstamp = wire_len = gso_segs = gso_size = 0
    hwtstamp = 0
    cb = bytes(20)
    if user is not None:
        # test_run looks a ctx ifindex above 1 up in the caller's netns: the test-run netns
        # modelled here holds only the loopback device.
        requested = struct.unpack_from("<I", user, SK_BUFF.by_name["ifindex"].offset)[0]
        if requested > LOOPBACK_IFINDEX:
            raise RunInputError(errno.ENODEV, f"__sk_buff.ifindex {requested}: no such device")
        for lo, hi in _SKB_CTX_ZERO:
            if any(user[lo:hi]):
                raise RunInputError(errno.EINVAL, f"__sk_buff bytes {lo}..{hi} must be zero")
        mark = struct.unpack_from("<I", user, 8)[0]
        priority, ingress_ifindex = struct.unpack_from("<II", user, 32)
        cb = user[48:68]
        tstamp, wire_len, gso_segs = struct.unpack_from("<QII", user, 152)
        gso_size = struct.unpack_from("<I", user, 176)[0]
        hwtstamp = struct.unpack_from("<Q", user, 184)[0]
        if wire_len == 0:
            wire_len = skb_len
        elif wire_len < skb_len or wire_len > GSO_LEGACY_MAX_SIZE:
            raise RunInputError(errno.EINVAL, f"wire_len {wire_len} outside {skb_len}..65536")
        if gso_segs > GSO_MAX_SEGS:
            raise RunInputError(errno.EINVAL, f"gso_segs {gso_segs} > {GSO_MAX_SEGS}")
    protocol = _eth_protocol(data)
    family, saddr, daddr = 0, bytes(16), bytes(16)
    net = data[ETH_HLEN:]
    if protocol == int.from_bytes(ETH_P_IP.to_bytes(2, "big"), "little"):
        if len(net) < 20:
            raise RunInputError(errno.EINVAL, "IPv4 packet shorter than its header")
        family, saddr, daddr = AF_INET, net[12:16], net[16:20]
    elif protocol == int.from_bytes(ETH_P_IPV6.to_bytes(2, "big"), "little"):
        if len(net) < 40:
            raise RunInputError(errno.EINVAL, "IPv6 packet shorter than its header")
        family, saddr, daddr = AF_INET6, net[8:24], net[24:40]

    buf = _alloc(arena, NET_SKB_PAD + ((size + 63) & -64) + SKB_SHARED_INFO, "packet", "skb")
    ctx_region = _alloc(arena, SK_BUFF.size, "ctx", "__sk_buff")
    sock = _alloc(arena, BPF_SOCK_SIZE, "ctx", "bpf_sock")
    arena.write(buf.start + NET_SKB_PAD, data)
    data_addr = buf.start + NET_SKB_PAD + (0 if l2 else ETH_HLEN)
    data_end_addr = data_addr + skb_len
    direct = l2  # test_run computes data_end only for tc (and lwt) programs
    ip4 = (saddr[:4], daddr[:4]) if family == AF_INET else (bytes(4), bytes(4))
    ip6 = (saddr, daddr) if family == AF_INET6 else (bytes(16), bytes(16))
    arena.write(
        sock.start,
        struct.pack(
            "<IIIIII4s16sIH2x4s16sIi",
            0,
            family,
            0,
            0,
            0,
            0,
            ip4[0],
            ip6[0],
            0,
            0,
            ip4[1],
            ip6[1],
            TCP_CLOSE,
            -1,
        ),
    )
    ints = {
        "len": skb_len,
        "pkt_type": _pkt_type(data[:6]),
        "mark": mark,
        "protocol": protocol,
        "priority": priority,
        "ingress_ifindex": ingress_ifindex,
        "ifindex": LOOPBACK_IFINDEX,
        "data": data_addr,
        "data_end": data_end_addr if direct else 0,
        "family": family,
        "data_meta": data_addr if direct else 0,
        "tstamp": tstamp,
        "wire_len": wire_len,
        "gso_segs": gso_segs,
        "sk": sock.start,
        "gso_size": gso_size,
        "hwtstamp": hwtstamp,
    }
    raw = {
        "cb": cb,
        "remote_ip4": ip4[1],
        "local_ip4": ip4[0],
        "remote_ip6": ip6[1],
        "local_ip6": ip6[0],
    }
    sk = bytearray(SK_BUFF.size)
    for name, value in ints.items():
        f = SK_BUFF.by_name[name]
        # the kernel field keeps only its own width (gso_size is an unsigned short)
        sk[f.offset : f.end] = (value & ((1 << 8 * f.stored) - 1)).to_bytes(f.size, "little")
    for name, blob in raw.items():
        f = SK_BUFF.by_name[name]
        sk[f.offset : f.end] = blob
    arena.write(ctx_region.start, bytes(sk))
    fields = {"data": 76, "data_meta": 140}
    if direct:
        fields["data_end"] = 80
    packet = PacketState(
        region=buf,
        hard_start=buf.start,
        hard_end=buf.end,
        data=data_addr,
        data_end=data_end_addr,
        data_meta=data_addr,
        ctx_addr=ctx_region.start,
        ctx_fields=fields,
        meta_supported=False,
    )
    return BuiltContext(
        arena,
        prog_type,
        ctx_region.start,
        SK_BUFF.size,
        [buf, ctx_region, sock],
        packet,
        user,
        l2,
    )


def _build_bytes(arena: Arena, info: ProgTypeInfo, ctx: bytes) -> BuiltContext:
    limit = {
        "args": 8 * MAX_BPF_FUNC_ARGS,
        "bytes": info.ctx.size if info.ctx is not None else U16_MAX,
    }[info.run or "bytes"]
    if len(ctx) > limit:
        raise RunInputError(errno.EINVAL, f"{info.name} ctx of {len(ctx)} bytes, at most {limit}")
    size = info.ctx.size if info.ctx is not None and info.run == "bytes" else len(ctx)
    if size == 0:
        return BuiltContext(arena, info.prog_type, 0, 0, [])
    region = _alloc(arena, size, "ctx", info.ctx.struct if info.ctx else info.name)
    arena.write(region.start, ctx.ljust(size, b"\0"))
    return BuiltContext(arena, info.prog_type, region.start, size, [region], user_ctx=ctx)

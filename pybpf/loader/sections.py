"""libbpf's SEC() table: a program's ELF section name -> program type, attach type, flags.

The loader (`pybpf.loader.load`) calls `classify_section` for every executable section
other than ``.text``. The table is libbpf's ``section_defs`` (src/libbpf.c), in its order,
because the first matching row wins. A pattern ending in ``/`` matches every name with that
prefix; one ending in ``+`` matches the bare name or the name followed by ``/extras``; any
other pattern matches only itself. A leading ``?`` means "do not load automatically" and is
removed before matching. The text after the first ``/`` of a ``+`` or ``/`` pattern is the
attach target (``kprobe/do_unlinkat`` -> ``do_unlinkat``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from pybpf.uapi import BpfAttachType, BpfProgType, ProgFlag


class SecFlag(IntFlag):
    """libbpf's sec_def_flags."""

    NONE = 0
    EXP_ATTACH_OPT = 1  # the expected attach type may be dropped on old kernels
    ATTACHABLE = 2
    ATTACHABLE_OPT = 3
    ATTACH_BTF = 4  # the target is found by BTF name (fentry/, lsm/, tp_btf/, ...)
    SLEEPABLE = 8
    XDP_FRAGS = 16
    USDT = 32


@dataclass(frozen=True, slots=True)
class SecDef:
    """One row of the table."""

    pattern: str
    prog_type: BpfProgType
    attach_type: BpfAttachType | None
    flags: SecFlag

    def matches(self, name: str) -> bool:
        if self.pattern.endswith("/"):
            return name.startswith(self.pattern)
        if self.pattern.endswith("+"):
            stem = self.pattern[:-1]
            return name == stem or name.startswith(stem + "/")
        return name == self.pattern


P = BpfProgType
A = BpfAttachType
S = SecFlag

SECTION_DEFS: tuple[SecDef, ...] = tuple(
    SecDef(pattern, prog_type, attach_type, flags)
    for pattern, prog_type, attach_type, flags in (
        ("socket", P.SOCKET_FILTER, None, S.NONE),
        ("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE, S.ATTACHABLE),
        ("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT, S.ATTACHABLE),
        ("kprobe+", P.KPROBE, None, S.NONE),
        ("uprobe+", P.KPROBE, None, S.NONE),
        ("uprobe.s+", P.KPROBE, None, S.SLEEPABLE),
        ("kretprobe+", P.KPROBE, None, S.NONE),
        ("uretprobe+", P.KPROBE, None, S.NONE),
        ("uretprobe.s+", P.KPROBE, None, S.SLEEPABLE),
        ("kprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, S.NONE),
        ("kretprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, S.NONE),
        ("kprobe.session+", P.KPROBE, A.TRACE_KPROBE_SESSION, S.NONE),
        ("uprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, S.NONE),
        ("uretprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, S.NONE),
        ("uprobe.session+", P.KPROBE, A.TRACE_UPROBE_SESSION, S.NONE),
        ("uprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, S.SLEEPABLE),
        ("uretprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, S.SLEEPABLE),
        ("uprobe.session.s+", P.KPROBE, A.TRACE_UPROBE_SESSION, S.SLEEPABLE),
        ("ksyscall+", P.KPROBE, None, S.NONE),
        ("kretsyscall+", P.KPROBE, None, S.NONE),
        ("usdt+", P.KPROBE, None, S.USDT),
        ("usdt.s+", P.KPROBE, None, S.USDT | S.SLEEPABLE),
        ("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, S.NONE),
        ("tc/egress", P.SCHED_CLS, A.TCX_EGRESS, S.NONE),
        ("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS, S.NONE),
        ("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS, S.NONE),
        ("tc", P.SCHED_CLS, None, S.NONE),
        ("classifier", P.SCHED_CLS, None, S.NONE),
        ("action", P.SCHED_ACT, None, S.NONE),
        ("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY, S.NONE),
        ("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER, S.NONE),
        ("tracepoint+", P.TRACEPOINT, None, S.NONE),
        ("tp+", P.TRACEPOINT, None, S.NONE),
        ("tracepoint.s+", P.TRACEPOINT, None, S.SLEEPABLE),
        ("tp.s+", P.TRACEPOINT, None, S.SLEEPABLE),
        ("raw_tracepoint+", P.RAW_TRACEPOINT, None, S.NONE),
        ("raw_tp+", P.RAW_TRACEPOINT, None, S.NONE),
        ("raw_tracepoint.s+", P.RAW_TRACEPOINT, None, S.SLEEPABLE),
        ("raw_tp.s+", P.RAW_TRACEPOINT, None, S.SLEEPABLE),
        ("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE, None, S.NONE),
        ("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE, None, S.NONE),
        ("tp_btf+", P.TRACING, A.TRACE_RAW_TP, S.ATTACH_BTF),
        ("tp_btf.s+", P.TRACING, A.TRACE_RAW_TP, S.ATTACH_BTF | S.SLEEPABLE),
        ("fentry+", P.TRACING, A.TRACE_FENTRY, S.ATTACH_BTF),
        ("fmod_ret+", P.TRACING, A.MODIFY_RETURN, S.ATTACH_BTF),
        ("fexit+", P.TRACING, A.TRACE_FEXIT, S.ATTACH_BTF),
        ("fentry.s+", P.TRACING, A.TRACE_FENTRY, S.ATTACH_BTF | S.SLEEPABLE),
        ("fmod_ret.s+", P.TRACING, A.MODIFY_RETURN, S.ATTACH_BTF | S.SLEEPABLE),
        ("fexit.s+", P.TRACING, A.TRACE_FEXIT, S.ATTACH_BTF | S.SLEEPABLE),
        ("fsession+", P.TRACING, A.TRACE_FSESSION, S.ATTACH_BTF),
        ("fsession.s+", P.TRACING, A.TRACE_FSESSION, S.ATTACH_BTF | S.SLEEPABLE),
        ("fsession.multi+", P.TRACING, A.TRACE_FSESSION_MULTI, S.NONE),
        ("fsession.multi.s+", P.TRACING, A.TRACE_FSESSION_MULTI, S.SLEEPABLE),
        ("fentry.multi+", P.TRACING, A.TRACE_FENTRY_MULTI, S.NONE),
        ("fexit.multi+", P.TRACING, A.TRACE_FEXIT_MULTI, S.NONE),
        ("fentry.multi.s+", P.TRACING, A.TRACE_FENTRY_MULTI, S.SLEEPABLE),
        ("fexit.multi.s+", P.TRACING, A.TRACE_FEXIT_MULTI, S.SLEEPABLE),
        ("freplace+", P.EXT, None, S.ATTACH_BTF),
        ("lsm+", P.LSM, A.LSM_MAC, S.ATTACH_BTF),
        ("lsm.s+", P.LSM, A.LSM_MAC, S.ATTACH_BTF | S.SLEEPABLE),
        ("lsm_cgroup+", P.LSM, A.LSM_CGROUP, S.ATTACH_BTF),
        ("iter+", P.TRACING, A.TRACE_ITER, S.ATTACH_BTF),
        ("iter.s+", P.TRACING, A.TRACE_ITER, S.ATTACH_BTF | S.SLEEPABLE),
        ("syscall", P.SYSCALL, None, S.SLEEPABLE),
        ("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, S.XDP_FRAGS),
        ("xdp/devmap", P.XDP, A.XDP_DEVMAP, S.ATTACHABLE),
        ("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, S.XDP_FRAGS),
        ("xdp/cpumap", P.XDP, A.XDP_CPUMAP, S.ATTACHABLE),
        ("xdp.frags", P.XDP, A.XDP, S.XDP_FRAGS),
        ("xdp", P.XDP, A.XDP, S.ATTACHABLE_OPT),
        ("perf_event", P.PERF_EVENT, None, S.NONE),
        ("lwt_in", P.LWT_IN, None, S.NONE),
        ("lwt_out", P.LWT_OUT, None, S.NONE),
        ("lwt_xmit", P.LWT_XMIT, None, S.NONE),
        ("lwt_seg6local", P.LWT_SEG6LOCAL, None, S.NONE),
        ("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS, S.ATTACHABLE_OPT),
        ("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER, S.ATTACHABLE_OPT),
        ("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT, S.ATTACHABLE_OPT),
        ("sk_skb/verdict", P.SK_SKB, A.SK_SKB_VERDICT, S.ATTACHABLE_OPT),
        ("sk_skb", P.SK_SKB, None, S.NONE),
        ("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT, S.ATTACHABLE_OPT),
        ("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2, S.ATTACHABLE_OPT),
        ("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR, S.ATTACHABLE_OPT),
        ("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, S.ATTACHABLE_OPT),
        ("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, S.ATTACHABLE_OPT),
        ("cgroup/skb", P.CGROUP_SKB, None, S.NONE),
        ("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, S.ATTACHABLE),
        ("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE, S.ATTACHABLE),
        ("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, S.ATTACHABLE_OPT),
        ("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND, S.ATTACHABLE),
        ("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND, S.ATTACHABLE),
        ("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND, S.ATTACHABLE),
        ("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND, S.ATTACHABLE),
        ("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, S.ATTACHABLE),
        ("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT, S.ATTACHABLE),
        ("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, S.ATTACHABLE),
        ("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG, S.ATTACHABLE),
        ("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG, S.ATTACHABLE),
        ("cgroup/sendmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG, S.ATTACHABLE),
        ("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG, S.ATTACHABLE),
        ("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG, S.ATTACHABLE),
        ("cgroup/recvmsg_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG, S.ATTACHABLE),
        ("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETPEERNAME, S.ATTACHABLE),
        ("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETPEERNAME, S.ATTACHABLE),
        ("cgroup/getpeername_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME, S.ATTACHABLE),
        ("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETSOCKNAME, S.ATTACHABLE),
        ("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETSOCKNAME, S.ATTACHABLE),
        ("cgroup/getsockname_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME, S.ATTACHABLE),
        ("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL, S.ATTACHABLE),
        ("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT, S.ATTACHABLE),
        ("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT, S.ATTACHABLE),
        ("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE, S.ATTACHABLE_OPT),
        ("struct_ops+", P.STRUCT_OPS, None, S.NONE),
        ("struct_ops.s+", P.STRUCT_OPS, None, S.SLEEPABLE),
        ("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP, S.ATTACHABLE),
        ("netfilter", P.NETFILTER, A.NETFILTER, S.NONE),
    )
)

del P, A, S


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """What a program's section name says about it."""

    section: str  # the name without a leading "?"
    prog_type: BpfProgType
    expected_attach_type: BpfAttachType | None
    attach_to: str | None
    autoload: bool
    sleepable: bool
    prog_flags: ProgFlag
    sec_def: SecDef


def find_sec_def(name: str) -> SecDef | None:
    """The first row matching ``name`` (without its "?"), or None."""
    for row in SECTION_DEFS:
        if row.matches(name):
            return row
    return None


def classify_section(name: str) -> SectionInfo | None:
    """The program type etc. of a program in section ``name``; None for an unknown name."""
    autoload = not name.startswith("?")
    bare = name if autoload else name[1:]
    row = find_sec_def(bare)
    if row is None:
        return None
    attach_to = None
    if row.pattern[-1] in "/+":
        stem = row.pattern[:-1] if row.pattern.endswith("+") else row.pattern
        rest = bare[len(stem) :].removeprefix("/")
        attach_to = rest or None
    flags = ProgFlag(0)
    if row.flags & SecFlag.SLEEPABLE:
        flags |= ProgFlag.BPF_F_SLEEPABLE
    if row.flags & SecFlag.XDP_FRAGS and row.prog_type is BpfProgType.XDP:
        flags |= ProgFlag.BPF_F_XDP_HAS_FRAGS
    return SectionInfo(
        section=bare,
        prog_type=row.prog_type,
        expected_attach_type=row.attach_type,
        attach_to=attach_to,
        autoload=autoload,
        sleepable=bool(row.flags & SecFlag.SLEEPABLE),
        prog_flags=flags,
        sec_def=row,
    )

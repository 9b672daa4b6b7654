"""The kernel's BPF UAPI numbers (include/uapi/linux/bpf.h): the one place they are written.

Program types, attach types, map types, map-creation flags, update flags and program-load
flags, with the kernel's values and names. Pure data with no pybpf imports, so every layer
(loader, maps, helpers, verifier, vm, cli) can use it. ``.short`` is the lower-case name
without the UAPI prefix, as users and the CLI spell it (``xdp``, ``sched_cls``, ``hash``).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class _Named(IntEnum):
    """An enum whose members also have a short lower-case name (``BpfMapType.HASH.short``)."""

    @property
    def short(self) -> str:
        return self.name.lower()

    @property
    def uapi_name(self) -> str:
        return f"{_UAPI_PREFIX[type(self).__name__]}{self.name}"

    @classmethod
    def from_short(cls, name: str) -> _Named:
        """The member whose short name or full UAPI name is ``name`` (case-insensitive)."""
        key = name.upper()
        for member in cls:
            if key in (member.name, member.uapi_name):
                return member
        raise ValueError(f"unknown {cls.__name__} {name!r}")


_UAPI_PREFIX = {
    "BpfProgType": "BPF_PROG_TYPE_",
    "BpfAttachType": "BPF_",
    "BpfMapType": "BPF_MAP_TYPE_",
}


class BpfProgType(_Named):
    """enum bpf_prog_type."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32


class BpfAttachType(_Named):
    """enum bpf_attach_type. 0 is CGROUP_INET_INGRESS; the loader reports "no expected
    attach type" as None, never as 0."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56
    TRACE_UPROBE_SESSION = 57
    TRACE_FSESSION = 58
    TRACE_FENTRY_MULTI = 59
    TRACE_FEXIT_MULTI = 60
    TRACE_FSESSION_MULTI = 61


class BpfMapType(_Named):
    """enum bpf_map_type (19 and 21 under their current, non-deprecated names)."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33
    INSN_ARRAY = 34
    RHASH = 35


class MapFlag(IntFlag):
    """Flags of BPF_MAP_CREATE (``map_flags``)."""

    BPF_F_NO_PREALLOC = 1 << 0
    BPF_F_NO_COMMON_LRU = 1 << 1
    BPF_F_NUMA_NODE = 1 << 2
    BPF_F_RDONLY = 1 << 3
    BPF_F_WRONLY = 1 << 4
    BPF_F_STACK_BUILD_ID = 1 << 5
    BPF_F_ZERO_SEED = 1 << 6
    BPF_F_RDONLY_PROG = 1 << 7
    BPF_F_WRONLY_PROG = 1 << 8
    BPF_F_CLONE = 1 << 9
    BPF_F_MMAPABLE = 1 << 10
    BPF_F_PRESERVE_ELEMS = 1 << 11
    BPF_F_INNER_MAP = 1 << 12
    BPF_F_LINK = 1 << 13
    BPF_F_PATH_FD = 1 << 14
    BPF_F_VTYPE_BTF_OBJ_FD = 1 << 15
    BPF_F_TOKEN_FD = 1 << 16
    BPF_F_SEGV_ON_FAULT = 1 << 17
    BPF_F_NO_USER_CONV = 1 << 18
    BPF_F_RB_OVERWRITE = 1 << 19


def map_flag_names(flags: int) -> list[str]:
    """The BPF_F_* names set in ``flags``, lowest bit first; unknown bits as hex."""
    names = [f.name for f in MapFlag if flags & f.value and f.name]
    unknown = flags & ~sum(f.value for f in MapFlag)
    if unknown:
        names.append(hex(unknown))
    return names


# Flags of BPF_MAP_UPDATE_ELEM / BPF_MAP_LOOKUP_ELEM (and of the map helpers).
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4
BPF_F_CPU = 8
BPF_F_ALL_CPUS = 16

# The cpu index in the flags of bpf_perf_event_output and friends; all ones = this cpu.
BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK

# The kernel-internal "operation not supported" errno (include/linux/errno.h) that leaks to
# programs (bpf_xdp_adjust_meta) and to userspace (map operations a type lacks).
ENOTSUPP = 524

# Packet layout limits programs see (include/uapi/linux/if_ether.h; include/net/xdp.h).
ETH_HLEN = 14
XDP_METADATA_MAX = 32  # bytes of XDP metadata, a multiple of 4


class ProgFlag(IntFlag):
    """Flags of BPF_PROG_LOAD (``prog_flags``)."""

    BPF_F_STRICT_ALIGNMENT = 1 << 0
    BPF_F_ANY_ALIGNMENT = 1 << 1
    BPF_F_TEST_RND_HI32 = 1 << 2
    BPF_F_TEST_STATE_FREQ = 1 << 3
    BPF_F_SLEEPABLE = 1 << 4
    BPF_F_XDP_HAS_FRAGS = 1 << 5
    BPF_F_XDP_DEV_BOUND_ONLY = 1 << 6
    BPF_F_TEST_REG_INVARIANTS = 1 << 7


# The license strings the kernel treats as GPL-compatible (include/linux/license.h).
GPL_COMPATIBLE_LICENSES: frozenset[str] = frozenset(
    {
        "GPL",
        "GPL v2",
        "GPL and additional rights",
        "Dual BSD/GPL",
        "Dual MIT/GPL",
        "Dual MPL/GPL",
    }
)


def license_is_gpl_compatible(license: str) -> bool:
    return license in GPL_COMPATIBLE_LICENSES


BPF_OBJ_NAME_LEN = 16  # map and program names are cut to 15 characters + NUL

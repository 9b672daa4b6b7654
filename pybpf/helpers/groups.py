"""Named sets of program types, as the kernel's ``*_func_proto`` functions group them.

Place in the pipeline: used only by the helper and kfunc declarations (``prog_types``); the
program-type table derives each type's allowed helpers from those declarations. A group is
written once here so that helpers the kernel offers through the same proto function share
one definition.
"""

from __future__ import annotations

from pybpf.uapi import BpfProgType as T

# bpf_tracing_func_proto users (kprobe, tracepoint, perf_event, raw_tp, tracing) and the types
# that reach it through tracing_prog_func_proto (lsm, syscall).
TRACING: frozenset[T] = frozenset(
    {
        T.KPROBE,
        T.TRACEPOINT,
        T.PERF_EVENT,
        T.RAW_TRACEPOINT,
        T.RAW_TRACEPOINT_WRITABLE,
        T.TRACING,
        T.LSM,
        T.SYSCALL,
    }
)

# Types whose func_proto falls back to bpf_sk_base_func_proto (networking).
NET_BASE: frozenset[T] = frozenset(
    {
        T.SOCKET_FILTER,
        T.SCHED_CLS,
        T.SCHED_ACT,
        T.XDP,
        T.CGROUP_SKB,
        T.CGROUP_SOCK,
        T.CGROUP_SOCK_ADDR,
        T.LWT_IN,
        T.LWT_OUT,
        T.LWT_XMIT,
        T.LWT_SEG6LOCAL,
        T.SOCK_OPS,
        T.SK_SKB,
        T.SK_MSG,
        T.SK_REUSEPORT,
        T.FLOW_DISSECTOR,
        T.CGROUP_SOCKOPT,
        T.SK_LOOKUP,
        T.NETFILTER,
    }
)

# get_current_pid_tgid / uid_gid / comm: tracing, plus cgroup_current_func_proto users.
TASK_IDENTITY: frozenset[T] = TRACING | {
    T.CGROUP_SOCK,
    T.CGROUP_SOCK_ADDR,
    T.CGROUP_DEVICE,
    T.CGROUP_SYSCTL,
    T.CGROUP_SOCKOPT,
}

# bpf_perf_event_output: the tracing protos and the skb/xdp/sock event-output protos, which
# every networking type has but those whose func_proto offers no event output at all.
PERF_OUTPUT: frozenset[T] = TRACING | (
    NET_BASE - {T.SK_REUSEPORT, T.FLOW_DISSECTOR, T.CGROUP_SOCKOPT, T.SK_LOOKUP, T.NETFILTER}
)

# bpf_skb_load_bytes (and its flow-dissector / reuseport variants under the same id).
SKB_LOAD: frozenset[T] = frozenset(
    {
        T.SOCKET_FILTER,
        T.SCHED_CLS,
        T.SCHED_ACT,
        T.CGROUP_SKB,
        T.LWT_IN,
        T.LWT_OUT,
        T.LWT_XMIT,
        T.LWT_SEG6LOCAL,
        T.SK_SKB,
        T.SK_REUSEPORT,
        T.FLOW_DISSECTOR,
    }
)

# bpf_skb_store_bytes.
SKB_STORE: frozenset[T] = frozenset({T.SCHED_CLS, T.SCHED_ACT, T.LWT_XMIT, T.SK_SKB})

# bpf_l3_csum_replace / bpf_l4_csum_replace.
CSUM_REPLACE: frozenset[T] = frozenset({T.SCHED_CLS, T.SCHED_ACT, T.LWT_XMIT})

# bpf_csum_diff.
CSUM_DIFF: frozenset[T] = frozenset(
    {T.SCHED_CLS, T.SCHED_ACT, T.XDP, T.LWT_IN, T.LWT_OUT, T.LWT_XMIT, T.LWT_SEG6LOCAL}
)

XDP_ONLY: frozenset[T] = frozenset({T.XDP})

# bpf_redirect: tc (bpf_redirect_proto), xdp (bpf_xdp_redirect_proto), lwt_xmit.
REDIRECT: frozenset[T] = frozenset({T.SCHED_CLS, T.SCHED_ACT, T.XDP, T.LWT_XMIT})

# bpf_wq_init / bpf_wq_set_callback(_impl) / bpf_wq_start: exactly the program types the
# kfunc's documentation lists (shared/seeds/004).
WORKQUEUE: frozenset[T] = frozenset(
    {
        T.CGROUP_SKB,
        T.CGROUP_SOCK_ADDR,
        T.LSM,
        T.LWT_IN,
        T.LWT_OUT,
        T.LWT_SEG6LOCAL,
        T.LWT_XMIT,
        T.NETFILTER,
        T.SCHED_ACT,
        T.SCHED_CLS,
        T.SK_SKB,
        T.SOCKET_FILTER,
        T.STRUCT_OPS,
        T.SYSCALL,
        T.TRACING,
        T.XDP,
    }
)

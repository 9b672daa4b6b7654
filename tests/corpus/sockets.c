// SPDX-License-Identifier: GPL-2.0
/* Socket and cgroup programs: cgroup/connect4 (a connect redirector), sk_lookup with a
 * sockmap, flow_dissector, netfilter, sk_msg/sk_skb verdicts on a sockhash, sockops,
 * cgroup_skb, cgroup/sysctl and cgroup/getsockopt, plus cgroup storage and socket local storage. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define SK_DROP 0
#define SK_PASS 1
#define NF_ACCEPT 1
#define NF_DROP 0

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} redir_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 1024);
	__type(key, struct sock_key { u32 sip; u32 dip; u32 sport; u32 dport; });
	__type(value, u64);
} sock_ops_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct conn_info { u64 connects; u32 last_port; });
} sk_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, u64);
} cgrp_bytes SEC(".maps");

const volatile u32 service_ip = 0x0a000001;
const volatile u16 service_port = 8080;
const volatile u16 lookup_port = 7007;

SEC("cgroup/connect4")
int connect4_redirect(struct bpf_sock_addr *ctx)
{
	struct conn_info *info;

	if (ctx->user_family != AF_INET || ctx->user_port != bpf_htons(80))
		return 1;
	info = bpf_sk_storage_get(&sk_info, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (info) {
		info->connects++;
		info->last_port = ctx->user_port;
	}
	ctx->user_ip4 = bpf_htonl(service_ip);
	ctx->user_port = bpf_htons(service_port);
	return 1;
}

SEC("sk_lookup")
int lookup_redirect(struct bpf_sk_lookup *ctx)
{
	struct bpf_sock *sk;
	u32 zero = 0;
	long err;

	if (ctx->local_port != lookup_port)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&redir_map, &zero);
	if (!sk)
		return SK_DROP;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;

	keys->nhoff = 0;
	keys->thoff = 14;
	keys->n_proto = bpf_htons(0x0800);
	return BPF_OK;
}

SEC("netfilter")
int nf_count(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *state = ctx->state;
	struct sk_buff *skb = ctx->skb;

	if (state->pf == AF_INET && skb->len > 65000)
		return NF_DROP;
	return NF_ACCEPT;
}

SEC("sockops")
int sockops_track(struct bpf_sock_ops *skops)
{
	struct sock_key key = {};

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		key.sip = skops->local_ip4;
		key.dip = skops->remote_ip4;
		key.sport = skops->local_port;
		key.dport = bpf_ntohl(skops->remote_port);
		bpf_sock_hash_update(skops, &sock_ops_map, &key, BPF_NOEXIST);
		break;
	}
	return 1;
}

SEC("sk_msg")
int msg_redirect(struct sk_msg_md *msg)
{
	struct sock_key key = {
		.sip = msg->remote_ip4,
		.dip = msg->local_ip4,
		.sport = bpf_ntohl(msg->remote_port),
		.dport = msg->local_port,
	};

	return bpf_msg_redirect_hash(msg, &sock_ops_map, &key, BPF_F_INGRESS);
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	return skb->len > 0 ? SK_PASS : SK_DROP;
}

SEC("cgroup_skb/ingress")
int count_ingress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	u64 *bytes;

	if (!sk)
		return 1;
	bytes = bpf_get_local_storage(&cgrp_bytes, 0);
	__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

SEC("cgroup/sysctl")
int sysctl_readonly(struct bpf_sysctl *ctx)
{
	char name[32];

	if (bpf_sysctl_get_name(ctx, name, sizeof(name), 0) < 0)
		return 1;
	return ctx->write ? 0 : 1;
}

SEC("cgroup/getsockopt")
int getsockopt_passthrough(struct bpf_sockopt *ctx)
{
	return 1;
}

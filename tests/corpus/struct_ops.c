// SPDX-License-Identifier: GPL-2.0
/* A TCP congestion control in BPF, in the style of the kernel's bpf_dctcp/bpf_cubic
 * selftests: struct_ops programs (one sleepable), the ops table in .struct_ops.link (attached
 * through a BPF link), a second table in plain .struct_ops, a member left NULL, a name
 * string, and a helper subprogram shared by two callbacks. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

#define TCP_INFINITE_SSTHRESH 0x7fffffff

u32 reno_beta = 512;

static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

static __noinline u32 half_cwnd(struct tcp_sock *tp)
{
	u32 cwnd = tp->snd_cwnd * reno_beta >> 10;

	return cwnd < 2 ? 2 : cwnd;
}

SEC("struct_ops/bpf_reno_init")
void BPF_PROG(bpf_reno_init, struct sock *sk)
{
	tcp_sk(sk)->snd_ssthresh = TCP_INFINITE_SSTHRESH;
}

SEC("struct_ops/bpf_reno_ssthresh")
u32 BPF_PROG(bpf_reno_ssthresh, struct sock *sk)
{
	return half_cwnd(tcp_sk(sk));
}

SEC("struct_ops/bpf_reno_cong_avoid")
void BPF_PROG(bpf_reno_cong_avoid, struct sock *sk, u32 ack, u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (tp->snd_cwnd < tp->snd_ssthresh)
		tp->snd_cwnd += acked;
	else
		tp->snd_cwnd += 1;
}

SEC("struct_ops/bpf_reno_undo_cwnd")
u32 BPF_PROG(bpf_reno_undo_cwnd, struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);

	return tp->snd_cwnd > tp->prior_cwnd ? tp->snd_cwnd : half_cwnd(tp);
}

SEC("struct_ops.s/bpf_reno_release")
void BPF_PROG(bpf_reno_release, struct sock *sk)
{
	bpf_printk("released");
}

SEC(".struct_ops.link")
struct tcp_congestion_ops bpf_reno = {
	.init = (void *)bpf_reno_init,
	.ssthresh = (void *)bpf_reno_ssthresh,
	.cong_avoid = (void *)bpf_reno_cong_avoid,
	.undo_cwnd = (void *)bpf_reno_undo_cwnd,
	.release = (void *)bpf_reno_release,
	.name = "bpf_reno_link",
};

SEC(".struct_ops")
struct tcp_congestion_ops bpf_reno_legacy = {
	.ssthresh = (void *)bpf_reno_ssthresh,
	.cong_avoid = (void *)bpf_reno_cong_avoid,
	.undo_cwnd = (void *)bpf_reno_undo_cwnd,
	.flags = 0,
	.name = "bpf_reno_old",
};

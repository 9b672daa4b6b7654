// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
// build: -D__TARGET_ARCH_x86
/* kprobe/kretprobe with BPF_KPROBE/BPF_KRETPROBE (libbpf-bootstrap's "kprobe"), ksyscall
 * with BPF_KSYSCALL, uprobes with auto-attach specs, kprobe.multi and uprobe.multi, and a
 * per-CPU counter array; an old-style "version" section. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <linux/version.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";
/* what pre-5.0 kernels required of kprobe programs; libbpf still passes it on */
__u32 _version SEC("version") = LINUX_VERSION_CODE;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} hits SEC(".maps");

static __always_inline void count(u32 slot)
{
	u64 *v = bpf_map_lookup_elem(&hits, &slot);

	if (v)
		*v += 1;
}

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)
{
	pid_t pid;
	const char *filename;

	pid = bpf_get_current_pid_tgid() >> 32;
	filename = BPF_CORE_READ(name, name);
	bpf_printk("KPROBE ENTRY pid = %d, filename = %s\n", pid, filename);
	count(0);
	return 0;
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(do_unlinkat_exit, long ret)
{
	pid_t pid;

	pid = bpf_get_current_pid_tgid() >> 32;
	bpf_printk("KPROBE EXIT: pid = %d, ret = %ld\n", pid, ret);
	count(1);
	return 0;
}

SEC("ksyscall/kill")
int BPF_KSYSCALL(entry_probe, pid_t pid, int sig)
{
	char comm[16];
	pid_t caller_pid = bpf_get_current_pid_tgid() >> 32;

	if (sig == 0)
		return 0;

	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_printk("KILL syscall called by PID %d (%s) for PID %d with sig %d\n", caller_pid, comm,
		   pid, sig);
	return 0;
}

SEC("kretsyscall/kill")
int BPF_KRETPROBE(kill_exit, long ret)
{
	count(2);
	return ret != 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe_add, int a, int b)
{
	bpf_printk("uprobed_add ENTRY: a = %d, b = %d", a, b);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, int ret)
{
	bpf_printk("uprobed_add EXIT: return = %d", ret);
	return 0;
}

SEC("uprobe//proc/self/exe:uprobed_sub")
int BPF_KPROBE(uprobe_sub, int a, int b)
{
	bpf_printk("uprobed_sub ENTRY: a = %d, b = %d", a, b);
	return 0;
}

SEC("uretprobe.s/libc.so.6:malloc")
int BPF_KRETPROBE(malloc_exit_sleepable, void *ptr)
{
	count(3);
	return ptr != 0;
}

SEC("kprobe.multi/do_unlinkat*")
int kprobe_multi_unlink(struct pt_regs *ctx)
{
	count(0);
	return 0;
}

SEC("kretprobe.multi/vfs_*")
int kretprobe_multi_vfs(struct pt_regs *ctx)
{
	count(1);
	return 0;
}

SEC("uprobe.multi//proc/self/exe:uprobe_multi_func_*")
int uprobe_multi(struct pt_regs *ctx)
{
	count(2);
	return 0;
}

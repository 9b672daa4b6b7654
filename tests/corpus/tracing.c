// SPDX-License-Identifier: GPL-2.0
/* BTF-typed tracing: fentry/fexit with BPF_PROG (libbpf-bootstrap's "fentry"), fmod_ret,
 * sleepable fentry.s and lsm.s, tp_btf, raw_tp, an iterator over tasks, a program that is
 * not loaded unless asked for (`?tp/...`), a kfunc pair and kconfig externs. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_LSM __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpf_rcu_read_lock(void) __ksym __weak;
extern void bpf_rcu_read_unlock(void) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} task_opens SEC(".maps");

u64 unlinks = 0;
u64 blocked = 0;
pid_t protected_pid = 0;

SEC("fentry/do_unlinkat")
int BPF_PROG(do_unlinkat, int dfd, struct filename *name)
{
	pid_t pid;

	pid = bpf_get_current_pid_tgid() >> 32;
	bpf_printk("fentry: pid = %d, filename = %s\n", pid, name->name);
	__sync_fetch_and_add(&unlinks, 1);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(do_unlinkat_exit, int dfd, struct filename *name, long ret)
{
	pid_t pid;

	pid = bpf_get_current_pid_tgid() >> 32;
	bpf_printk("fexit: pid = %d, filename = %s, ret = %ld\n", pid, name->name, ret);
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(fmod_ret_test, int a, int *b, int ret)
{
	return ret == 0 ? a + 1 : ret;
}

SEC("fentry.s/do_sys_openat2")
int BPF_PROG(openat2_sleepable, int dfd, const char *filename)
{
	char buf[64];

	bpf_copy_from_user(buf, sizeof(buf), filename);
	return buf[0] == '/';
}

SEC("lsm.s/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	u64 *n;

	n = bpf_task_storage_get(&task_opens, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (n)
		*n += 1;
	if (protected_pid && task->tgid == protected_pid && CONFIG_BPF_LSM) {
		__sync_fetch_and_add(&blocked, 1);
		return -EPERM;
	}
	return 0;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(exec_audit, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *acquired;

	acquired = bpf_task_acquire(task);
	if (!acquired)
		return 0;
	bpf_printk("exec %s by %d (kernel %x, HZ %d)", bprm->filename, acquired->pid,
		   LINUX_KERNEL_VERSION, CONFIG_HZ);
	bpf_task_release(acquired);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	if (bpf_rcu_read_lock)
		bpf_rcu_read_lock();
	if (prev->pid == protected_pid)
		bpf_printk("switch out %s", prev->comm);
	if (bpf_rcu_read_unlock)
		bpf_rcu_read_unlock();
	return 0;
}

SEC("raw_tp/sched_process_fork")
int raw_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];

	return BPF_CORE_READ(child, pid) > 0;
}

SEC("?tp/syscalls/sys_enter_openat")
int optional_openat(struct trace_event_raw_sys_enter *ctx)
{
	bpf_printk("openat(%lx, %lx)", ctx->args[0], ctx->args[1]);
	return 0;
}

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	static char header[] = "    tgid      pid comm\n";

	if (task == (void *)0)
		return 0;
	if (ctx->meta->seq_num == 0)
		bpf_seq_write(seq, header, sizeof(header) - 1);
	BPF_SEQ_PRINTF(seq, "%8d %8d %s\n", task->tgid, task->pid, task->comm);
	return 0;
}

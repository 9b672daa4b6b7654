/* A queue map fed from userspace and a ring buffer read by userspace.
 *
 * syscall program `drain`: pops up to ctx->max jobs (u32) from `jobs` and, for each, submits
 * a `struct result { job, square }` record to `results` through reserve/submit. It returns
 * how many jobs it processed; ctx->done receives the same count (syscall ctx is copied back).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
	__u32 max;
	__u32 done;
};

struct result {
	__u32 job;
	__u32 pad;
	__u64 square;
};

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} jobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} results SEC(".maps");

SEC("syscall")
int drain(struct args *ctx)
{
	__u32 n = 0, job;
	struct result *r;

	for (int i = 0; i < 16 && n < ctx->max; i++) {
		if (bpf_map_pop_elem(&jobs, &job))
			break;
		r = bpf_ringbuf_reserve(&results, sizeof(*r), 0);
		if (!r)
			break;
		r->job = job;
		r->pad = 0;
		r->square = (__u64)job * job;
		bpf_ringbuf_submit(r, 0);
		n++;
	}
	ctx->done = n;
	return n;
}

char _license[] SEC("license") = "GPL";

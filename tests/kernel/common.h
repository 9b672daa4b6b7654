/* Shared by the kernel-golden corpus: headers and the command record the map programs read. */
#ifndef KERNEL_CORPUS_COMMON_H
#define KERNEL_CORPUS_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* One command of a map program: the packet is a sequence of these (at least one, 16 bytes,
 * padded by the recorder to the 14-byte minimum BPF_PROG_TEST_RUN demands). The program
 * writes its answer back into `val` and `rc`, so data_out shows what each command saw. */
struct cmd {
	__u32 op;
	__u32 key;
	__u32 val;
	__s32 rc;
};

#define MAX_CMDS 8

#endif

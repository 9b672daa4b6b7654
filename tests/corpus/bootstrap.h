/* The event record bootstrap.c sends to userspace (shared with the "user side"). */
#ifndef CORPUS_BOOTSTRAP_H
#define CORPUS_BOOTSTRAP_H

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 127

struct event {
	int pid;
	int ppid;
	unsigned exit_code;
	unsigned long long duration_ns;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
	bool exit_event;
};

#endif

/*
 * proc.h - what Linux's /proc says of processes: when one started (which
 * tells a live process from a recycled pid), which boot and PID namespace
 * this process runs in (which say whether a pid names the same process
 * for two programs on one host), this process's children, and the
 * processes whose environment carries a tag.
 *
 * Nothing here allocates in a way that can fail the caller: a /proc that
 * cannot be read gives "unknown" answers, never an error.
 */
#ifndef ORCH_PROC_H
#define ORCH_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Field 22 of /proc/PID/stat, the start time in clock ticks since boot,
 * or -1 when there is no such process (or no /proc). */
long long proc_start_time(long pid);

/* /proc/sys/kernel/random/boot_id: 36 characters, a new one at every
 * boot ("-" when unreadable). Borrowed, static. */
const char *proc_boot_id(void);

/* The inode of /proc/self/ns/pid, which names this process's PID
 * namespace (0 when unreadable). */
unsigned long long proc_pid_namespace(void);

/*
 * This process's children, living or not yet reaped: *PIDS a new array
 * of *N pids (NULL when none). From /proc/self/task/TID/children, else
 * by scanning /proc. 0, or -1 (nothing to free) when /proc cannot be
 * read, out of descriptors for one.
 */
int proc_children(pid_t **pids, size_t *n);

/*
 * SIGKILL every process but this one whose environment holds the entry
 * TAG ("NAME=VALUE", whole) as it was given to execve, and look again,
 * until a look finds none (at most a few rounds: what a killed process
 * forked in the meantime carries the tag too). Processes of other users
 * cannot be read, and are left alone. Returns how many were killed.
 */
size_t proc_kill_tagged(const char *tag);

#endif

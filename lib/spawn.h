/*
 * spawn.h - agent commands as child processes: started directly (never
 * through a shell), fed a document on stdin, their stdout and stderr
 * captured, bounded in time and output.
 *
 * A child runs in a process group of its own, so a timeout ends whatever
 * it started too (an agent script's jq, curl, ...): SIGTERM to the group,
 * then SIGKILL after a grace period. If the parent dies first, Linux sends
 * the child SIGKILL (PR_SET_PDEATHSIG), so no agent outlives its orch-exec.
 *
 * The parent drives any number of children from one poll() loop:
 *
 *   spawn_init();                      once: the SIGCHLD self-pipe
 *   child_start(&c, argv, input, ...)  per child
 *   loop: child_poll_fds() for each, poll(), child_handle() for each,
 *         spawn_reap() when the SIGCHLD fd is readable, child_check_time()
 *   child_done(&c) -> read c.status, c.out, c.err; child_release(&c)
 */
#ifndef ORCH_SPAWN_H
#define ORCH_SPAWN_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* How much of a child's stderr is kept: the last this many bytes (where a
 * failing program says why); what came before is counted, not kept. */
#define SPAWN_MAX_STDERR 65536

/* A growing byte buffer, always NUL-terminated for convenience. */
struct spawn_buf {
	char *data;  /* owned; NULL until the first byte */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated */
};

struct child {
	pid_t pid;              /* 0 before start, -1 once reaped */
	int in_fd;              /* write end of its stdin, -1 when closed */
	int out_fd;             /* read end of its stdout, -1 at EOF */
	int err_fd;             /* read end of its stderr, -1 at EOF */
	const char *input;      /* borrowed: what to write to its stdin */
	size_t input_len;       /* bytes in input */
	size_t input_off;       /* bytes written so far */
	struct spawn_buf out;   /* its stdout, up to out_max bytes */
	struct spawn_buf err;   /* the last SPAWN_MAX_STDERR bytes of its stderr */
	size_t out_max;         /* cap on stdout; more is an overflow */
	size_t err_dropped;     /* stderr bytes before those kept, dropped */
	int out_overflow;       /* stdout passed out_max: the child was killed */
	int64_t deadline;       /* monotonic ms to send SIGTERM, 0 for none */
	int64_t kill_after;     /* ms from SIGTERM to SIGKILL */
	int64_t kill_at;        /* monotonic ms to send SIGKILL, 0 until SIGTERM */
	int timed_out;          /* the deadline passed */
	int status;             /* wait status, valid once reaped */
};

/*
 * Install the handlers and their self-pipe: SIGCHLD, and SIGINT, SIGTERM
 * and SIGHUP, which the caller sees through spawn_interrupted(); ignore
 * SIGPIPE. Returns the fd to poll for "a child may have exited, or a
 * signal came", or -1 with ERR.
 */
int spawn_init(struct orch_error *err);

/* The SIGINT, SIGTERM or SIGHUP received since spawn_init(), or 0. */
int spawn_interrupted(void);

/* A child not started: no process, every fd -1. */
void child_init(struct child *c);

/*
 * Start ARGV[0] (looked up in PATH when it has no slash) with ARGV, INPUT
 * (INPUT_LEN bytes, borrowed until the child is done) on its stdin. The
 * child is ended TIMEOUT_MS from now (0: never) with SIGTERM, and
 * KILL_AFTER_MS later with SIGKILL. Returns 0, or -1 with ERR (status 69)
 * when the command cannot be run: "cannot run 'x': No such file or
 * directory". C must be zeroed or released before.
 */
int child_start(struct child *c, char *const argv[], const char *input,
		size_t input_len, size_t out_max, int64_t timeout_ms,
		int64_t kill_after_ms, struct orch_error *err);

/* Add the child's open fds to FDS (room for 3 more). Returns how many. */
int child_poll_fds(const struct child *c, struct pollfd *fds);

/* Do the I/O that poll() said is ready on any of the child's fds. */
void child_handle(struct child *c, const struct pollfd *fds, int nfds);

/* Reap the child if it has exited (non-blocking). After a reap, what is
 * left in its pipes is drained and they are closed. */
void child_reap(struct child *c);

/* Drain the SIGCHLD self-pipe; call when its fd is readable. */
void spawn_drain_signal(void);

/* Send SIGTERM or SIGKILL to the child's group when its time has come.
 * Returns the monotonic ms of its next deadline, or 0 for none. */
int64_t child_check_time(struct child *c, int64_t now_mono);

/* Whether the child has exited and its output is all read. */
int child_done(const struct child *c);

/* Kill the child's group (SIGKILL) if it is still running, and reap it. */
void child_kill(struct child *c);

/* Free the buffers and close the fds. C can be started again after. */
void child_release(struct child *c);

/* The longest stderr line child_last_stderr_line() gives whole. */
#define SPAWN_MAX_ERROR_LINE 500

/* The last non-empty line of the child's stderr (new string, "" if none),
 * for error messages: control characters become spaces, and a line longer
 * than SPAWN_MAX_ERROR_LINE bytes is cut there and ends in "...". */
char *child_last_stderr_line(const struct child *c);

#endif

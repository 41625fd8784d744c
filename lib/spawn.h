/*
 * spawn.h - agent commands as child processes: started directly (never
 * through a shell), fed a document on stdin, their stdout and stderr
 * captured, bounded in time and output.
 *
 * A child runs in a session of its own (setsid): no controlling terminal,
 * and a process group it cannot leave, so a timeout ends whatever it
 * started in it too (an agent script's jq, curl, ...): SIGTERM to the
 * group, then SIGKILL after a grace period. If the parent dies first,
 * Linux sends the child SIGKILL (PR_SET_PDEATHSIG).
 *
 * What a child's descendants did to their group or session does not let
 * them outlive it: the child is the subreaper of its descendants, and the
 * parent (spawn_init) of everything the children leave, so when a child
 * exits, whatever of it is left becomes the parent's own child, which
 * spawn_reap_orphans() kills and reaps at once.
 *
 * The parent drives any number of children from one poll() loop:
 *
 *   spawn_init();                      once: the SIGCHLD self-pipe
 *   child_start(&c, argv, envp, input, ...)  per child
 *   loop: child_poll_fds() for each, poll(), child_handle() for each,
 *         child_reap() for each and spawn_reap_orphans() when the SIGCHLD
 *         fd is readable, child_check_time()
 *   child_done(&c) -> read c.status, c.out, c.err; child_release(&c)
 *   spawn_reap_all() before exiting
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
	int ends[3];            /* the child's ends of its pipes (stdin,
				   stdout, stderr) between child_prepare and
				   child_start; -1 otherwise */
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
 * Install the handlers and their self-pipe: SIGCHLD, and SIGINT, SIGTERM,
 * SIGHUP and a SIGPIPE someone sends, which the caller sees through
 * spawn_interrupted() (the kernel's SIGPIPE for a write to a pipe nobody
 * reads is left to the write's EPIPE); and make this process the
 * subreaper of its children's descendants (PR_SET_CHILD_SUBREAPER); and
 * raise the soft limit on open descriptors to the hard one (children get
 * the limit this process was given).
 * Returns the fd to poll for "a child may have exited, or a signal came",
 * or -1 with ERR.
 */
int spawn_init(struct orch_error *err);

/* The SIGINT, SIGTERM, SIGHUP or SIGPIPE received since spawn_init(), or 0. */
int spawn_interrupted(void);

/* A child not started: no process, every fd -1. */
void child_init(struct child *c);

/*
 * The pipes of a child about to start, made first so that a process out
 * of descriptors finds out before it spends anything else on the start:
 * 0, or -1 with ERR, 75 ("pipe: Too many open files") when descriptors
 * ran out, which a child ending frees. C must be initialised or released.
 */
int child_prepare(struct child *c, struct orch_error *err);

/*
 * Start ARGV[0] (looked up in PATH when it has no slash) with ARGV, the
 * environment ENVP (NULL: this process's), INPUT (INPUT_LEN bytes,
 * borrowed until the child is done) on its stdin, and no other open
 * descriptor. The child is ended TIMEOUT_MS from now (0: never) with
 * SIGTERM, and KILL_AFTER_MS later with SIGKILL. Returns 0, or -1 with
 * ERR: 69 when the command cannot be run ("cannot run 'x': No such file
 * or directory"), 75 when descriptors or processes ran out. C must be
 * initialised, released or prepared (child_prepare) before.
 */
int child_start(struct child *c, char *const argv[], char *const envp[],
		const char *input, size_t input_len, size_t out_max,
		int64_t timeout_ms, int64_t kill_after_ms, struct orch_error *err);

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

/*
 * C as a child that has ended, though no process ran: orch-exec's
 * built-in agent ran in-process (turns.h) and left what a process
 * would have. EXIT_STATUS its exit status, OUT (OUT_LEN bytes) its
 * standard output, ERR (ERR_LEN bytes) its standard error, both taken,
 * NUL-terminated, or NULL; bounded as child_start() bounds a child's
 * (OUT_MAX, SPAWN_MAX_STDERR).
 */
void child_set_ended(struct child *c, int exit_status, char *out, size_t out_len,
		     size_t out_max, char *err, size_t err_len);

/*
 * SIGKILL every child of this process that is not a child started here
 * and still running, and reap those that have died: what the children
 * left behind. Call after reaping children; what a killed one leaves
 * comes next time.
 */
void spawn_reap_orphans(void);

/* spawn_reap_orphans() until nothing is left, at most MAX_MS: before
 * this process exits, or nothing an agent left would be reaped. */
void spawn_reap_all(int64_t max_ms);

/* The longest stderr line child_last_stderr_line() gives whole. */
#define SPAWN_MAX_ERROR_LINE 500

/* The last non-empty line of the child's stderr (new string, "" if none),
 * for error messages: control characters become spaces, and a line longer
 * than SPAWN_MAX_ERROR_LINE bytes is cut there and ends in "...". A last
 * line of the retry contract ("retry-after-ms: N", child_retry_after) is
 * skipped: the line before it is the error. */
char *child_last_stderr_line(const struct child *c);

/*
 * The retry contract (orch-exec(1), EXIT STATUS): whether the last
 * non-empty line of the child's stderr is exactly "retry-after-ms: N",
 * N decimal milliseconds, which go in *MS (capped at ORCH_MAX_PAUSE_MS).
 * 1 when it is, else 0 with *MS untouched.
 */
int child_retry_after(const struct child *c, int64_t *ms);

#endif

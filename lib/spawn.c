#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdnoreturn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"
#include "orch.h"
#include "proc.h"
#include "spawn.h"
#include "xalloc.h"
#include "banned.h"

#define READ_CHUNK 65536

/* SIGCHLD writes a byte here so poll() wakes up when a child exits. */
static int sigchld_pipe[2] = { -1, -1 };

/* The descriptor limit this process was given, and whether spawn_init()
 * raised it. */
static struct rlimit nofile_given;
static int nofile_raised;

static void on_sigchld(int sig)
{
	int saved = errno;
	char c = 0;

	(void)sig;
	/* Full pipe means a wake-up is already pending: nothing lost. */
	if (write(sigchld_pipe[1], &c, 1) < 0)
		errno = saved;
	errno = saved;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = sig;
	on_sigchld(sig);
}

/* SIGPIPE stops the run like SIGTERM when someone sends it; the kernel's
 * own, for a write of ours to a pipe nobody reads (an agent that exited
 * before reading its context, a reader of stdout that went away), says
 * nothing the write's EPIPE does not. */
static void on_sigpipe(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	if (info->si_code == SI_USER && info->si_pid == getpid())
		return;
	on_interrupt(sig);
}

/* The agents started and not yet reaped: every other child of this
 * process is something an agent left behind. */
static pid_t *agents;
static size_t nagents, agents_alloc;

static void agent_add(pid_t pid)
{
	if (nagents == agents_alloc) {
		agents_alloc = agents_alloc ? agents_alloc * 2 : 16;
		agents = xreallocarray(agents, agents_alloc, sizeof(*agents));
	}
	agents[nagents++] = pid;
}

static void agent_remove(pid_t pid)
{
	size_t i;

	for (i = 0; i < nagents; i++)
		if (agents[i] == pid) {
			agents[i] = agents[--nagents];
			return;
		}
}

static int is_agent(pid_t pid)
{
	size_t i;

	for (i = 0; i < nagents; i++)
		if (agents[i] == pid)
			return 1;
	return 0;
}

int spawn_interrupted(void)
{
	return interrupted;
}

int spawn_init(struct orch_error *err)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	size_t i;

	if (sigchld_pipe[0] >= 0)
		return sigchld_pipe[0];
	if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) != 0)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "sigaction: %s", strerror(errno));
	/* No SA_RESTART: a stop signal must also end a poll() at once. */
	sa.sa_handler = on_interrupt;
	sa.sa_flags = 0;
	for (i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		if (sigaction(stops[i], &sa, NULL) != 0)
			return orch_error_set(err, ORCH_EX_SOFTWARE, "sigaction: %s",
					      strerror(errno));
	/* Each running agent holds descriptors here (its pipes, or an
	 * in-process turn's connection): at -j 1000 the usual soft limit of
	 * 1024 is too few. Raised to the hard limit, and put back for the
	 * children (exec_child), which may select() on their own. */
	if (getrlimit(RLIMIT_NOFILE, &nofile_given) == 0 &&
	    nofile_given.rlim_cur < nofile_given.rlim_max) {
		struct rlimit raised = { nofile_given.rlim_max, nofile_given.rlim_max };

		nofile_raised = setrlimit(RLIMIT_NOFILE, &raised) == 0;
	}
	/* A child that exits before reading its context must not kill us;
	 * someone else's SIGPIPE is a stop signal. */
	sa.sa_sigaction = on_sigpipe;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGPIPE, &sa, NULL) != 0)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "sigaction: %s", strerror(errno));
	/* What an agent's children leave when their parent dies comes here,
	 * not to init: spawn_reap_orphans() ends it. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "prctl: %s", strerror(errno));
	return sigchld_pipe[0];
}

void spawn_drain_signal(void)
{
	char buf[256];

	while (read(sigchld_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void buf_reserve(struct spawn_buf *b, size_t more)
{
	if (b->cap - b->len > more)
		return;
	while (b->cap - b->len <= more)
		b->cap = b->cap ? b->cap * 2 : READ_CHUNK + 1;
	b->data = xreallocarray(b->data, b->cap, 1);
}

/*
 * The child, between vfork() and exec: it shares the parent's memory until
 * then, so it only makes system calls, writes nothing but *CHILD_ERRNO, and
 * never returns. Every signal is blocked on entry (see child_start): the
 * handlers, which would run in the parent's memory, are reset first.
 *
 * It becomes a session of its own: no controlling terminal (it cannot
 * open /dev/tty, or be stopped by one), its own process group, which it
 * cannot leave (a session leader cannot change its group), and no way
 * into orch-exec's group (a group of another session). It is the
 * subreaper of its own descendants (kept across execve), so what they
 * leave behind stays its own until it exits, then comes to orch-exec.
 * It keeps only standard input, output and error.
 */
static noreturn void exec_child(int in, int out, int errfd, pid_t parent,
				char *const argv[], char *const envp[],
				volatile int *child_errno)
{
	static const int handled[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	struct sigaction dfl;
	sigset_t none;
	size_t i;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaction(handled[i], &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		goto fail;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The parent may have died before prctl took effect. */
	if (getppid() != parent)
		_exit(127);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
		goto fail;
	/* Old kernels lack it: then only the close-on-exec ones go. */
	close_range(3, ~0U, 0);
	if (nofile_raised)
		setrlimit(RLIMIT_NOFILE, &nofile_given);
	execvpe(argv[0], argv, envp ? envp : environ);
fail:
	*child_errno = errno ? errno : ENOEXEC;
	_exit(127);
}

void child_init(struct child *c)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = c->out_fd = c->err_fd = -1;
	c->ends[0] = c->ends[1] = c->ends[2] = -1;
}

static void close_ends(struct child *c)
{
	close_fd(&c->ends[0]);
	close_fd(&c->ends[1]);
	close_fd(&c->ends[2]);
}

int child_prepare(struct child *c, struct orch_error *err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 }, e;

	if (c->ends[0] >= 0)
		return 0;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(er, O_CLOEXEC) != 0) {
		e = errno;
		close_fd(&in[0]);
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&out[1]);
		return orch_error_set(err, e == EMFILE || e == ENFILE ? ORCH_EX_TEMPFAIL
				      : ORCH_EX_SOFTWARE, "pipe: %s", strerror(e));
	}
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = er[0];
	c->ends[0] = in[0];
	c->ends[1] = out[1];
	c->ends[2] = er[1];
	return 0;
}

/*
 * vfork(), not fork(): copying the page tables of the parent and then
 * faulting on every page it touches before the child execs costs more
 * than the agent itself for instant commands (this is why ninja uses
 * posix_spawn). posix_spawn cannot set PR_SET_PDEATHSIG, hence vfork.
 */
int child_start(struct child *c, char *const argv[], char *const envp[],
		const char *input, size_t input_len, size_t out_max,
		int64_t timeout_ms, int64_t kill_after_ms, struct orch_error *err)
{
	volatile int child_errno = 0;
	pid_t parent = getpid(), pid;
	sigset_t all, old;

	if (child_prepare(c, err) != 0)
		return -1;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0)
		exec_child(c->ends[0], c->ends[1], c->ends[2], parent, argv, envp,
			   &child_errno);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close_ends(c);
	if (pid < 0) {
		orch_error_set(err, ORCH_EX_TEMPFAIL, "vfork: %s", strerror(errno));
		goto fail;
	}
	/* vfork returns once the child has exec'd or exited: the errno it
	 * left says which. */
	if (child_errno) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		orch_error_set(err, ORCH_EX_UNAVAILABLE, "cannot run '%s': %s",
			       argv[0], strerror(child_errno));
		goto fail;
	}
	agent_add(pid);
	c->pid = pid;
	fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
	c->input = input;
	c->input_len = input_len;
	c->out_max = out_max;
	c->kill_after = kill_after_ms;
	if (timeout_ms > 0)
		c->deadline = orch_mono_ms() + timeout_ms;
	if (input_len == 0)
		close_fd(&c->in_fd);
	return 0;
fail:
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->err_fd);
	return -1;
}

int child_poll_fds(const struct child *c, struct pollfd *fds)
{
	int n = 0;

	if (c->in_fd >= 0)
		fds[n++] = (struct pollfd){ c->in_fd, POLLOUT, 0 };
	if (c->out_fd >= 0)
		fds[n++] = (struct pollfd){ c->out_fd, POLLIN, 0 };
	if (c->err_fd >= 0)
		fds[n++] = (struct pollfd){ c->err_fd, POLLIN, 0 };
	return n;
}

static void kill_group(struct child *c, int sig)
{
	if (c->pid > 0)
		kill(-c->pid, sig);
}

static void write_input(struct child *c)
{
	while (c->input_off < c->input_len) {
		ssize_t n = write(c->in_fd, c->input + c->input_off,
				  c->input_len - c->input_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* EPIPE: the child does not want the rest; its exit
			 * status will say whether that is a failure. */
			break;
		}
		c->input_off += (size_t)n;
	}
	close_fd(&c->in_fd);
}

/*
 * Keep the last MAX bytes of B: drop what comes before them, and the
 * continuation bytes of a character cut there. Returns the bytes dropped.
 */
static size_t keep_tail(struct spawn_buf *b, size_t max)
{
	size_t drop;

	if (b->len <= max)
		return 0;
	drop = b->len - max;
	while (drop < b->len && ((unsigned char)b->data[drop] & 0xc0) == 0x80 &&
	       drop < b->len - max + 3)
		drop++;
	memmove(b->data, b->data + drop, b->len - drop);
	b->len -= drop;
	b->data[b->len] = '\0';
	return drop;
}

/*
 * Read what is there on *FD into B; EOF closes *FD. Stdout is kept up to
 * MAX bytes (past that the run fails); stderr keeps its last MAX bytes,
 * where a failing program says why.
 */
static void read_into(struct child *c, int *fd, struct spawn_buf *b, size_t max,
		      int is_stdout)
{
	char scratch[READ_CHUNK];

	while (*fd >= 0) {
		ssize_t n;

		if (b->len < max || !is_stdout) {
			buf_reserve(b, READ_CHUNK);
			n = read(*fd, b->data + b->len, READ_CHUNK);
		} else {
			n = read(*fd, scratch, sizeof(scratch));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close_fd(fd);
			return;
		}
		if (!is_stdout) {
			b->len += (size_t)n;
			b->data[b->len] = '\0';
			c->err_dropped += keep_tail(b, max);
			continue;
		}
		if (b->len < max) {
			b->len += (size_t)n;
			if (b->len > max) {
				b->len = max;
				c->out_overflow = 1;
			}
			b->data[b->len] = '\0';
		} else {
			c->out_overflow = 1;
		}
		if (c->out_overflow) {
			/* Never truncate silently: the run fails, so stop it. */
			kill_group(c, SIGKILL);
			close_fd(fd);
			return;
		}
	}
}

void child_handle(struct child *c, const struct pollfd *fds, int nfds)
{
	int i;

	for (i = 0; i < nfds; i++) {
		if (!fds[i].revents)
			continue;
		if (fds[i].fd == c->in_fd)
			write_input(c);
		else if (fds[i].fd == c->out_fd)
			read_into(c, &c->out_fd, &c->out, c->out_max, 1);
		else if (fds[i].fd == c->err_fd)
			read_into(c, &c->err_fd, &c->err, SPAWN_MAX_STDERR, 0);
	}
}

void child_reap(struct child *c)
{
	int status;
	pid_t r;

	if (c->pid <= 0)
		return;
	do
		r = waitpid(c->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != c->pid)
		return;
	agent_remove(c->pid);
	c->pid = -1;
	c->status = status;
	close_fd(&c->in_fd);
	/* What is still in the pipes is the child's; a grandchild holding
	 * them open must not keep the node running. */
	read_into(c, &c->out_fd, &c->out, c->out_max, 1);
	read_into(c, &c->err_fd, &c->err, SPAWN_MAX_STDERR, 0);
	close_fd(&c->out_fd);
	close_fd(&c->err_fd);
}

int64_t child_check_time(struct child *c, int64_t now)
{
	if (c->pid <= 0)
		return 0;
	if (c->deadline && !c->timed_out && now >= c->deadline) {
		c->timed_out = 1;
		kill_group(c, SIGTERM);
		c->kill_at = now + c->kill_after;
	}
	if (c->kill_at && now >= c->kill_at) {
		kill_group(c, SIGKILL);
		c->kill_at = 0;
	}
	if (c->kill_at)
		return c->kill_at;
	return c->timed_out ? 0 : c->deadline;
}

int child_done(const struct child *c)
{
	return c->pid < 0 && c->out_fd < 0 && c->err_fd < 0;
}

void child_kill(struct child *c)
{
	if (c->pid > 0) {
		kill_group(c, SIGKILL);
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
		agent_remove(c->pid);
		c->pid = -1;
	}
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->err_fd);
	close_ends(c);
}

void spawn_reap_orphans(void)
{
	pid_t *kids;
	size_t n, i;

	if (proc_children(&kids, &n) != 0)
		return;
	for (i = 0; i < n; i++) {
		if (is_agent(kids[i]))
			continue;
		kill(kids[i], SIGKILL);
		while (waitpid(kids[i], NULL, WNOHANG) < 0 && errno == EINTR)
			;
	}
	free(kids);
}

/* How many children are left that are not agents, or -1 when unknown. */
static long orphans_left(void)
{
	pid_t *kids;
	size_t n, i;
	long left = 0;

	if (proc_children(&kids, &n) != 0)
		return -1;
	for (i = 0; i < n; i++)
		left += !is_agent(kids[i]);
	free(kids);
	return left;
}

void spawn_reap_all(int64_t max_ms)
{
	int64_t deadline = orch_mono_ms() + max_ms, now;
	struct pollfd p;

	for (;;) {
		spawn_reap_orphans();
		if (orphans_left() <= 0 || (now = orch_mono_ms()) >= deadline)
			return;
		/* Woken by the next SIGCHLD, or polled every 10 ms. */
		p = (struct pollfd){ sigchld_pipe[0], POLLIN, 0 };
		poll(&p, sigchld_pipe[0] >= 0, deadline - now < 10 ? (int)(deadline - now) : 10);
		if (sigchld_pipe[0] >= 0)
			spawn_drain_signal();
	}
}

void child_release(struct child *c)
{
	child_kill(c);
	free(c->out.data);
	free(c->err.data);
	child_init(c);
}

void child_set_ended(struct child *c, int exit_status, char *out, size_t out_len,
		     size_t out_max, char *err, size_t err_len)
{
	child_release(c);
	c->pid = -1;
	/* The wait status of a process that exited with EXIT_STATUS. */
	c->status = (exit_status & 0xff) << 8;
	if (out_len > out_max) {
		/* A process would have been killed for it: nothing is read. */
		c->out_overflow = 1;
		free(out);
		out = NULL;
		out_len = 0;
	}
	/* A process that printed nothing leaves "", not nothing. */
	if (!out)
		out = xstrdup("");
	if (!err) {
		err = xstrdup("");
		err_len = 0;
	}
	c->out = (struct spawn_buf){ out, out_len, out_len + 1 };
	if (err && err_len > SPAWN_MAX_STDERR) {
		c->err_dropped = err_len - SPAWN_MAX_STDERR;
		memmove(err, err + c->err_dropped, SPAWN_MAX_STDERR + 1);
		err_len = SPAWN_MAX_STDERR;
	}
	c->err = (struct spawn_buf){ err, err_len, err_len + 1 };
}

/* The last non-empty line of S[0, END): [*START, returned end). */
static size_t last_line(const char *s, size_t end, size_t *start)
{
	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r' ||
			   s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	*start = end;
	while (*start > 0 && s[*start - 1] != '\n')
		(*start)--;
	return end;
}

/* Whether S[0, N) is "retry-after-ms: DIGITS"; the wait, capped, in *MS. */
static int retry_after_line(const char *s, size_t n, int64_t *ms)
{
	static const char prefix[] = "retry-after-ms:";
	size_t i = sizeof(prefix) - 1, digits = 0;
	int64_t v = 0;

	if (n < i || memcmp(s, prefix, i) != 0)
		return 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
		if (v <= ORCH_MAX_PAUSE_MS)
			v = v * 10 + (s[i] - '0');
	if (digits == 0 || i != n)
		return 0;
	*ms = v < ORCH_MAX_PAUSE_MS ? v : ORCH_MAX_PAUSE_MS;
	return 1;
}

int child_retry_after(const struct child *c, int64_t *ms)
{
	size_t start, end;

	if (!c->err.data)
		return 0;
	end = last_line(c->err.data, c->err.len, &start);
	return retry_after_line(c->err.data + start, end - start, ms);
}

char *child_last_stderr_line(const struct child *c)
{
	const char *s = c->err.data;
	size_t end, start, n, i;
	int64_t ms;
	char *line;
	int cut = 0;

	if (!s)
		return xstrdup("");
	end = last_line(s, c->err.len, &start);
	/* The retry contract's line is not the error: the one before it is. */
	if (retry_after_line(s + start, end - start, &ms))
		end = last_line(s, start, &start);
	n = end - start;
	/* An error message, not a log: bounded, and said to be cut, at a
	 * UTF-8 character boundary. */
	if (n > SPAWN_MAX_ERROR_LINE) {
		n = SPAWN_MAX_ERROR_LINE;
		while (n > 0 && ((unsigned char)s[start + n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	line = xmalloc(n + 4);
	memcpy(line, s + start, n);
	/* Control bytes (a terminal's escape sequences among them) must not
	 * reach a terminal through -v or a log, and the line is stored as
	 * text (executions.error, a todo's last error): ill-formed UTF-8
	 * becomes '?'. */
	for (i = 0; i < n; i++) {
		unsigned char b = (unsigned char)line[i];
		int k;

		if (b < 0x20 || b == 0x7f) {
			line[i] = ' ';
		} else if (b >= 0x80) {
			if ((k = escape_utf8_len((const unsigned char *)line + i, n - i)) > 0)
				i += (size_t)k - 1;
			else
				line[i] = '?';
		}
	}
	memcpy(line + n, cut ? "..." : "", cut ? 4 : 1);
	return line;
}

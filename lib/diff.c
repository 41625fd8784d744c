#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diff.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

/* Where the child's descriptors wait before they are moved to 0-4:
 * above them, so that no move overwrites one not yet moved. */
#define FD_FLOOR 10

/* Move *FD to FD_FLOOR or above, close-on-exec. 0 or -1 (errno set). */
static int lift(int *fd)
{
	int high;

	if (*fd >= FD_FLOOR)
		return 0;
	if ((high = fcntl(*fd, F_DUPFD_CLOEXEC, FD_FLOOR)) < 0)
		return -1;
	close(*fd);
	*fd = high;
	return 0;
}

/* An in-memory file holding LEN bytes of DATA, or -1 (errno set). */
static int memory_file(const char *name, const char *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	while (len > 0) {
		n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	/* Read from the start, whether diff reopens /dev/fd/N or not. */
	if (lseek(fd, 0, SEEK_SET) != 0 || lift(&fd) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The first line of what FD holds (diff's stderr), new, "" for none. */
static char *first_line(int fd)
{
	char buf[512];
	ssize_t n;
	size_t i;

	if (lseek(fd, 0, SEEK_SET) != 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return xstrdup("");
	buf[n] = '\0';
	for (i = 0; i < (size_t)n && buf[i] != '\n'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	buf[i] = '\0';
	return xstrdup(buf);
}

/* Read FD to its end into *OUT; -1 when it says more than the cap. */
static int read_all(int fd, char **out, size_t *len)
{
	size_t cap = 0;
	ssize_t n;

	*out = NULL;
	*len = 0;
	for (;;) {
		if (cap - *len < 65536) {
			cap = cap ? cap * 2 : 65536;
			*out = xreallocarray(*out, cap + 1, 1);
		}
		n = read(fd, *out + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
		if (*len > DIFF_MAX_OUTPUT)
			return -1;
	}
	(*out)[*len] = '\0';
	return 0;
}

/*
 * The child, between fork() and exec: diff with IN (/dev/null) on 0, OUT
 * on 1, ERR on 2, A on 3 and B on 4. Its exec's errno goes back through
 * REPORT (close-on-exec: it reads as empty when the exec worked).
 */
static noreturn void exec_diff(char *const argv[], int out, int errfd, int a, int b,
				int report)
{
	int e, in = open("/dev/null", O_RDONLY);

	signal(SIGPIPE, SIG_DFL);
	if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0 ||
	    dup2(a, 3) < 0 || dup2(b, 4) < 0)
		goto fail;
	execvp(argv[0], argv);
fail:
	e = errno;
	if (write(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Start diff with ARGV as exec_diff() runs it: its pid, or -1 with ERR. */
static pid_t start_diff(char *const argv[], int out, int errfd, int a, int b,
			struct orch_error *err)
{
	int report[2], e = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(report, O_CLOEXEC) != 0 || lift(&report[1]) != 0) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == 0)
		exec_diff(argv, out, errfd, a, b, report[1]);
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		orch_error_set(err, ORCH_EX_TEMPFAIL, "fork: %s", strerror(errno));
		return -1;
	}
	do
		n = read(report[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		orch_error_set(err, ORCH_EX_UNAVAILABLE, "cannot run 'diff': %s", strerror(e));
		return -1;
	}
	return pid;
}

int diff_unified(const struct diff_side *a, const struct diff_side *b, char **out,
		 size_t *out_len, struct orch_error *err)
{
	char *argv[] = { "diff", "-u", "--label", (char *)a->label, "--label",
			 (char *)b->label, "/dev/fd/3", "/dev/fd/4", NULL };
	int fa = -1, fb = -1, ferr = -1, pipefd[2] = { -1, -1 }, status = 0, rc = -1;
	int too_much;
	char *line;
	pid_t pid;

	*out = NULL;
	*out_len = 0;
	if ((fa = memory_file("diff-a", a->data, a->len)) < 0 ||
	    (fb = memory_file("diff-b", b->data, b->len)) < 0 ||
	    (ferr = memory_file("diff-stderr", "", 0)) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) != 0 || lift(&pipefd[0]) != 0 || lift(&pipefd[1]) != 0) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "preparing diff: %s", strerror(errno));
		goto out;
	}
	pid = start_diff(argv, pipefd[1], ferr, fa, fb, err);
	close_fd(&pipefd[1]);
	if (pid < 0)
		goto out;
	if ((too_much = read_all(pipefd[0], out, out_len) != 0))
		kill(pid, SIGKILL);
	close_fd(&pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (too_much) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "diff printed more than %d bytes",
			       DIFF_MAX_OUTPUT);
		goto out;
	}
	/* 0: the same, 1: they differ; anything else is diff's trouble. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		line = first_line(ferr);
		orch_error_set(err, ORCH_EX_SOFTWARE, "diff failed%s%s", *line ? ": " : "", line);
		free(line);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	close_fd(&fa);
	close_fd(&fb);
	close_fd(&ferr);
	close_fd(&pipefd[0]);
	close_fd(&pipefd[1]);
	return rc;
}

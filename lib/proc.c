#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "xalloc.h"
#include "banned.h"

/* An environment bigger than this is not read (the kernel's own bound on
 * argv and environment together is a quarter of the stack limit). */
#define ENVIRON_MAX (8 * 1024 * 1024)
/* Looks for tagged processes after a kill, at most. */
#define TAG_ROUNDS 8

/* A whole small /proc file into BUF (NUL-terminated): its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((size_t)len < size - 1) {
		n = read(fd, buf + len, size - 1 - (size_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

/* The fields of a /proc/PID/stat line after the command name, which may
 * hold spaces and parentheses: from its last ')'. NULL when malformed. */
static const char *stat_fields(const char *line)
{
	const char *p = strrchr(line, ')');

	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Field WHICH (from 3, as proc(5) counts them) of a stat line, or -1. */
static long long stat_field(const char *line, int which)
{
	const char *p = stat_fields(line);
	long long v;
	char *end;
	int field;

	for (field = 3; p && field < which; field++)
		if ((p = strchr(p, ' ')))
			p++;
	if (!p)
		return -1;
	errno = 0;
	v = strtoll(p, &end, 10);
	return errno || end == p ? -1 : v;
}

long long proc_start_time(long pid)
{
	char path[64], line[1024];

	if (snprintf(path, sizeof(path), "/proc/%ld/stat", pid) >= (int)sizeof(path) ||
	    read_small(path, line, sizeof(line)) <= 0)
		return -1;
	return stat_field(line, 22);
}

const char *proc_boot_id(void)
{
	static char id[64];
	ssize_t n;

	if (id[0])
		return id;
	n = read_small("/proc/sys/kernel/random/boot_id", id, sizeof(id));
	while (n > 0 && (id[n - 1] == '\n' || id[n - 1] == ' '))
		id[--n] = '\0';
	/* A colon would make an owner string ambiguous: never expected. */
	if (n <= 0 || strchr(id, ':'))
		memcpy(id, "-", 2);
	return id;
}

unsigned long long proc_pid_namespace(void)
{
	struct stat sb;

	return stat("/proc/self/ns/pid", &sb) == 0 ? (unsigned long long)sb.st_ino : 0;
}

/* Append PID to *PIDS (*N used, *ALLOC allocated). */
static void pids_add(pid_t **pids, size_t *n, size_t *alloc, pid_t pid)
{
	if (*n == *alloc) {
		*alloc = *alloc ? *alloc * 2 : 16;
		*pids = xreallocarray(*pids, *alloc, sizeof(**pids));
	}
	(*pids)[(*n)++] = pid;
}

/* A /proc entry's name as a pid, or 0 when it is not one. */
static pid_t entry_pid(const char *name)
{
	char *end;
	long v;

	if (*name < '1' || *name > '9')
		return 0;
	errno = 0;
	v = strtol(name, &end, 10);
	return errno || *end || v <= 0 ? 0 : (pid_t)v;
}

/* Every process whose parent is this one, the slow way: field 4 of each
 * /proc/PID/stat. */
static int children_by_scan(pid_t **pids, size_t *n, size_t *alloc)
{
	char path[64], line[1024];
	long long self = getpid();
	struct dirent *d;
	DIR *dir = opendir("/proc");
	pid_t pid;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (!(pid = entry_pid(d->d_name)))
			continue;
		if (snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid) < (int)sizeof(path) &&
		    read_small(path, line, sizeof(line)) > 0 && stat_field(line, 4) == self)
			pids_add(pids, n, alloc, pid);
	}
	closedir(dir);
	return 0;
}

int proc_children(pid_t **pids, size_t *n)
{
	char path[64], *buf, *p, *end;
	size_t alloc = 0, cap = 4096;
	ssize_t len;
	long v;

	*pids = NULL;
	*n = 0;
	/* One thread: its children are the process's. */
	snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
	for (;;) {
		buf = xmalloc(cap);
		len = read_small(path, buf, cap);
		if (len < 0 || (size_t)len < cap - 1)
			break;
		free(buf);
		cap *= 2;
	}
	if (len < 0) {
		free(buf);
		if (errno == ENOENT && children_by_scan(pids, n, &alloc) == 0)
			return 0;
		free(*pids);
		*pids = NULL;
		*n = 0;
		return -1;
	}
	for (p = buf; *p; p = end) {
		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (!errno && v > 0)
			pids_add(pids, n, &alloc, (pid_t)v);
	}
	free(buf);
	return 0;
}

/* Whether the environment of PID holds the entry TAG (LEN bytes). BUF
 * is scratch space, grown as needed. */
static int has_tag(pid_t pid, const char *tag, size_t len, char **buf, size_t *cap)
{
	char path[64];
	size_t used = 0, start;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	for (;;) {
		if (used == *cap) {
			if (*cap >= ENVIRON_MAX)
				break;
			*cap = *cap ? *cap * 2 : 65536;
			*buf = xreallocarray(*buf, *cap, 1);
		}
		r = read(fd, *buf + used, *cap - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		used += (size_t)r;
	}
	close(fd);
	for (start = 0; start < used;) {
		char *nul = memchr(*buf + start, '\0', used - start);
		size_t n = nul ? (size_t)(nul - (*buf + start)) : used - start;

		if (n == len && memcmp(*buf + start, tag, len) == 0)
			return 1;
		start += n + 1;
	}
	return 0;
}

static int pids_has(const pid_t *pids, size_t n, pid_t pid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

size_t proc_kill_tagged(const char *tag)
{
	size_t nkilled = 0, alloc = 0, cap = 0, len = strlen(tag), round;
	pid_t self = getpid(), pid, *killed = NULL;
	char *buf = NULL;
	struct dirent *d;
	int found;
	DIR *dir;

	for (round = 0; round < TAG_ROUNDS; round++) {
		if (!(dir = opendir("/proc")))
			break;
		found = 0;
		while ((d = readdir(dir))) {
			if (!(pid = entry_pid(d->d_name)) || pid == self ||
			    pids_has(killed, nkilled, pid))
				continue;
			if (has_tag(pid, tag, len, &buf, &cap) && kill(pid, SIGKILL) == 0) {
				pids_add(&killed, &nkilled, &alloc, pid);
				found = 1;
			}
		}
		closedir(dir);
		if (!found)
			break;
	}
	free(buf);
	free(killed);
	return nkilled;
}

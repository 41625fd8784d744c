#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "orch.h"
#include "watch.h"
#include "xalloc.h"
#include "banned.h"

struct store_watch {
	struct store *store;   /* borrowed */
	int fd;                /* inotify descriptor, -1 when polling */
	int pg_fd;             /* PostgreSQL: the connection's socket, -1 */
	char *name;            /* owned: the database's file name, no directory */
	char *wal;             /* owned: NAME "-wal" */
	int64_t data_version;  /* PRAGMA data_version at the last look */
};

/* Moves when another connection has committed (SQLite's own counter). */
static int data_version(struct store *s, int64_t *out, struct orch_error *err)
{
	return store_pragma(s, "PRAGMA data_version", out, err);
}

struct store_watch *store_watch_new(struct store *s)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	const char *slash = strrchr(store_name(s), '/');
	char *dir;

	w->store = s;
	w->pg_fd = -1;
	if (store_engine(s) == STORE_POSTGRES) {
		/* LISTEN: the server tells every host at each commit. A
		 * failure here shows again at the first store_watch_changed(). */
		w->fd = -1;
		w->pg_fd = store_listen(s, NULL);
		return w;
	}
	w->name = xstrdup(slash ? slash + 1 : store_name(s));
	w->wal = xasprintf("%s-wal", w->name);
	dir = slash ? xstrndup(store_name(s), (size_t)(slash - store_name(s))) : xstrdup(".");
	if (!*dir) {
		free(dir);
		dir = xstrdup("/");
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd >= 0 && inotify_add_watch(w->fd, dir, IN_MODIFY | IN_CREATE |
					    IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(w->fd);
		w->fd = -1;
	}
	free(dir);
	/* An error here shows again at the first store_watch_changed(). */
	if (data_version(s, &w->data_version, NULL) != 0)
		w->data_version = -1;
	return w;
}

void store_watch_free(struct store_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->name);
	free(w->wal);
	free(w);
}

int store_watch_notified(const struct store_watch *w)
{
	return w->fd >= 0 || w->pg_fd >= 0;
}

int store_watch_changed(struct store_watch *w, struct orch_error *err)
{
	int64_t v;

	if (store_engine(w->store) == STORE_POSTGRES) {
		if (w->pg_fd < 0 && (w->pg_fd = store_listen(w->store, err)) < 0)
			return -1;
		return store_notified(w->store, err);
	}
	if (data_version(w->store, &v, err) != 0)
		return -1;
	if (v == w->data_version)
		return 0;
	w->data_version = v;
	return 1;
}

/* Read every queued event; 1 when one was about the database or its WAL. */
static int drain_events(struct store_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;
	int ours = 0;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if ((ev->mask & IN_Q_OVERFLOW) ||
			    (ev->len && (strcmp(ev->name, w->name) == 0 ||
					 strcmp(ev->name, w->wal) == 0)))
				ours = 1;
		}
	return ours;
}

int store_watch_wait(struct store_watch *w, int64_t timeout_ms,
		     struct pollfd *extra, int nextra, struct orch_error *err)
{
	struct pollfd fds[8];
	int64_t deadline = timeout_ms < 0 ? -1 : orch_mono_ms() + timeout_ms;
	int64_t left, recheck = 0;
	int i, n, rc;

	if (nextra > 7)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "too many descriptors to watch");
	for (;;) {
		if ((rc = store_watch_changed(w, err)) != 0)
			return rc;
		left = deadline < 0 ? -1 : deadline - orch_mono_ms();
		if (deadline >= 0 && left <= 0)
			return 0;
		n = 0;
		if (w->fd >= 0)
			fds[n++] = (struct pollfd){ w->fd, POLLIN, 0 };
		else if (w->pg_fd >= 0)
			fds[n++] = (struct pollfd){ w->pg_fd, POLLIN, 0 };
		for (i = 0; i < nextra; i++) {
			extra[i].revents = 0;
			fds[n++] = extra[i];
		}
		if (w->fd < 0 && w->pg_fd < 0 && (left < 0 || left > WATCH_POLL_MS))
			left = WATCH_POLL_MS;
		if (recheck && (left < 0 || left > recheck))
			left = recheck;
		if (left > INT_MAX)
			left = INT_MAX;
		if (poll(fds, (nfds_t)n, (int)left) < 0) {
			if (errno == EINTR)
				return 0;
			return orch_error_set(err, ORCH_EX_SOFTWARE, "poll: %s", strerror(errno));
		}
		for (i = 0; i < nextra; i++)
			extra[i].revents = fds[n - nextra + i].revents;
		for (i = 0; i < nextra; i++)
			if (extra[i].revents)
				return store_watch_changed(w, err);
		/*
		 * A write to the WAL can come before the commit is in the
		 * shared index that data_version reads: look again a little
		 * later (5, 10, 20, ... ms) rather than sleep through it.
		 * Anything else in the directory is not ours: sleep on.
		 */
		if (w->fd >= 0 && fds[0].revents && drain_events(w))
			recheck = recheck ? recheck * 2 : 5;
		else if (recheck)
			recheck = recheck >= 80 ? 0 : recheck * 2;
	}
}

/*
 * watch.h - waiting for another program's write to the store, without a
 * busy loop: how orch-detect --follow, orch-decide --wait and orch-stack
 * say --wait learn at once that a message, a todo, a start or a cycle's
 * end made something due.
 *
 * SQLite in WAL mode appends every commit to the database's -wal file.
 * inotify on the database's directory wakes the waiter at the first such
 * write (IN_MODIFY, IN_CREATE, IN_MOVED_TO of the database or its -wal),
 * and PRAGMA data_version, which moves only when another connection has
 * committed, sorts real changes from the waiter's own writes. Idle, a
 * waiter costs no CPU at all: it sleeps in poll() until the next due time
 * or a write. Where inotify is unavailable (the per-user table is full, a
 * file system without it), it checks data_version every WATCH_POLL_MS
 * instead, a query that reads shared memory only.
 *
 * PostgreSQL: the waiter LISTENs on orch_changed, which a trigger on
 * stacks NOTIFYs at every commit that changes what detection reads (every
 * such write bumps a stack's state_version), on whichever host it was
 * made; it sleeps in poll() on its connection's socket, and notifications
 * from its own connection are not news.
 */
#ifndef ORCH_WATCH_H
#define ORCH_WATCH_H

#include <poll.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* How often a waiter without inotify looks for a change. */
#define WATCH_POLL_MS 50

struct store_watch;

/*
 * A watch over S's database. Never fails: without inotify it polls. Free
 * with store_watch_free() before closing S.
 */
struct store_watch *store_watch_new(struct store *s);
void store_watch_free(struct store_watch *w);

/* Whether the watch sleeps on inotify (1) or polls (0). */
int store_watch_notified(const struct store_watch *w);

/*
 * Wait until another connection commits to the store, TIMEOUT_MS pass
 * (-1: no limit), or one of the NEXTRA descriptors in EXTRA has an event
 * (their revents are set; a signal's self-pipe, a stdout whose reader may
 * go away). Returns 1 when the store changed, 0 when not (timeout, an
 * extra descriptor, an interrupted wait), -1 with ERR on a store error.
 */
int store_watch_wait(struct store_watch *w, int64_t timeout_ms,
		     struct pollfd *extra, int nextra, struct orch_error *err);

/* Whether another connection committed since the last look (1 or 0), -1
 * with ERR. */
int store_watch_changed(struct store_watch *w, struct orch_error *err);

#endif

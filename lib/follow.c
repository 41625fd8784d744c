#include <stdlib.h>
#include <string.h>

#include "follow.h"
#include "orch.h"
#include "schedule.h"
#include "xalloc.h"
#include "banned.h"

/* A stack handed on whose cycle has not been decided yet. */
struct flight {
	int64_t id;            /* the stack */
	int64_t total_cycles;  /* its count when handed on */
	int64_t since_mono;    /* handed on, or its lease last seen held */
};

struct follow {
	struct flight *v;              /* owned; by id */
	size_t n, alloc;               /* entries used, allocated */
	struct schedule_entry *seen;   /* owned: the last scan's running stacks */
	size_t nseen;                  /* entries in seen */
};

struct follow *follow_new(void)
{
	return xcalloc(1, sizeof(struct follow));
}

void follow_free(struct follow *f)
{
	if (!f)
		return;
	free(f->v);
	free(f->seen);
	free(f);
}

size_t follow_in_flight(const struct follow *f)
{
	return f->n;
}

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Stack ID's entry in the last scan (sorted by id), or NULL. An empty
 * array may be NULL, which bsearch() must never be given. */
static const struct schedule_entry *seen(const struct follow *f, int64_t id)
{
	return f->nseen ? bsearch(&id, f->seen, f->nseen, sizeof(*f->seen), by_id) : NULL;
}

static struct flight *flight(const struct follow *f, int64_t id)
{
	return f->n ? bsearch(&id, f->v, f->n, sizeof(*f->v), by_id) : NULL;
}

int follow_scan(struct follow *f, struct store *s, int64_t now, int64_t **due,
		size_t *ndue, int64_t *wait_ms, struct orch_error *err)
{
	const struct schedule_entry *e;
	int64_t mono = orch_mono_ms(), wait = -1, w;
	size_t i, k;

	*due = NULL;
	*ndue = 0;
	free(f->seen);
	f->seen = NULL;
	f->nseen = 0;
	if (schedule_running(s, now, &f->seen, &f->nseen, err) != 0)
		return -1;
	/* What landed: decided, stopped or gone, or lost on the way. */
	for (i = k = 0; i < f->n; i++) {
		struct flight *fl = &f->v[i];

		e = seen(f, fl->id);
		if (!e || e->total_cycles != fl->total_cycles)
			continue;
		if (e->held)
			fl->since_mono = mono;
		else if (mono - fl->since_mono >= FOLLOW_LOST_MS)
			continue;
		else if (wait < 0 || fl->since_mono + FOLLOW_LOST_MS - mono < wait)
			wait = fl->since_mono + FOLLOW_LOST_MS - mono;
		f->v[k++] = *fl;
	}
	f->n = k;
	for (i = 0; i < f->nseen; i++) {
		e = &f->seen[i];
		if (e->held || flight(f, e->id))
			continue;
		if (e->due) {
			*due = xreallocarray(*due, *ndue + 1, sizeof(**due));
			(*due)[(*ndue)++] = e->id;
			continue;
		}
		w = e->next_run_at - now;
		if (wait < 0 || w < wait)
			wait = w;
	}
	*wait_ms = wait;
	return 0;
}

int follow_is_in_flight(const struct follow *f, int64_t id)
{
	return flight(f, id) != NULL;
}

void follow_sent(struct follow *f, const int64_t *ids, size_t n)
{
	const struct schedule_entry *e;
	int64_t mono = orch_mono_ms();
	size_t i;

	for (i = 0; i < n; i++) {
		if (!(e = seen(f, ids[i])) || flight(f, ids[i]))
			continue;
		if (f->n == f->alloc) {
			f->alloc = f->alloc ? f->alloc * 2 : 64;
			f->v = xreallocarray(f->v, f->alloc, sizeof(*f->v));
		}
		f->v[f->n++] = (struct flight){ ids[i], e->total_cycles, mono };
	}
	qsort(f->v, f->n, sizeof(*f->v), by_id);
}

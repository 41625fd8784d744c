#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_env.h"
#include "cycle.h"
#include "orch.h"
#include "proc.h"
#include "xalloc.h"
#include "banned.h"

static char *host_name(void)
{
	const char *env = getenv("ORCH_HOST");
	char buf[256];

	if (env && *env)
		return xstrdup(env);
	if (gethostname(buf, sizeof(buf)) != 0)
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	return xstrdup(buf);
}

char *cycle_owner_self(void)
{
	char *host = host_name(), *owner;

	owner = xasprintf("%s:%ld:%lld:%s:%llu", host, (long)getpid(),
			  proc_start_time((long)getpid()), proc_boot_id(),
			  proc_pid_namespace());
	free(host);
	return owner;
}

int cycle_renew_leases(struct store *s, const char *owner, int64_t expires,
		       struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "UPDATE stacks SET lease_expires_at = ?"
					" WHERE lease_owner = ?", err);

	if (!st)
		return -1;
	stmt_bind_int(st, 1, expires);
	stmt_bind_text(st, 2, owner);
	return store_step_done(s, st, "renewing the leases", err);
}

/* An owner string taken apart. */
struct owner {
	char *host;             /* owned */
	long pid;
	long long start;        /* clock ticks since boot, -1 unknown */
	char *boot;             /* owned; NULL in the old format */
	unsigned long long ns;  /* PID namespace inode; 0 in the old format */
};

static void owner_release(struct owner *o)
{
	free(o->host);
	free(o->boot);
}

/* The field after S's last ':', cut off S; NULL when S has none. */
static char *cut_last(char *s)
{
	char *colon = strrchr(s, ':');

	if (!colon)
		return NULL;
	*colon = '\0';
	return colon + 1;
}

/* S, all of it, as a number at least MIN into *OUT: 0, or -1. */
static int whole_number(const char *s, long long min, long long *out)
{
	char *end;

	if (!*s || *s == ' ' || *s == '+')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end || *out < min ? -1 : 0;
}

/* What /proc/sys/kernel/random/boot_id holds, or "-" for unknown. */
static int is_boot_id(const char *s)
{
	size_t i;

	if (strcmp(s, "-") == 0)
		return 1;
	for (i = 0; s[i]; i++)
		if (!strchr("0123456789abcdef-", s[i]))
			return 0;
	return i == 36;
}

/*
 * Take OWNER apart: "HOST:PID:START:BOOT:PIDNS", or the old
 * "HOST:PID:START" of orch before issue 10. 0, or -1 when it is neither.
 */
static int owner_parse(const char *owner, struct owner *o)
{
	char *copy = xstrdup(owner), *ns, *boot, *start, *pid;
	long long v_ns = 0, v_pid, v_start;
	int rc = -1;

	memset(o, 0, sizeof(*o));
	ns = cut_last(copy);
	boot = ns ? cut_last(copy) : NULL;
	if (!boot || whole_number(ns, 0, &v_ns) != 0 || !is_boot_id(boot)) {
		/* The old format: put back what was cut. */
		free(copy);
		copy = xstrdup(owner);
		boot = NULL;
		v_ns = 0;
	}
	start = cut_last(copy);
	pid = start ? cut_last(copy) : NULL;
	if (!pid || !*copy || whole_number(pid, 1, &v_pid) != 0 || v_pid > INT32_MAX ||
	    whole_number(start, -1, &v_start) != 0)
		goto out;
	o->pid = (long)v_pid;
	o->start = v_start;
	o->ns = (unsigned long long)v_ns;
	o->host = xstrdup(copy);
	o->boot = boot ? xstrdup(boot) : NULL;
	rc = 0;
out:
	free(copy);
	return rc;
}

enum holder_state {
	HOLDER_HERE_ALIVE,      /* a live process here */
	HOLDER_HERE_GONE,       /* a process here that is gone */
	HOLDER_ELSEWHERE,       /* another host's, boot's or PID namespace's,
				   or unreadable: cannot check */
};

/*
 * Where OWNER runs and whether it is alive. Only a holder here (this
 * host name, this boot, this PID namespace: its pid means the same
 * process to us) can be checked; a recycled pid has another start time,
 * so it does not pass for the holder. An owner of the old format has no
 * boot or namespace: its host name alone says whether it is here.
 */
static enum holder_state holder_state(const char *owner)
{
	enum holder_state state = HOLDER_ELSEWHERE;
	char *host = host_name();
	struct owner o;

	if (owner_parse(owner, &o) != 0) {
		free(host);
		return HOLDER_ELSEWHERE;
	}
	if (strcmp(o.host, host) == 0 &&
	    (!o.boot || (strcmp(o.boot, proc_boot_id()) == 0 &&
			 o.ns == proc_pid_namespace()))) {
		state = HOLDER_HERE_ALIVE;
		if (kill((pid_t)o.pid, 0) != 0 && errno == ESRCH)
			state = HOLDER_HERE_GONE;
		else if (proc_start_time(o.pid) != o.start)
			state = HOLDER_HERE_GONE;
	}
	owner_release(&o);
	free(host);
	return state;
}

/* cycle.h says why a live holder here is asked, not its expiry, and why
 * a lease taken in the future has expired. */
int cycle_lease_held(const char *holder, int64_t expires, int64_t taken_at,
		     int64_t now)
{
	switch (holder_state(holder)) {
	case HOLDER_HERE_ALIVE:
		return 1;
	case HOLDER_HERE_GONE:
		return 0;
	case HOLDER_ELSEWHERE:
		break;
	}
	return expires > now && taken_at <= now + ORCH_CLOCK_SLACK_MS;
}

char *cycle_owner_short(const char *owner)
{
	struct owner o;
	char *s;

	if (owner_parse(owner, &o) != 0)
		return xstrdup(owner);
	s = xasprintf("%s:%ld", o.host, o.pid);
	owner_release(&o);
	return s;
}

void cycle_claim_release(struct cycle_claim *c)
{
	free(c->skip_reason);
	free(c->abandoned_by);
	memset(c, 0, sizeof(*c));
}

/*
 * SIGKILL what the agents of OWNER, an orch-exec that is gone, left
 * running: every process tagged with it (agent_env.h), whatever its
 * group, session or parent. Only a holder known to be gone, from this
 * host, is looked for: another host's left nothing here.
 * Once per owner in a process: what is killed starts nothing more.
 */
static void end_leftovers(const char *owner)
{
	static char *swept[16];
	static size_t next;
	char *tag;
	size_t i;

	if (holder_state(owner) != HOLDER_HERE_GONE)
		return;
	for (i = 0; i < sizeof(swept) / sizeof(swept[0]); i++)
		if (swept[i] && strcmp(swept[i], owner) == 0)
			return;
	tag = xasprintf("%s=%s", AGENT_ENV_OWNER, owner);
	proc_kill_tagged(tag);
	free(tag);
	free(swept[next]);
	swept[next] = xstrdup(owner);
	next = (next + 1) % (sizeof(swept) / sizeof(swept[0]));
}

/* End what the cycles of STACK_ID left running have left of their agents. */
static int end_cycles_leftovers(struct store *s, int64_t stack_id, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT DISTINCT owner FROM executions"
					 " WHERE stack_id = ? AND status = 'running'"
					 " AND owner IS NOT NULL", err);
	int rc;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	while ((rc = stmt_step(st)) == STMT_ROW)
		end_leftovers(stmt_text(st, 0));
	if (rc != STMT_DONE)
		store_error(s, err, "recovering an abandoned cycle");
	store_finish(s, st);
	return rc == STMT_DONE ? 0 : -1;
}

/* Inside the claim's transaction: the previous holder is gone. */
static int recover_abandoned(struct store *s, int64_t stack_id, int64_t now,
			     struct cycle_claim *claim, struct orch_error *err)
{
	struct stmt *st;
	char *why = claim->abandoned_by
		? xasprintf("abandoned: its orch-exec (%s) is gone", claim->abandoned_by)
		: xstrdup("abandoned: its orch-exec is gone");
	int rc;

	if (end_cycles_leftovers(s, stack_id, err) != 0)
		goto fail;
	st = store_prepare(s, "UPDATE executions SET status = 'failed', ended_at = ?,"
			   " error = ? WHERE stack_id = ? AND status = 'running'", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, now);
	stmt_bind_text(st, 2, why);
	stmt_bind_int(st, 3, stack_id);
	if (store_step_done(s, st, "recovering an abandoned cycle", err) != 0)
		goto fail;
	st = store_prepare(s, "UPDATE todos SET status = 'pending'"
			   " WHERE stack_id = ? AND status = 'in_progress'", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, stack_id);
	if (store_step_done(s, st, "recovering an abandoned cycle", err) != 0)
		goto fail;
	claim->todos_returned = store_changes(s);
	rc = 0;
	goto out;
fail:
	rc = -1;
out:
	free(why);
	return rc;
}

/* What the store says of a stack's lease, read by read_lease(). */
enum lease_state {
	LEASE_GONE,      /* no such stack */
	LEASE_FREE,      /* nobody holds it, nothing to recover */
	LEASE_HELD,      /* a live holder has it: CLAIM->skip_reason says who */
	LEASE_ABANDONED, /* its holder is gone, or a cycle was left running */
};

/* Whether stack STACK_ID exists: 1, 0, or -1 with ERR. */
static int stack_exists(struct store *s, int64_t stack_id, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT 1 FROM stacks WHERE id = ?", err);
	int64_t one;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	return store_query_int(s, st, &one, "reading the lease", err);
}

/*
 * Read stack STACK_ID's lease at NOW inside the caller's transaction:
 * *STATE gets its execution_state (new string, NULL when gone), CLAIM
 * gets skip_reason when it is held and abandoned_by when its holder is
 * gone. Returns an enum lease_state, or -1 with ERR.
 *
 * On PostgreSQL the row is locked for the rest of the claim (FOR
 * UPDATE), so that a renewal by the holder on another host cannot land
 * between this read and the takeover; one another transaction has
 * locked (a claim or a renewal under way) is skipped, not waited for.
 */
static int read_lease(struct store *s, int64_t stack_id, int64_t now, char **state,
		      struct cycle_claim *claim, struct orch_error *err)
{
#define LEASE_SQL "SELECT execution_state, lease_owner,"                          \
	" COALESCE(lease_expires_at, 0),"                                         \
	" EXISTS (SELECT 1 FROM executions WHERE stack_id = ?1 AND status = 'running')," \
	" " CYCLE_LEASE_TAKEN_SQL " FROM stacks WHERE id = ?1"
	struct stmt *st = store_prepare(s, store_sql(s, LEASE_SQL,
						     LEASE_SQL " FOR UPDATE OF stacks SKIP LOCKED"),
					err);
#undef LEASE_SQL
	const char *holder;
	char *who;
	int rc;

	*state = NULL;
	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	rc = stmt_step(st);
	if (rc != STMT_ROW) {
		if (rc != STMT_DONE)
			store_error(s, err, "reading the lease");
		store_finish(s, st);
		if (rc != STMT_DONE)
			return -1;
		if (store_engine(s) == STORE_SQLITE || (rc = stack_exists(s, stack_id, err)) == 0)
			return LEASE_GONE;
		if (rc < 0)
			return -1;
		claim->skip_reason = xstrdup("another pipeline is taking or renewing its lease");
		*state = xstrdup("running");
		return LEASE_HELD;
	}
	*state = store_column_strdup(st, 0);
	holder = stmt_text(st, 1);
	rc = LEASE_FREE;
	if (holder && *holder) {
		who = cycle_owner_short(holder);
		if (cycle_lease_held(holder, stmt_int(st, 2),
				     stmt_int(st, 4), now)) {
			claim->skip_reason = xasprintf("another pipeline holds the stack (%s)", who);
			free(who);
			rc = LEASE_HELD;
		} else {
			claim->abandoned_by = who;
			rc = LEASE_ABANDONED;
		}
	} else if (stmt_int(st, 3)) {
		/* A cycle left running without a lease holder is abandoned too. */
		rc = LEASE_ABANDONED;
	}
	store_finish(s, st);
	return rc;
}

/* Whether a cycle of STACK_ID that started after PLANNED_AT on a host
 * other than HOST has completed: 1, 0, or -1 with ERR. (Its decision may
 * not be recorded yet: the next run it sets is no sign. One still
 * running is the lease's to judge, held or abandoned; a failed one may
 * be an abandoned one recovered, which ran nothing.) */
static int ran_elsewhere_since(struct store *s, int64_t stack_id, int64_t planned_at,
			       const char *host, struct orch_error *err)
{
	struct stmt *st = store_prepare(s, "SELECT 1 FROM executions WHERE stack_id = ?1"
					" AND started_at > ?2 AND status = 'completed'"
					" AND substr(owner, 1, length(?3) + 1) <> (?3 || ':') LIMIT 1",
					err);
	int64_t one;

	if (!st)
		return -1;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, planned_at);
	stmt_bind_text(st, 3, host);
	return store_query_int(s, st, &one, "reading the stack's cycles", err);
}

int cycle_claim_in(struct store *s, int64_t stack_id, const char *owner,
		   int64_t ttl_ms, int64_t planned_at, struct cycle_claim *claim,
		   struct orch_error *err)
{
	struct stmt *st = NULL;
	char *host = NULL, *state = NULL;
	int64_t now;
	int lease;

	memset(claim, 0, sizeof(*claim));
	now = orch_now_ms();
	/* Its writer is the lease's holder, or another claim: pass over it. */
	if ((lease = store_take_stack(s, stack_id, err)) <= 0) {
		if (lease < 0)
			goto fail;
		claim->skip_reason = xstrdup("another pipeline is writing to the stack");
		goto done;
	}
	if ((lease = read_lease(s, stack_id, now, &state, claim, err)) < 0)
		goto fail;
	if (lease == LEASE_GONE) {
		claim->skip_reason = xstrdup("stack was deleted");
		goto done;
	}
	if (strcmp(state, "running") != 0) {
		free(claim->skip_reason);
		claim->skip_reason = xasprintf("stack is %s", state);
		goto done;
	}
	if (lease == LEASE_HELD)
		goto done;
	host = cycle_owner_short(owner);
	if (strrchr(host, ':'))
		*strrchr(host, ':') = '\0';
	if (planned_at > 0) {
		int ran = ran_elsewhere_since(s, stack_id, planned_at, host, err);

		if (ran < 0)
			goto fail;
		if (ran) {
			claim->skip_reason = xstrdup("another host ran it since its graph was made");
			goto done;
		}
	}
	if (lease == LEASE_ABANDONED && recover_abandoned(s, stack_id, now, claim, err) != 0)
		goto fail;

	st = store_prepare(s, "INSERT INTO executions (stack_id, cycle, status, started_at, owner)"
			   " VALUES (?1, (SELECT COALESCE(MAX(cycle), 0) + 1 FROM executions"
			   " WHERE stack_id = ?1), 'running', ?2, ?3) RETURNING id, cycle", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_int(st, 2, now);
	stmt_bind_text(st, 3, owner);
	if (stmt_step(st) != STMT_ROW) {
		store_error(s, err, "starting a cycle");
		goto fail;
	}
	claim->execution_id = stmt_int(st, 0);
	claim->cycle = stmt_int(st, 1);
	stmt_step(st);
	store_finish(s, st);
	st = store_prepare(s, "UPDATE stacks SET lease_owner = ?, lease_host = ?,"
			   " lease_pid = ?, lease_expires_at = ?, lease_execution_id = ?"
			   " WHERE id = ?", err);
	if (!st)
		goto fail;
	stmt_bind_text(st, 1, owner);
	stmt_bind_text(st, 2, host);
	stmt_bind_int(st, 3, (int64_t)getpid());
	stmt_bind_int(st, 4, now + ttl_ms < now ? INT64_MAX : now + ttl_ms);
	stmt_bind_int(st, 5, claim->execution_id);
	stmt_bind_int(st, 6, stack_id);
	if (store_step_done(s, st, "taking the lease", err) != 0) {
		st = NULL;
		goto fail;
	}
	st = NULL;
	claim->claimed = 1;
done:
	store_finish(s, st);
	free(host);
	free(state);
	return 0;
fail:
	store_finish(s, st);
	free(host);
	free(state);
	cycle_claim_release(claim);
	return -1;
}

int cycle_recover(struct store *s, int64_t stack_id, json_t **recovered,
		  struct orch_error *err)
{
	struct cycle_claim claim;
	struct stmt *st;
	char *state = NULL;
	int64_t now;
	int lease, rc = -1;

	*recovered = NULL;
	memset(&claim, 0, sizeof(claim));
	if (store_begin(s, err) != 0)
		return -1;
	now = orch_now_ms();
	if ((lease = read_lease(s, stack_id, now, &state, &claim, err)) < 0)
		goto out;
	if (lease != LEASE_ABANDONED) {
		rc = 0;
		goto out;
	}
	if (recover_abandoned(s, stack_id, now, &claim, err) != 0)
		goto out;
	st = store_prepare(s, "UPDATE stacks SET lease_owner = NULL, lease_host = NULL,"
			   " lease_pid = NULL, lease_expires_at = NULL, lease_execution_id = NULL"
			   " WHERE id = ?", err);
	if (!st)
		goto out;
	stmt_bind_int(st, 1, stack_id);
	if (store_step_done(s, st, "releasing the lease", err) != 0 ||
	    store_commit(s, err) != 0)
		goto out;
	*recovered = xjson(json_pack("{sosI}", "abandoned_by",
				     claim.abandoned_by ? xjson(json_string(claim.abandoned_by))
							: json_null(),
				     "todos_returned", (json_int_t)claim.todos_returned));
	rc = 1;
out:
	store_rollback(s);
	cycle_claim_release(&claim);
	free(state);
	return rc;
}

int cycle_recovery_candidates(struct store *s, const int64_t *ids, size_t n,
			      int64_t **out, size_t *nout, struct orch_error *err)
{
	struct stmt *st;
	size_t alloc = 0;
	char *json = store_id_list(ids, n);
	int rc;

	*out = NULL;
	*nout = 0;
	/* A lease, or a cycle left running: cheap to find, rare to have. */
#define RECOVERABLE(ids)                                                          \
	"SELECT id FROM stacks WHERE id IN (" ids ")"                               \
	"   AND (lease_owner IS NOT NULL OR EXISTS (SELECT 1 FROM executions e"      \
	"        WHERE e.stack_id = stacks.id AND e.status = 'running'))"            \
	" ORDER BY id"
	st = store_prepare(s, store_sql(s, RECOVERABLE(STORE_IDS_SQLITE("?1")),
					 RECOVERABLE(STORE_IDS_PG("?1"))), err);
#undef RECOVERABLE
	if (!st) {
		free(json);
		return -1;
	}
	stmt_bind_text(st, 1, json);
	while ((rc = stmt_step(st)) == STMT_ROW) {
		if (*nout == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			*out = xreallocarray(*out, alloc, sizeof(**out));
		}
		(*out)[(*nout)++] = stmt_int(st, 0);
	}
	store_finish(s, st);
	free(json);
	if (rc != STMT_DONE) {
		free(*out);
		*out = NULL;
		*nout = 0;
		return store_error(s, err, "looking for abandoned cycles");
	}
	return 0;
}

int cycle_begin(struct store *s, int64_t stack_id, const char *owner,
		int64_t ttl_ms, int64_t planned_at, struct cycle_claim *claim,
		struct orch_error *err)
{
	memset(claim, 0, sizeof(*claim));
	if (store_begin_stacks(s, err) != 0)
		return -1;
	if (cycle_claim_in(s, stack_id, owner, ttl_ms, planned_at, claim, err) != 0) {
		store_rollback(s);
		return -1;
	}
	if (store_commit(s, err) != 0) {
		cycle_claim_release(claim);
		return -1;
	}
	return 0;
}

int cycle_end(struct store *s, int64_t stack_id, int64_t execution_id,
	      const char *owner, const char *status, const char *error,
	      const json_t *summary, const char *execution_text,
	      struct orch_error *err)
{
	char *summary_text = json_dumps(summary, JSON_COMPACT);
	struct stmt *st;
	int rc = -1;

	if (!summary_text) {
		orch_error_set(err, ORCH_EX_SOFTWARE, "out of memory");
		goto out;
	}
	if (store_begin_stack(s, stack_id, err) != 0)
		goto out;
	st = store_prepare(s, "UPDATE executions SET status = ?, ended_at = ?, error = ?,"
			   " summary = ? WHERE id = ?", err);
	if (!st)
		goto fail;
	stmt_bind_text(st, 1, status);
	stmt_bind_int(st, 2, orch_now_ms());
	if (error)
		stmt_bind_text(st, 3, error);
	stmt_bind_text(st, 4, summary_text);
	stmt_bind_int(st, 5, execution_id);
	if (store_step_done(s, st, "recording the cycle", err) != 0)
		goto fail;
	st = store_prepare(s, "INSERT INTO graphs (execution_id, graph) VALUES (?, ?)"
			   " ON CONFLICT (execution_id) DO UPDATE SET graph = excluded.graph", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, execution_id);
	stmt_bind_text(st, 2, execution_text);
	if (store_step_done(s, st, "recording the graph", err) != 0)
		goto fail;
	st = store_prepare(s, "UPDATE stacks SET lease_owner = NULL, lease_host = NULL,"
			   " lease_pid = NULL, lease_expires_at = NULL, lease_execution_id = NULL"
			   " WHERE id = ? AND lease_owner = ?", err);
	if (!st)
		goto fail;
	stmt_bind_int(st, 1, stack_id);
	stmt_bind_text(st, 2, owner);
	if (store_step_done(s, st, "releasing the lease", err) != 0)
		goto fail;
	rc = store_commit(s, err);
	goto out;
fail:
	store_rollback(s);
out:
	free(summary_text);
	return rc;
}

int cycle_trace(struct store *s, const struct cycle_trace *t,
		struct orch_error *err)
{
	struct stmt *st = store_prepare(s,
		"INSERT INTO traces (execution_id, stack_id, agent, attempt, started_at,"
		" ended_at, status, exit_status, input, output, error, usage, stderr,"
		" stderr_dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
	char *usage = NULL;
	int rc;

	if (!st)
		return -1;
	if (t->usage && !(usage = json_dumps(t->usage, JSON_COMPACT))) {
		store_finish(s, st);
		return orch_error_set(err, ORCH_EX_SOFTWARE, "out of memory");
	}
	stmt_bind_int(st, 1, t->execution_id);
	stmt_bind_int(st, 2, t->stack_id);
	stmt_bind_text(st, 3, t->agent);
	stmt_bind_int(st, 4, t->attempt);
	stmt_bind_int(st, 5, t->started_at);
	stmt_bind_int(st, 6, t->ended_at);
	stmt_bind_text(st, 7, t->status);
	if (t->exit_status >= 0)
		stmt_bind_int(st, 8, t->exit_status);
	if (t->input)
		stmt_bind_text(st, 9, t->input);
	if (t->output)
		stmt_bind_text_len(st, 10, t->output, t->output_len);
	if (t->error)
		stmt_bind_text(st, 11, t->error);
	if (usage)
		stmt_bind_text(st, 12, usage);
	if (t->err_output)
		stmt_bind_text_len(st, 13, t->err_output, t->err_output_len);
	stmt_bind_int(st, 14, (int64_t)t->err_dropped);
	rc = store_step_done(s, st, "recording a trace", err);
	free(usage);
	return rc;
}

/*
 * turns.h - the built-in agent run inside orch-exec: what the process
 * `orch-agent --role ROLE` would do, done as an LLM turn (llm.h) on
 * orch-exec's own event loop, the requests of every turn on one pool of
 * connections (http.h). No fork, no exec, no CA bundle parsed per call,
 * no new connection per call.
 *
 * A turn gets what the process would have had: the settings orch-agent
 * reads without flags (llm_configure(): the environment, then the
 * configuration), the same prompt, the provider memory
 * (provider_caps.h), the shared quota (quota.h), and its own faults and
 * cassette from the environment, as a process of its own would; its
 * requests are recorded in usage (usage.h) in the same store. And it
 * leaves what the process would have left, which orch-exec reads exactly
 * as a child's (exec_node.c), so traces, retries, the retry contract and
 * the charging of failures are the same on both paths: an exit status,
 * the actions document as its standard output, and its warnings as its
 * standard error ("orch-agent: ...", the retry contract's last line).
 *
 * What the process path gives that this does not is isolation from a
 * bug: a crash in the reply's parser would end orch-exec and every turn
 * with it, where a process ends alone. The parser is the one that
 * orch-agent runs (fuzzed: tests/fuzz), every turn is bounded as the
 * process was (the reply's size, the per-request timeout, the turn's
 * deadline, orch-exec's per-attempt timeout), and turns share nothing but
 * the pool and the read-only settings. exec.in_process = 0 runs the
 * process instead.
 */
#ifndef ORCH_TURNS_H
#define ORCH_TURNS_H

#include <stdint.h>

#include "config.h"
#include "http.h"
#include "spawn.h"
#include "store.h"

struct turns;
struct turn_job;

/*
 * Every role's settings from C (borrowed only for the call) and the
 * environment, and one pool, for turns whose usage goes to the store S
 * (borrowed: orch-exec's, used between its transactions), and whose
 * provider memory and shared quota go to the same database. Never fails:
 * what cannot be set up (a bad setting, a prompt missing) is what each of
 * that role's turns ends with, as the process would have.
 */
struct turns *turns_new(const struct config *c, struct store *s);
void turns_free(struct turns *ts);

/* The pool the turns' requests go through, for the caller's wait. */
struct http_pool *turns_pool(struct turns *ts);

/*
 * Begin a turn of the agent AGENT_INDEX (orch_agents) on CONTEXT (LEN
 * bytes, borrowed for the call), the document a process would read.
 */
struct turn_job *turns_start(struct turns *ts, int agent_index, const char *context,
			     size_t len);

/*
 * Move J on as far as it goes without waiting: 0 once it has ended; 1
 * while it waits, with *WAKE_AT the monotonic ms it next needs a step at,
 * or -1 when it waits for the pool.
 */
int turns_step(struct turn_job *j, int64_t *wake_at);

/*
 * What the ended J left, put in C as a child that has ended
 * (child_set_ended()), and J freed. An unended J is dropped first (its
 * request stopped), the requests answered before counted in usage, as a
 * killed process's would not be.
 */
void turns_end(struct turn_job *j, struct child *c);

#endif

/*
 * graph.h - what to run in a cycle, and in which order (README.md,
 * "orch.graph").
 *
 * graph_build() is a pure function from an orch.work_status document and a
 * clock to an orch.graph document: one node per agent with work, highest
 * priority first, each with the agents it waits for and its wave (its
 * dependency level). orch-exec runs a wave's nodes side by side and the
 * waves one after another, so the waves are the whole schedule.
 *
 * The writers draw a graph for people: Graphviz DOT and Mermaid. They read
 * orch.graph and orch.execution documents alike (an execution is a graph
 * whose nodes carry "status", "duration_ms" and "attempts"), so
 * `orch-stack graph` draws recorded cycles with the same code.
 */
#ifndef ORCH_GRAPH_H
#define ORCH_GRAPH_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "error.h"

/*
 * The orch.graph of WORK_STATUS (an orch.work_status document, borrowed)
 * created at NOW (ms since the epoch): a NEW reference, or NULL with ERR
 * set to status 65 and a message naming the field at fault.
 *
 * The rules:
 *   - nodes: the agents with "has_work": true, by priority, highest first;
 *     ties in the order planner, builder, communicator, reviewer. A node's
 *     id is "STACKNAME/AGENT".
 *   - deps: the agent's depends_on, in its order, without repeats, keeping
 *     only agents that have a node (waiting for an agent that will not run
 *     would never end).
 *   - wave: 0 without deps, else 1 + the highest wave of its deps.
 *     "waves" lists, for each wave from 0, its agents in node order.
 *   - max_priority: the highest priority of ALL four agents, with work or
 *     not (0 when none has work), for orch-decide.
 *   - "stack" is copied whole; other top-level members of the input
 *     ("computed_at", "cached", ...) are ignored.
 *
 * Validation is strict: the stack must be an object with an integer "id"
 * (1 or more) and a string "name"; "agents" must hold exactly the four
 * agents, each an object with "has_work" (boolean), "priority" (integer 0
 * to 10), "reason" (string) and "depends_on" (array of agent names). The
 * dependencies as declared, with work or not, must not form a cycle:
 * "dependency cycle: builder -> reviewer -> builder", where "A -> B" reads
 * "A depends on B"; the cycle is named from the first agent in tie-break
 * order that leads into it.
 */
json_t *graph_build(const json_t *work_status, int64_t now, struct orch_error *err);

/*
 * Write GRAPH (an orch.graph or orch.execution document, borrowed) to FP as
 * one Graphviz digraph named after the stack, laid out left to right: each
 * wave a rank ({ rank=same; ... }), each node labelled with its agent,
 * priority and reason, an edge from each dep to the node that waits for it.
 * A node with a "status" also shows the outcome, "duration_ms" and (more
 * than one) "attempts", and is filled green (completed), red (failed) or
 * grey (skipped), and a failed or skipped node's "error" (why) is its last
 * line, cut to 60 characters. Strings are escaped for DOT (escape.h); line
 * breaks in a reason stay line breaks, other control characters become
 * spaces.
 *
 * Returns 0, or -1 with ERR set: 65 when GRAPH is not a well-formed graph
 * (the message names the field), 70 on a write error.
 */
int graph_write_dot(FILE *fp, const json_t *graph, struct orch_error *err);

/*
 * Write GRAPH like graph_write_dot() as a Mermaid "flowchart LR": the stack
 * name as the diagram's title (front matter), each wave a subgraph
 * "wave N", the same labels, edges and colours (classDef completed, failed,
 * skipped). Label text is escaped with Mermaid's entity codes (#quot;,
 * #35;, #lt;, #gt;, #amp;, #92;) and line breaks become <br>.
 *
 * Returns 0, or -1 with ERR set as graph_write_dot() does.
 */
int graph_write_mermaid(FILE *fp, const json_t *graph, struct orch_error *err);

/*
 * One picture of the N documents GRAPHS (borrowed): with one, what
 * graph_write_dot() or graph_write_mermaid() writes; with more, one
 * digraph "orch" (a flowchart titled "N stacks") with a cluster (a
 * subgraph) per stack, labelled with its name, its nodes named
 * "sI_AGENT", and "no work" in a stack without nodes, so that `dot -Tpng`
 * draws every stack of a cycle. Errors as graph_write_dot()'s, the
 * message prefixed with "drawing I" (from 1).
 */
int graph_write_dot_many(FILE *fp, const json_t *const *graphs, size_t n,
			 struct orch_error *err);
int graph_write_mermaid_many(FILE *fp, const json_t *const *graphs, size_t n,
			     struct orch_error *err);

/*
 * GRAPH as an <svg> element for an HTML page (no XML prolog): each wave a
 * column, each node a box of class "node completed|failed|skipped|planned"
 * with its agent and outcome, its reason and error in its <title>, an
 * arrow from each dep. Text is escaped for HTML (escape.h). Errors as
 * graph_write_dot()'s.
 */
int graph_write_svg(FILE *fp, const json_t *graph, struct orch_error *err);

/* 0 when GRAPH can be drawn, else -1 with ERR as graph_write_dot()'s. */
int graph_check_drawing(const json_t *graph, struct orch_error *err);

#endif

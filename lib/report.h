/*
 * report.h - one stack on one self-contained HTML page, for a person to
 * look at in a browser, from a file: no script of its own, no network
 * (its Content-Security-Policy forbids any request), CSS and SVG inline.
 *
 * The page holds the stack's state (and why it keeps failing, when it
 * does), the latest artifact rendered in an iframe beside the list of
 * its versions, the conversation, the messages between stacks, the todo
 * board, a timeline of the recent cycles (a lane per agent, each attempt
 * coloured by outcome), the tokens per agent and day, and the last
 * executed graph.
 *
 * Everything agents and users wrote goes through escape_html(). The
 * artifact is the iframe's srcdoc, sandboxed with scripts allowed and
 * without allow-same-origin: its scripts run in an opaque origin of their
 * own and cannot reach the page, its storage or its cookies.
 */
#ifndef ORCH_REPORT_H
#define ORCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "store.h"

/* The most recent cycles the timeline draws, and user messages the page
 * holds (the older ones are counted, and `orch-stack messages` has them). */
#define REPORT_CYCLES 20
#define REPORT_MESSAGES 200

/*
 * Write STACK's page to FP as of NOW (ms since the epoch). 0, or -1 with
 * ERR: a store error, bad recorded data (65), or a write error (70).
 */
int report_write(FILE *fp, struct store *s, const struct stack_row *stack, int64_t now,
		 struct orch_error *err);

#endif

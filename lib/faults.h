/*
 * faults.h - provider faults injected inside the HTTP layer
 * (ORCH_FAULTS), so retries, fallbacks and error paths run end to end
 * without a misbehaving server.
 *
 * The specification is a comma-separated list of
 *
 *   STATUS@P     an HTTP status from 400 to 599 answered instead of
 *                sending (a 429 with "Retry-After: S"), the body an
 *                OpenAI-shaped error saying it was injected
 *   timeout@P    a timeout instead of sending, reported at once
 *   cut@P        the request sent, its reply cut in the middle of the body
 *   seed=N       the draws' seed (0 to 2^64-1; default: from the clock)
 *   retry-after=S  the 429's Retry-After in whole seconds (default 1)
 *
 * where P is a probability from 0 to 1; the probabilities add up to 1 at
 * the most, and a kind is given once. Each request draws one number in
 * [0, 1) and gets the first fault whose share of [0, 1), in the order
 * given, it falls in, or none. The draw is the SHA-256 of the seed, the
 * request's cassette key (cassette_key()) and the number of requests made
 * before it by this process: the same seed and the same requests give the
 * same faults, and different requests (different agents) draw apart.
 */
#ifndef ORCH_FAULTS_H
#define ORCH_FAULTS_H

#include <stdint.h>

#include "cassette.h"
#include "error.h"
#include "http.h"

#define FAULTS_MAX 16 /* faults in one specification */

enum fault_kind {
	FAULT_NONE,
	FAULT_STATUS,  /* an HTTP error status */
	FAULT_TIMEOUT, /* a timeout */
	FAULT_CUT,     /* a reply cut mid-body */
};

struct fault {
	enum fault_kind kind; /* what */
	long status;          /* FAULT_STATUS's status */
	double p;             /* probability */
};

struct faults {
	struct fault v[FAULTS_MAX]; /* in the order given */
	size_t n;                   /* entries in v */
	uint64_t seed;              /* the draws' seed */
	int64_t retry_after;        /* a 429's Retry-After, seconds */
	uint64_t calls;             /* requests drawn for so far */
};

/*
 * Parse SPEC into F. 0, or -1 with ERR (64) naming the item: an unknown
 * fault, a bad probability or seed, probabilities over 1, a repeat.
 */
int faults_parse(struct faults *f, const char *spec, struct orch_error *err);

/*
 * The faults of $ORCH_FAULTS (new, free() it) in *OUT, or NULL when it is
 * unset or empty. 0, or -1 with ERR as faults_parse().
 */
int faults_from_env(struct faults **out, struct orch_error *err);

/* The fault for the request of KEY (borrowed from F), or NULL: one draw. */
const struct fault *faults_draw(struct faults *f, const char *key);

/*
 * Answer instead of sending: fill RESP (released first) for the fault
 * FT, a status or a timeout after TIMEOUT_MS. Returns 0 for a status,
 * -1 with ERR (69) for a timeout, like http_post_json().
 */
int faults_answer(const struct faults *f, const struct fault *ft, int64_t timeout_ms,
		  struct http_response *resp, struct orch_error *err);

/*
 * Cut RESP, a complete response, in the middle of its body: -1 with ERR
 * (69), like a connection closed early. A response without a body is
 * cut before it: nothing of it arrives.
 */
int faults_cut(struct http_response *resp, struct orch_error *err);

/* What FT is: "429" (written in BUF), "timeout", "cut". */
const char *fault_name(const struct fault *ft, char buf[16]);

#endif

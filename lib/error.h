/*
 * error.h - how lib/ tells cmd/ what went wrong.
 *
 * A struct orch_error carries an exit status from enum orch_exit and a
 * one-line message without the program name ("line 3: expected an
 * object"). The caller owns it: initialise with ORCH_ERROR_INIT and release
 * with orch_error_release(). Setting an error that is already set replaces
 * it.
 */
#ifndef ORCH_ERROR_H
#define ORCH_ERROR_H

struct orch_error {
	int status; /* enum orch_exit; 0 while no error is set */
	char *msg;  /* owned; NULL while no error is set */
};

#define ORCH_ERROR_INIT { 0, NULL }

/* Set ERR (may be NULL, then nothing happens) and return -1. */
int orch_error_set(struct orch_error *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put "PREFIX: " before the message already in ERR. Returns -1. */
int orch_error_prefix(struct orch_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void orch_error_release(struct orch_error *err);

#endif

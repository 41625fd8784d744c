/*
 * estimate.c - tokens from bytes (estimate.h says why a ratio).
 */
#include "estimate.h"
#include "banned.h"

int64_t estimate_prompt_tokens(size_t bytes)
{
	/* Rounded up, so that a short prompt is never free; size_t fits
	 * int64_t on every platform orch builds on once divided. */
	return (int64_t)(bytes / ESTIMATE_BYTES_PER_TOKEN +
			 (bytes % ESTIMATE_BYTES_PER_TOKEN != 0));
}

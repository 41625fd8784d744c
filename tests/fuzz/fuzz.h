/*
 * fuzz.h - what the libFuzzer harnesses share: the input as a JSON value.
 */
#ifndef ORCH_FUZZ_H
#define ORCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* DATA as a JSON value (new), or NULL; any value, not only objects. */
static inline json_t *fuzz_json(const uint8_t *data, size_t size)
{
	json_error_t jerr;

	return json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
}

#endif

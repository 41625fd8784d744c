/*
 * fuzz_config: config_load_file() on any file, the integer reading of
 * every key it set, words_split() on every value and on the input, every
 * known key's check and its reader (decimals, NAME=N maps, text), and the
 * detection and decision rules built from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "decide.h"
#include "detect.h"
#include "fuzz.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct orch_error err = ORCH_ERROR_INIT;
	struct config c = CONFIG_INIT;
	struct detect_rules detect;
	struct decide_rules decide;
	char **argv, *s;
	int64_t v;
	size_t i;

	/* A file in memory, named /proc/self/fd/N: no disk in the loop. */
	if (fd < 0 && (fd = memfd_create("orch-fuzz-config", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	{
		char name[64];

		snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
		if (config_load_file(&c, name, 0, &err) != 0 &&
		    (!err.msg || (err.status != 65 && err.status != 66)))
			__builtin_trap();
	}
	orch_error_release(&err);
	for (i = 0; i < c.n; i++) {
		config_get_int(&c, c.entries[i].key, -5, 5, &v, &err);
		orch_error_release(&err);
		argv = words_split(c.entries[i].value, &err);
		words_free(argv);
		orch_error_release(&err);
	}
	for (i = 0; i < config_known_count; i++) {
		const struct config_known *k = &config_known[i];
		int bad = config_check(&c, k, &err) != 0;
		double d;

		if (bad && err.status != 65)
			__builtin_trap();
		orch_error_release(&err);
		/* Each reader takes what the check passes, and refuses the rest
		 * with 65. */
		if (k->kind == CONFIG_DECIMAL &&
		    (config_decimal(&c, k->key, &d, &err) != 0) != bad)
			__builtin_trap();
		if (k->kind == CONFIG_MAP &&
		    (config_map_number(&c, k->key, "llama-3.3-70b-versatile", &v, &err) < 0) != bad)
			__builtin_trap();
		if ((k->kind == CONFIG_TEXT || k->kind == CONFIG_URL) && !config_text(&c, k->key))
			__builtin_trap();
		if (err.msg && err.status != 65)
			__builtin_trap();
		orch_error_release(&err);
	}
	/* A value the checks pass, the rules take; one they refuse, 65. */
	if (detect_rules_configure(&detect, &c, &err) != 0 && err.status != 65)
		__builtin_trap();
	orch_error_release(&err);
	detect_rules_release(&detect);
	if (decide_rules_configure(&decide, &c, &err) != 0 && err.status != 65)
		__builtin_trap();
	orch_error_release(&err);
	config_release(&c);
	s = xstrndup((const char *)data, size);
	argv = words_split(s, &err);
	if (!argv && (!err.msg || err.status != 65))
		__builtin_trap();
	words_free(argv);
	orch_error_release(&err);
	free(s);
	return 0;
}

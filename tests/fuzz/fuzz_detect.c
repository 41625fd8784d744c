/*
 * fuzz_detect: detect_work_status() on any orch.snapshot (orch-detect -).
 */
#include "detect.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct config none = CONFIG_INIT;
	struct detect_rules rules;
	json_t *in = fuzz_json(data, size), *ws;

	if (!in)
		return 0;
	if (detect_rules_configure(&rules, &none, &err) != 0)
		__builtin_trap();
	ws = detect_work_status(in, 1700000000000, &rules, &err);
	if (!ws && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	detect_rules_release(&rules);
	json_decref(ws);
	json_decref(in);
	return 0;
}

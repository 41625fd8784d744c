/*
 * fuzz_graph: graph_build() on any orch.work_status, then both drawings of
 * the graph it built, and of the input itself (orch-graph --format dot
 * reads graph and execution documents).
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "graph.h"

static void draw(const json_t *doc)
{
	struct orch_error err = ORCH_ERROR_INIT;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		return;
	graph_write_dot(fp, doc, &err);
	orch_error_release(&err);
	graph_write_mermaid(fp, doc, &err);
	orch_error_release(&err);
	fclose(fp);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *in = fuzz_json(data, size), *graph;

	if (!in)
		return 0;
	graph = graph_build(in, 1700000000000, &err);
	if (!graph && (!err.msg || err.status != 65))
		__builtin_trap();
	if (graph)
		draw(graph);
	draw(in);
	orch_error_release(&err);
	json_decref(graph);
	json_decref(in);
	return 0;
}

/*
 * orch-stack report: one stack on one self-contained HTML page.
 */
#include <stdio.h>

#include "cli.h"
#include "report.h"
#include "stack.h"
#include "banned.h"

int stack_report(struct store *s, const struct opts *o)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct stack_row row;
	FILE *fp;

	stack_get(s, o->args[1], &row);
	fp = stack_output(o);
	/* A write error is said by stack_output_close() or, on standard
	 * output, by cli_finish(), naming where. */
	if (report_write(fp, s, &row, o->now, &err) != 0 && !ferror(fp)) {
		if (fp != stdout)
			fclose(fp);
		cli_die_error(&err);
	}
	orch_error_release(&err);
	stack_output_close(o, fp);
	stack_row_release(&row);
	return 0;
}

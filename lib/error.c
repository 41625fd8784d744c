#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "orch.h"
#include "xalloc.h"

int orch_error_set(struct orch_error *err, int status, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (!err)
		return -1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	free(err->msg);
	err->msg = msg;
	err->status = status ? status : ORCH_EX_SOFTWARE;
	return -1;
}

int orch_error_prefix(struct orch_error *err, const char *fmt, ...)
{
	va_list ap;
	char *prefix, *msg;

	if (!err)
		return -1;
	va_start(ap, fmt);
	prefix = xvasprintf(fmt, ap);
	va_end(ap);
	msg = xasprintf("%s: %s", prefix, err->msg ? err->msg : "unknown error");
	free(prefix);
	free(err->msg);
	err->msg = msg;
	if (!err->status)
		err->status = ORCH_EX_SOFTWARE;
	return -1;
}

void orch_error_release(struct orch_error *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->status = 0;
}

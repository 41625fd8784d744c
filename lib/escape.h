/*
 * escape.h - the one way text that agents, models and users wrote reaches
 * each place a person reads it: a terminal, a Graphviz DOT string, a
 * Mermaid label, an HTML page. Every printer of such text calls the
 * function for its target, so no target has two ideas of what is safe.
 *
 * All of them take bytes, not characters: ill-formed UTF-8 is replaced
 * (never passed on), and control characters never reach the target as
 * they are. Each writes to the caller's stream and reports nothing: the
 * caller checks ferror() once at the end, as for any other output.
 */
#ifndef ORCH_ESCAPE_H
#define ORCH_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * The length of the well-formed UTF-8 sequence at S (N bytes readable),
 * or 0 when S starts an ill-formed one (an overlong form, a surrogate, a
 * cut sequence, a stray continuation byte).
 */
int escape_utf8_len(const unsigned char *s, size_t n);

enum escape_term_flags {
	ESCAPE_TERM_LINES = 1 << 0, /* keep line feeds and tabs (a block of text) */
};

/*
 * For a terminal: write the first MAX characters of S (LEN bytes) to FP,
 * each counted as one column. A control character (C0, DEL, C1: an escape
 * sequence's start among them) becomes a space, an ill-formed byte '?';
 * with ESCAPE_TERM_LINES a line feed and a tab stay (a CR before a line
 * feed goes). FP NULL only counts. Returns the characters written (or
 * that would be).
 */
int escape_term(FILE *fp, const char *s, size_t len, int max, unsigned flags);

/*
 * S (LEN bytes) as escape_term() writes it without a column limit, as a
 * new string: for a line that must reach its stream in one write.
 */
char *escape_term_dup(const char *s, size_t len, unsigned flags);

/*
 * For a Graphviz quoted string ("..."): '"' and '\' escaped, a line break
 * (LF, CRLF or CR) as \n, other control characters as spaces, ill-formed
 * bytes as U+FFFD.
 */
void escape_dot(FILE *fp, const char *s);

/*
 * For a Mermaid label ("..."): '"', '#', '<', '>', '&' and '\' as
 * Mermaid's entity codes (#quot; #35; #lt; #gt; #amp; #92;), a line break
 * as <br>, other control characters as spaces, ill-formed bytes as U+FFFD.
 */
void escape_mermaid(FILE *fp, const char *s);

/*
 * For the YAML front matter of a Mermaid file: S as a double-quoted YAML
 * scalar, quotes included; control characters become spaces.
 */
void escape_mermaid_title(FILE *fp, const char *s);

/*
 * For HTML text and double- or single-quoted attribute values (srcdoc
 * included): '&', '<', '>', '"' and '\'' as character references, a NUL,
 * a control character other than tab, line feed and carriage return, and
 * an ill-formed byte as U+FFFD. LEN bytes of S.
 */
void escape_html(FILE *fp, const char *s, size_t len);

#endif

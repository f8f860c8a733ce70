/*
 * test_man.c - the manual pages in man/: one per program, each renders
 * without a warning, and each names every option its program's -h prints.
 *
 * Rendering: `groff -man -ww -z` (`make deps` installs groff-base), and
 * also `man --warnings -l` at 80 columns where man-db is installed. Options: every word of `PROGRAM -h` that starts with
 * - or -- after a blank, bracket or comma (-l, -vv, --close-code, ...)
 * must appear in the page's text as that whole word (roff writes the
 * hyphen as \-). The programs are the sanitizer builds in
 * $MUXRING_BUILD_DIR, muxbench the release build beside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TEXT_MAX (64u << 10)

struct page {
	const char *name;
	const char *program; /* path relative to MUXRING_BUILD_DIR */
};

static const struct page pages[] = {
	{"muxcat", "muxcat"},
	{"muxtun", "muxtun"},
	{"muxdump", "muxdump"},
	{"muxconform", "muxconform"},
	{"muxbench", "../muxbench"},
};

/* Runs a shell command; its output (stdout and stderr) in out. Returns
 * the exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	int status;

	assert_non_null(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	status = pclose(p);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static bool have(const char *tool)
{
	char cmd[128], out[256];

	snprintf(cmd, sizeof(cmd), "command -v %s 2>&1", tool);
	return run(cmd, out, sizeof(out)) == 0;
}

static void read_page(const char *name, char *text, size_t cap)
{
	char path[256];
	FILE *f;
	size_t n, i, o = 0;

	snprintf(path, sizeof(path), "man/%s.1", name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("no manual page %s", path);
	n = fread(text, 1, cap - 1, f);
	fclose(f);
	/* roff's \- is the hyphen of an option. */
	for (i = 0; i < n; i++) {
		if (text[i] == '\\' && i + 1 < n && text[i + 1] == '-')
			continue;
		text[o++] = text[i];
	}
	text[o] = '\0';
}

static bool is_option_char(char c)
{
	return isalnum((unsigned char)c) || c == '-';
}

/* True when `word` occurs in text with no option character right after. */
static bool has_word(const char *text, const char *word)
{
	size_t len = strlen(word);
	const char *p;

	for (p = strstr(text, word); p; p = strstr(p + 1, word))
		if (!is_option_char(p[len]) &&
		    (p == text || !is_option_char(p[-1])))
			return true;
	return false;
}

static void check_options(const struct page *pg)
{
	static char help[TEXT_MAX], text[TEXT_MAX];
	const char *dir = getenv("MUXRING_BUILD_DIR");
	char cmd[4096];
	unsigned found = 0;
	size_t i;

	snprintf(cmd, sizeof(cmd), "%s/%s -h", dir ? dir : "build/asan",
		 pg->program);
	assert_int_equal(run(cmd, help, sizeof(help)), 0);
	read_page(pg->name, text, sizeof(text));
	for (i = 0; help[i]; i++) {
		char option[64];
		size_t n = 0;

		if (help[i] != '-' ||
		    (i && !strchr(" \t\n[(,", help[i - 1])))
			continue;
		while (is_option_char(help[i + n]) && n < sizeof(option) - 1) {
			option[n] = help[i + n];
			n++;
		}
		option[n] = '\0';
		i += n ? n - 1 : 0;
		if (n < 2 || !isalpha((unsigned char)option[n - 1]))
			continue;
		if (!has_word(text, option))
			fail_msg("man/%s.1 does not mention %s (from %s -h)",
				 pg->name, option, pg->name);
		found++;
	}
	assert_true(found >= 3);
}

static void check_renders(const struct page *pg, bool man, bool groff)
{
	static char out[TEXT_MAX];
	char cmd[512];

	if (man) {
		snprintf(cmd, sizeof(cmd), "MANWIDTH=80 man --warnings -l "
			 "man/%s.1 2>&1 >/dev/null", pg->name);
		if (run(cmd, out, sizeof(out)) != 0 || out[0])
			fail_msg("man --warnings -l man/%s.1:\n%s", pg->name,
				 out);
	}
	if (groff) {
		snprintf(cmd, sizeof(cmd), "groff -man -ww -z man/%s.1 2>&1",
			 pg->name);
		if (run(cmd, out, sizeof(out)) != 0 || out[0])
			fail_msg("groff -man -ww -z man/%s.1:\n%s", pg->name,
				 out);
	}
}

static void test_every_page_renders_without_warnings(void **state)
{
	bool man = have("man");
	size_t i;

	(void)state;
	if (!have("groff"))
		fail_msg("groff is not installed: `make deps` installs "
			 "groff-base, which renders the pages");
	if (!man)
		fprintf(stderr, "test_man: no man(1) here; groff only\n");
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		check_renders(&pages[i], man, true);
}

static void test_every_option_of_h_is_in_its_page(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		check_options(&pages[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_page_renders_without_warnings),
		cmocka_unit_test(test_every_option_of_h_is_in_its_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

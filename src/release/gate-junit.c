/* gate-junit.c - a JUnit XML report as a junit gate reads it
 * (gate_read_junit, declared in gate.h).
 *
 * JUnit XML is written by cmocka (CMOCKA_MESSAGE_OUTPUT=xml), pytest
 * (--junitxml), Maven Surefire, Go's gotestsum and many more, each a little
 * differently; what they share is a <testsuites> or <testsuite> root and
 * one <testcase> element per test, holding a <failure>, an <error> or a
 * <skipped> child when it did not pass.  The counts are taken from those
 * elements, not from the tests="" and failures="" attributes, which some
 * writers leave out or get wrong.  A test case holding several such
 * children counts once: as failed, else as errored, else as skipped.
 *
 * The file is written by whatever the gate ran, so it is untrusted input in
 * a real format (encodings, entities, CDATA, comments, namespaces): libxml2
 * parses it, through SAX callbacks (no tree is built), with no network
 * access, no DTD loaded, no entity substituted, libxml2's own depth and
 * text limits, and a document with a DOCTYPE refused as soon as it is seen
 * (no JUnit writer emits one; refusing it leaves the internal subset, where
 * entity bombs live, unparsed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "release/gate.h"

/* What the SAX callbacks keep while the document streams by. */
struct junit_scan {
	xmlParserCtxtPtr ctxt;
	unsigned depth;               /* of the element being read; 1 the root */
	unsigned testcase_depth;      /* of the open <testcase>; 0 none */
	bool failure, error, skipped; /* children of the open <testcase> */
	struct gate_tests t;
	char refused[160];            /* why the callbacks stopped the parser */
	char xml_error[200];          /* libxml2's first error */
	int xml_error_line;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

static void refuse(struct junit_scan *s, const char *why)
{
	if (!s->refused[0])
		snprintf(s->refused, sizeof(s->refused), "%s", why);
	xmlStopParser(s->ctxt);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
		     int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
		     const xmlChar **attributes)
{
	struct junit_scan *s = ctx;
	const char *name = (const char *)localname;

	s->depth++;
	if (s->depth == 1) {
		if (strcmp(name, "testsuites") && strcmp(name, "testsuite")) {
			char why[160];
			snprintf(why, sizeof(why), "the root element is <%.60s>, not <testsuites> or <testsuite>", name);
			refuse(s, why);
		}
		return;
	}
	if (s->testcase_depth) {
		if (s->depth == s->testcase_depth + 1) {
			s->failure |= !strcmp(name, "failure");
			s->error |= !strcmp(name, "error");
			s->skipped |= !strcmp(name, "skipped");
		}
		return;
	}
	if (!strcmp(name, "testcase")) {
		s->testcase_depth = s->depth;
		s->failure = s->error = s->skipped = false;
	}
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct junit_scan *s = ctx;

	if (s->testcase_depth && s->depth == s->testcase_depth) {
		s->t.tests++;
		if (s->failure)
			s->t.failed++;
		else if (s->error)
			s->t.errors++;
		else if (s->skipped)
			s->t.skipped++;
		s->testcase_depth = 0;
	}
	s->depth--;
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	refuse(ctx, "it has a DOCTYPE, which no JUnit report has (DTDs and entities are not read)");
}

/* Keeps libxml2's first error, on one line (its messages end with a
 * newline, some hold one). */
static void on_error(void *ctx, xmlErrorPtr e)
{
	struct junit_scan *s = ctx;
	size_t n;

	if (!e || e->level < XML_ERR_ERROR || s->xml_error[0])
		return;
	snprintf(s->xml_error, sizeof(s->xml_error), "%s", e->message ? e->message : "unknown error");
	n = strlen(s->xml_error);
	while (n && (s->xml_error[n - 1] == '\n' || s->xml_error[n - 1] == ' '))
		s->xml_error[--n] = '\0';
	for (char *p = s->xml_error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	s->xml_error_line = e->line;
}

/* Streams xml[0..len) through the callbacks into *s.  Returns 0 when the
 * document was well-formed and not refused. */
static int junit_parse(const char *xml, size_t len, struct junit_scan *s)
{
	xmlSAXHandler sax;
	xmlStructuredErrorFunc old_handler = xmlStructuredError;
	void *old_context = xmlStructuredErrorContext;
	int first = len < 4 ? (int)len : 4, r = -EINVAL;

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = on_start;
	sax.endElementNs = on_end;
	sax.internalSubset = on_doctype;
	sax.serror = on_error;
	/* errors raised outside the parser's context (encoding conversion)
	 * go to this thread's handler: keep them off stderr too */
	xmlSetStructuredErrorFunc(s, on_error);
	/* the first bytes let libxml2 detect the encoding (UTF-16, BOMs) */
	s->ctxt = xmlCreatePushParserCtxt(&sax, s, xml, first, "junit.xml");
	if (!s->ctxt) {
		r = -ENOMEM;
		goto out;
	}
	xmlCtxtUseOptions(s->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlParseChunk(s->ctxt, xml + first, (int)(len - (size_t)first), 1);
	if (s->ctxt->wellFormed && !s->refused[0] && !s->xml_error[0])
		r = 0;
	xmlFreeParserCtxt(s->ctxt);
	s->ctxt = NULL;
out:
	xmlSetStructuredErrorFunc(old_context, old_handler);
	return r;
}

int gate_read_junit(const char *xml, size_t len, struct gate_tests *ret, char *err, size_t errlen)
{
	struct junit_scan s;
	size_t i;
	int r;

	memset(&s, 0, sizeof(s));
	if (len > GATE_FILE_MAX) {
		snprintf(err, errlen, "larger than %u MiB", GATE_FILE_MAX >> 20);
		return -EINVAL;
	}
	if (len == 0) {
		snprintf(err, errlen, "it is empty");
		return -EINVAL;
	}
	/* libxml2 calls text that does not open with a tag "Document is empty" */
	for (i = len >= 3 && !memcmp(xml, "\xef\xbb\xbf", 3) ? 3 : 0; i < len && strchr(" \t\r\n", xml[i]); i++)
		;
	if (i < len && xml[i] > ' ' && xml[i] < 0x7f && xml[i] != '<') {
		snprintf(err, errlen, "not XML: it does not start with '<'");
		return -EINVAL;
	}
	pthread_once(&xml_once, xml_init);
	r = junit_parse(xml, len, &s);
	if (r == -ENOMEM) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	if (s.refused[0]) {
		snprintf(err, errlen, "not a JUnit report: %s", s.refused);
		return -EINVAL;
	}
	if (r < 0) {
		if (s.xml_error_line > 0)
			snprintf(err, errlen, "not well-formed XML: line %d: %s", s.xml_error_line,
				 s.xml_error[0] ? s.xml_error : "parse error");
		else
			snprintf(err, errlen, "not well-formed XML: %s", s.xml_error[0] ? s.xml_error : "parse error");
		return -EINVAL;
	}
	if (s.t.tests == 0) {
		snprintf(err, errlen, "no <testcase> in it: a JUnit report with no test says nothing");
		return -EINVAL;
	}
	*ret = s.t;
	return 0;
}

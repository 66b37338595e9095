/* escape.c - JSON string escaping with UTF-8 validation, and the logfmt
 * bare-value test (base/escape.h).  The access log runs escape_json() on
 * the path and Host of every request, so the common case (printable
 * ASCII) is one comparison and one store per byte.
 */
#include <stdint.h>
#include <string.h>
#include "base/escape.h"

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is not
 * one (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong below U+0800 */
	else if (c == 0xed)
		hi = 0x9f; /* U+D800..U+DFFF */
	else if (c == 0xf0)
		lo = 0x90; /* overlong below U+10000 */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

size_t escape_json(char *out, size_t cap, const char *s, size_t len, size_t *used)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *in = (const unsigned char *)s;
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char c = in[i];
		char e = 0;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			if (n + 1 > cap)
				break;
			out[n++] = (char)c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t k = utf8_sequence(in + i, len - i);
			if (k) {
				if (n + k > cap)
					break;
				memcpy(out + n, in + i, k);
				n += k;
				i += k;
			} else {
				if (n + 6 > cap)
					break;
				memcpy(out + n, "\\ufffd", 6);
				n += 6;
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '\b': e = 'b'; break;
		case '\f': e = 'f'; break;
		case '\n': e = 'n'; break;
		case '\r': e = 'r'; break;
		case '\t': e = 't'; break;
		default: break;
		}
		if (e) {
			if (n + 2 > cap)
				break;
			out[n++] = '\\';
			out[n++] = e;
		} else {
			if (n + 6 > cap)
				break;
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[c >> 4];
			out[n + 5] = hex[c & 15];
			n += 6;
		}
		i++;
	}
	if (used)
		*used = i;
	return n;
}

bool escape_logfmt_bare(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '=' || c == '"')
			return false;
	}
	return true;
}

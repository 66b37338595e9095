/* bech32.c - Bech32 (BIP-173), the text form of age's keys: "age1..." for
 * a recipient, "AGE-SECRET-KEY-1..." for an identity.
 *
 * A Bech32 string is a human-readable part (HRP), the separator "1" (the
 * last "1" of the string), and the data as 5-bit groups in a 32-character
 * alphabet, the last six of which are a BCH checksum over the HRP and the
 * data.  The string is all lower or all upper case, never mixed.  Written
 * from the BIP-173 text: the checksum constant is 1 (Bech32, not Bech32m,
 * as age uses).  The data may be a secret key, so the 5-bit temporaries are
 * wiped before returning.
 */
#include <errno.h>
#include <string.h>
#include <sodium.h>
#include "secrets/secrets-internal.h"

#define HRP_MAX 83
#define CHECKSUM_LEN 6

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static char to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static uint32_t polymod_step(uint32_t chk, uint8_t value)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
	uint32_t top = chk >> 25;

	chk = ((chk & 0x1ffffff) << 5) ^ value;
	for (int i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

/* The checksum's polynomial over the expanded HRP (lower-cased) and the
 * 5-bit values. */
static uint32_t polymod(const char *hrp, size_t hrplen, const uint8_t *values, size_t n)
{
	uint32_t chk = 1;
	size_t i;

	for (i = 0; i < hrplen; i++)
		chk = polymod_step(chk, (uint8_t)((unsigned char)to_lower(hrp[i]) >> 5));
	chk = polymod_step(chk, 0);
	for (i = 0; i < hrplen; i++)
		chk = polymod_step(chk, (uint8_t)((unsigned char)to_lower(hrp[i]) & 31));
	for (i = 0; i < n; i++)
		chk = polymod_step(chk, values[i]);
	return chk;
}

static int charset_index(char c)
{
	const char *p;

	c = to_lower(c);
	p = c ? strchr(charset, c) : NULL;
	return p ? (int)(p - charset) : -1;
}

int bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out, size_t outlen)
{
	uint8_t values[BECH32_MAX];
	size_t hrplen = strlen(hrp), n = 0, i, total;
	uint32_t acc = 0, chk;
	int bits = 0;

	if (hrplen < 1 || hrplen > HRP_MAX)
		return -EINVAL;
	for (i = 0; i < hrplen; i++)
		if (hrp[i] < 33 || hrp[i] > 126 || (hrp[i] >= 'A' && hrp[i] <= 'Z'))
			return -EINVAL;
	total = hrplen + 1 + (len * 8 + 4) / 5 + CHECKSUM_LEN;
	if (total > BECH32_MAX || total + 1 > outlen)
		return -ENOSPC;
	/* 8-bit bytes to 5-bit groups, the last one padded with zero bits */
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			values[n++] = (uint8_t)((acc >> bits) & 31);
		}
	}
	if (bits)
		values[n++] = (uint8_t)((acc << (5 - bits)) & 31);
	memset(values + n, 0, CHECKSUM_LEN);
	chk = polymod(hrp, hrplen, values, n + CHECKSUM_LEN) ^ 1;
	for (i = 0; i < CHECKSUM_LEN; i++)
		values[n + i] = (uint8_t)((chk >> (5 * (5 - i))) & 31);
	n += CHECKSUM_LEN;

	for (i = 0; i < hrplen; i++)
		out[i] = upper && hrp[i] >= 'a' && hrp[i] <= 'z' ? (char)(hrp[i] - 32) : hrp[i];
	out[hrplen] = '1';
	for (i = 0; i < n; i++) {
		char c = charset[values[i]];

		out[hrplen + 1 + i] = upper && c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
	}
	out[hrplen + 1 + n] = 0;
	sodium_memzero(values, sizeof(values));
	sodium_memzero(&acc, sizeof(acc));
	return 0;
}

int bech32_decode(const char *text, char *hrp, size_t hrplen, uint8_t *data, size_t datalen, size_t *ret_len)
{
	uint8_t values[BECH32_MAX] = { 0 };
	bool lower = false, upper = false;
	size_t len = strnlen(text, BECH32_MAX + 1), sep = 0, n, i, out = 0;
	uint32_t acc = 0;
	int bits = 0, r = -EINVAL;

	if (len > BECH32_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = text[i];

		if (c < 33 || c > 126)
			return -EINVAL;
		lower |= c >= 'a' && c <= 'z';
		upper |= c >= 'A' && c <= 'Z';
		if (c == '1')
			sep = i;
	}
	/* the HRP has at least one character, the data part at least the checksum */
	if ((lower && upper) || sep < 1 || sep > HRP_MAX || sep + 1 + CHECKSUM_LEN > len || sep + 1 > hrplen)
		return -EINVAL;
	n = len - sep - 1;
	for (i = 0; i < n; i++) {
		int v = charset_index(text[sep + 1 + i]);

		if (v < 0)
			goto out;
		values[i] = (uint8_t)v;
	}
	if (polymod(text, sep, values, n) != 1)
		goto out;
	/* 5-bit groups to bytes: at most 4 bits of padding, all zero */
	for (i = 0; i < n - CHECKSUM_LEN; i++) {
		acc = ((acc << 5) | values[i]) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (out == datalen)
				goto out;
			data[out++] = (uint8_t)((acc >> bits) & 0xff);
		}
	}
	if (bits >= 5 || ((acc << (8 - bits)) & 0xff))
		goto out;
	memcpy(hrp, text, sep);
	hrp[sep] = 0;
	*ret_len = out;
	r = 0;
out:
	if (r < 0)
		sodium_memzero(data, out);
	sodium_memzero(values, sizeof(values));
	sodium_memzero(&acc, sizeof(acc));
	return r;
}

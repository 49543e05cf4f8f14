/* upid.h — Proxmox task identifiers (UPIDs), parsed by a Ragel machine
 * (machines/upid.rl).
 *
 * Grammar (pve-common PVE::Tools::upid_decode):
 *   UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER:
 * NODE    [a-zA-Z0-9] ([a-zA-Z0-9-]* [a-zA-Z0-9])?  (no dots)
 * PID     exactly 8 hex digits
 * PSTART  8 or 9 hex digits (over 32 bits after ~497 days of uptime)
 * START   exactly 8 hex digits (epoch seconds)
 * TYPE    one or more bytes, none of ':' '/' NUL or whitespace [\t\n\v\f\r ]
 * ID      zero or more such bytes (may be empty)
 * USER    one or more such bytes, e.g. root@pam or svc@pve!agent
 * and the trailing ':' is required, with nothing after it. Hex may be upper
 * or lower case. Differences from the Perl regex: NUL is refused (it cannot
 * live in a C string), a trailing "\n" is refused (Perl's `$` allows it), and
 * every string must fit its slot below. Other control and non-ASCII bytes
 * are accepted in TYPE, ID and USER, as in Perl.
 * Golden cases: vectors/upid/cases.txt.
 */
#ifndef FH_UPID_H
#define FH_UPID_H

#include <stddef.h>
#include <stdint.h>

#define UPID_MAX 512            /* longest UPID accepted, bytes */

struct upid {
	char node[64];
	uint32_t pid;
	uint64_t pstart;
	uint32_t starttime;
	char type[64];
	char id[64];
	char user[192];        /* full auth id, including "!tokenid" */
	char tokenid[64];      /* the part after '!', "" for a plain user */
};

/* Parses s[0..n) (no NUL terminator needed; nothing past n is read).
 * 0 and *out filled, or FH_ERR_UPID (grammar, over UPID_MAX, or a field
 * longer than its slot: 63 bytes for node/type/id/tokenid, 191 for user).
 * *out is untouched on error. If where is not NULL it receives, on error
 * only, the byte offset where parsing failed: the first byte that breaks the
 * grammar, n if the input ends early, the first byte that does not fit its
 * slot, or UPID_MAX when n > UPID_MAX (then nothing is parsed). tokenid is
 * the part of user after its last '!' ("" without one). s may be NULL only
 * with n == 0; out NULL gives FH_ERR_INVAL. Thread-safe, no allocation. */
int upid_parse(const char *s, size_t n, struct upid *out, size_t *where);

#endif

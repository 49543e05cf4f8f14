/* upid.h — Proxmox task identifiers (UPIDs), parsed by a Ragel machine
 * (machines/upid.rl).
 *
 * Grammar (pve-common PVE::Tools::upid_decode):
 *   UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER:
 * NODE    [a-zA-Z0-9] ([a-zA-Z0-9-]* [a-zA-Z0-9])?  (no dots)
 * PID     exactly 8 hex digits
 * PSTART  8 or 9 hex digits (over 32 bits after ~497 days of uptime)
 * START   exactly 8 hex digits (epoch seconds)
 * TYPE    one or more bytes, none of ':' '/' or whitespace
 * ID      zero or more such bytes (may be empty)
 * USER    one or more such bytes, e.g. root@pam or svc@pve!agent
 * and the trailing ':' is required. Hex may be upper or lower case.
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

/* Parses s[0..n). 0 and *out filled, or FH_ERR_UPID (grammar, over UPID_MAX,
 * or a field longer than its slot). *out is untouched on error. If where is
 * not NULL it receives the byte offset where parsing failed. */
int upid_parse(const char *s, size_t n, struct upid *out, size_t *where);

#endif

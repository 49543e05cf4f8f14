/* opsign.c — felhom-opsign, the operator's companion tool (SPEC §5;
 * docs/felhom-opsign.md is its manual).
 *
 *   felhom-opsign -op OP -host HOST [-guest VMID] [-durable-id ID] [-param K=V]...
 *                 [-ttl 15m] [-key FILE | -agent] [-key-id ID] [-o BUNDLE] [-print-blob]
 *   felhom-opsign verify BUNDLE -signers FILE -host HOST [-now EPOCH]
 *
 * Signing builds the canonical op blob (opblob.h) and has `ssh-keygen -Y
 * sign -n felhom-op-v1` sign it, so passphrase-protected keys, ssh-agent and
 * FIDO2 keys all work as they do for ssh. The blob is written to a file in
 * a private temporary directory and signed as a file (not on stdin): the
 * operator's stdin and terminal stay with ssh-keygen for passphrase and PIN
 * prompts, and stderr for "Confirm user presence" notices. Every program
 * runs from a fixed argv through posix_spawnp: no shell.
 *
 * Exit status: 0 done, 1 failure (one line on stderr), 2 usage error (one
 * line on stderr). Nothing secret is ever printed: the tool never reads a
 * private key itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "opblob.h"
#include "sig.h"

#define PROG "felhom-opsign"
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define BUNDLE_MAX (64 * 1024)           /* a bundle file, bytes */
#define PUBFILE_MAX (64 * 1024)          /* a .pub file, bytes */
#define PROC_OUT_MAX (1024 * 1024)       /* captured stdout of a helper program */
#define PROC_ERR_MAX 4096                /* captured stderr of a helper program */
#define TTL_DEFAULT 900                  /* 15m */
#define TTL_MAX 86400                    /* 24h */
#define AGENT_MAX_LIFETIME 3600          /* authz.max_lifetime_seconds default */
#define AGENT_SKEW 60                    /* authz.clock_skew_seconds default */
#define NONCE_BYTES 32

/* Operations that act on the host, not on one guest: guest_id is null and
 * -guest is a usage error. Every other op takes an optional -guest. */
static const char *const host_scoped_ops[] = { "storage_wipe", NULL };

/* Default identity files, in the order they are tried under ~/.ssh. */
static const char *const identity_files[] = { "id_ed25519", "id_ecdsa", "id_ecdsa_sk", "id_ed25519_sk",
					      "id_rsa", NULL };

/* Key types the agent accepts (SPEC §5); anything else in an agent listing
 * (certificates, ssh-dss) is skipped. */
static const char *const key_types[] = { "ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256",
					 "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
					 "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-rsa", NULL };

/* The one message of a failure, printed by main. */
static char g_msg[1024];

__attribute__((format(printf, 2, 3))) static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_msg, sizeof(g_msg), fmt, ap);
	va_end(ap);
	return code;
}

static const char usage_text[] =
	"usage: felhom-opsign -op OP -host HOST [-guest VMID] [-durable-id ID]\n"
	"                     [-param KEY=VALUE | -param KEY:int=N | -param KEY:bool=true|false]...\n"
	"                     [-ttl DURATION] [-key FILE | -agent] [-key-id ID] [-now EPOCH]\n"
	"                     [-o BUNDLE] [-print-blob]\n"
	"       felhom-opsign verify BUNDLE -signers FILE -host HOST [-now EPOCH]\n"
	"                     [-skew SECONDS] [-max-lifetime SECONDS]\n"
	"       felhom-opsign --help | --version\n"
	"\n"
	"Signs an operator-authorized operation for felhom-agent with ssh-keygen -Y sign\n"
	"(namespace felhom-op-v1) and writes the bundle {\"blob_b64\":...,\"signature\":...}\n"
	"to stdout or BUNDLE; `verify` checks a bundle offline.\n"
	"\n"
	"  -op OP            operation, [a-z0-9_]{1,63} (storage_wipe is host-scoped)\n"
	"  -host HOST        the agent's host id (hub.host_id), [A-Za-z0-9._-]{1,127}\n"
	"  -guest VMID       the guest (100..999999999); omit for host-scoped ops\n"
	"  -durable-id ID    sets params.durable_id (required for storage_wipe)\n"
	"  -param K=V        string param; K:int=N integer, K:bool=true|false; K is [a-z0-9_]{1,63}\n"
	"  -ttl DURATION     lifetime, e.g. 900s, 15m, 1h30m (default 15m, at most 24h)\n"
	"  -key FILE         key for ssh-keygen -f (a .pub file means: the agent holds the key)\n"
	"  -agent            sign with the first identity of ssh-agent (ssh-add -L)\n"
	"                    default: the agent if SSH_AUTH_SOCK is set and holds a key, else\n"
	"                    ~/.ssh/id_ed25519, id_ecdsa, id_ecdsa_sk, id_ed25519_sk, id_rsa\n"
	"  -key-id ID        key_id recorded in the blob (default: the public key's comment,\n"
	"                    else the key file's name, else its SHA256 fingerprint)\n"
	"  -now EPOCH        issued_at (default: now); verify: the time to check against\n"
	"  -o BUNDLE         write the bundle to BUNDLE instead of stdout\n"
	"  -print-blob       print the canonical blob that would be signed, and stop\n"
	"  -signers FILE     signer lines \"ROLE KEY_ID KEYTYPE BASE64 [COMMENT]\" (authz.signers_file)\n"
	"  -skew SECONDS     clock-skew tolerance for verify (default 60)\n"
	"  -max-lifetime S   longest lifetime verify accepts (default 3600, the agent's default)\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

/* ---- small parsers ---- */

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* "900s", "15m", "1h30m": a sequence of NUMBER UNIT, units s m h. */
static bool parse_ttl(const char *s, int64_t *out)
{
	int64_t total = 0;

	if (!*s)
		return false;
	while (*s) {
		int64_t n = 0, mult;
		const char *start = s;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (*s - '0');
			if (n > TTL_MAX * 10)
				return false;
			s++;
		}
		if (s == start)
			return false;
		switch (*s) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		default: return false;
		}
		s++;
		total += n * mult;
		if (total > TTL_MAX * 10)
			return false;
	}
	*out = total;
	return true;
}

static bool all_chars(const char *s, size_t min, size_t max, const char *extra, bool lower_only)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (!lower_only && c >= 'A' && c <= 'Z') || (c && strchr(extra, c));
		if (!ok)
			return false;
	}
	return true;
}

static bool printable_ascii(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	}
	return true;
}

static void iso_time(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outlen, "?");
}

/* ---- base64 via wolfCrypt ---- */

static int b64_encode(const uint8_t *p, size_t n, bool url_nopad, struct buf *out)
{
	word32 olen = (word32)((n + 2) / 3 * 4 + 4);
	char *tmp = malloc(olen);
	size_t i;
	int r = FH_ERR_INTERNAL;

	if (!tmp)
		return FH_ERR_NOMEM;
	if (n > UINT32_MAX / 2 || Base64_Encode_NoNl(p, (word32)n, (byte *)tmp, &olen) != 0)
		goto out;
	if (url_nopad) {
		while (olen && tmp[olen - 1] == '=')
			olen--;
		for (i = 0; i < olen; i++) {
			if (tmp[i] == '+')
				tmp[i] = '-';
			else if (tmp[i] == '/')
				tmp[i] = '_';
		}
	}
	r = buf_append(out, tmp, olen);
out:
	free(tmp);
	return r;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Standard base64 with padding, nothing else: no whitespace, no URL
 * alphabet, zero unused bits (the decoding re-encodes to the same text). */
static int b64_decode_strict(const char *s, size_t n, struct buf *out)
{
	struct buf again;
	uint8_t *tmp = NULL;
	word32 olen;
	size_t i, pad = 0;
	int r = FH_ERR_DECODE;

	if (n == 0 || n % 4 || n > UINT32_MAX / 2)
		return FH_ERR_DECODE;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++) {
		if (!b64_char(s[i]))
			return FH_ERR_DECODE;
	}
	olen = (word32)(n / 4 * 3);
	tmp = malloc(olen ? olen : 1);
	if (!tmp)
		return FH_ERR_NOMEM;
	buf_init(&again, n);
	if (Base64_Decode((const byte *)s, (word32)n, tmp, &olen) != 0)
		goto out;
	if (b64_encode(tmp, olen, false, &again) != 0 || again.len != n || memcmp(again.data, s, n) != 0)
		goto out;
	r = buf_append(out, tmp, olen);
out:
	buf_free(&again);
	free(tmp);
	return r;
}

/* "SHA256:..." as ssh-keygen -l prints it, from a key blob in base64. */
static int fingerprint(const char *b64, char *out, size_t outlen)
{
	struct buf blob, enc;
	uint8_t h[32];
	int r;

	buf_init(&blob, PUBFILE_MAX);
	buf_init(&enc, 128);
	r = b64_decode_strict(b64, strlen(b64), &blob);
	if (!r && wc_Sha256Hash((const byte *)blob.data, (word32)blob.len, h) != 0)
		r = FH_ERR_INTERNAL;
	if (!r)
		r = b64_encode(h, sizeof(h), false, &enc);
	if (!r) {
		while (enc.len && enc.data[enc.len - 1] == '=')
			enc.data[--enc.len] = '\0';
		snprintf(out, outlen, "SHA256:%s", enc.data);
	}
	buf_free(&blob);
	buf_free(&enc);
	return r;
}

/* ---- files ---- */

/* Reads a whole file (or stdin for "-") into out, at most out->cap bytes. */
static int read_file(const char *path, struct buf *out)
{
	char tmp[4096];
	int fd, r = 0;
	bool is_stdin = strcmp(path, "-") == 0;

	fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return FH_ERR_IO;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = FH_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		r = buf_append(out, tmp, (size_t)n);
		if (r)
			break;
	}
	if (!is_stdin)
		close(fd);
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return FH_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_new_file(const char *path, const char *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return FH_ERR_IO;
	r = write_all(fd, p, n);
	if (close(fd) != 0)
		r = FH_ERR_IO;
	return r;
}

/* Writes path atomically (PATH.tmp.PID, then rename). */
static int write_file_atomic(const char *path, const char *p, size_t n)
{
	char tmp[PATH_MAX];
	int fd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return FH_ERR_INVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return FH_ERR_IO;
	r = write_all(fd, p, n);
	if (!r && fsync(fd) != 0)
		r = FH_ERR_IO;
	if (close(fd) != 0)
		r = FH_ERR_IO;
	if (!r && rename(tmp, path) != 0)
		r = FH_ERR_IO;
	if (r)
		unlink(tmp);
	return r;
}

static bool regular_readable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* ---- running ssh-keygen / ssh-add ---- */

/* Runs argv (argv[0] looked up in PATH) with our environment, stdin
 * inherited, stdout captured into out (may be NULL: discarded) and stderr
 * captured into err (NULL: inherited, so prompts reach the operator).
 * 0 when it exited 0; FH_ERR_EXIT with *status set; FH_ERR_SPAWN. */
static int run(const char *const argv[], struct buf *out, struct buf *err, int *status)
{
	posix_spawn_file_actions_t fa;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, st = 0, rc;
	bool fa_init = false, out_over = false;
	pid_t pid = -1;
	int r = FH_ERR_SPAWN;

	*status = -1;
	if (pipe2(po, O_CLOEXEC) != 0 || (err && pipe2(pe, O_CLOEXEC) != 0))
		goto out;
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out;
	fa_init = true;
	if (posix_spawn_file_actions_adddup2(&fa, po[1], 1) != 0 ||
	    (err && posix_spawn_file_actions_adddup2(&fa, pe[1], 2) != 0))
		goto out;
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv, environ);
	if (rc != 0) {
		pid = -1;
		goto out;
	}
	close(po[1]);
	po[1] = -1;
	if (err) {
		close(pe[1]);
		pe[1] = -1;
	}
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		int k;
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (k = 0; k < 2; k++) {
			int *fd = k == 0 ? &po[0] : &pe[0];
			struct buf *dst = k == 0 ? out : err;
			char tmp[4096];
			ssize_t n;
			if (*fd < 0 || !pf[k].revents)
				continue;
			n = read(*fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (dst && buf_append(dst, tmp, (size_t)n) != 0 && k == 0)
				out_over = true;   /* keep draining; fail below */
		}
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			r = FH_ERR_SPAWN;
			goto out;
		}
	}
	pid = -1;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
	if (*status != 0)
		r = FH_ERR_EXIT;
	else
		r = out_over ? FH_ERR_TOOBIG : 0;
out:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (po[0] >= 0)
		close(po[0]);
	if (po[1] >= 0)
		close(po[1]);
	if (pe[0] >= 0)
		close(pe[0]);
	if (pe[1] >= 0)
		close(pe[1]);
	return r;
}

/* ---- the signing key ---- */

struct pubkey {
	char type[64];
	char b64[PUBFILE_MAX];
	char comment[256];
};

/* Parses "TYPE BASE64 [COMMENT]" (the first line of a .pub file or an
 * ssh-add -L line). */
static bool parse_publine(const char *line, size_t n, struct pubkey *pk)
{
	size_t i = 0, s;

	memset(pk, 0, sizeof(*pk));
	s = i;
	while (i < n && line[i] != ' ' && line[i] != '\t')
		i++;
	if (i == s || i - s >= sizeof(pk->type))
		return false;
	memcpy(pk->type, line + s, i - s);
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	s = i;
	while (i < n && line[i] != ' ' && line[i] != '\t')
		i++;
	if (i == s || i - s >= sizeof(pk->b64))
		return false;
	memcpy(pk->b64, line + s, i - s);
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (n > i && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
		n--;
	if (n > i && n - i < sizeof(pk->comment))
		memcpy(pk->comment, line + i, n - i);
	return true;
}

static bool accepted_type(const char *t)
{
	size_t i;

	for (i = 0; key_types[i]; i++) {
		if (!strcmp(t, key_types[i]))
			return true;
	}
	return false;
}

struct signkey {
	char file[PATH_MAX];      /* what ssh-keygen -f gets */
	bool have_pub;            /* pub is known (for key_id and the self-check) */
	struct pubkey pub;
	char name[PATH_MAX];      /* the key file's base name without .pub, or "" */
	char desc[PATH_MAX + 128];/* for the one stderr line: which key */
};

/* Reads the first line of a .pub file. */
static bool load_pubfile(const char *path, struct pubkey *pk)
{
	struct buf b;
	bool ok = false;
	char *nl;

	buf_init(&b, PUBFILE_MAX);
	if (regular_readable(path) && read_file(path, &b) == 0 && b.data) {
		nl = memchr(b.data, '\n', b.len);
		ok = parse_publine(b.data, nl ? (size_t)(nl - b.data) : b.len, pk);
	}
	buf_free(&b);
	return ok;
}

static int key_from_file(const char *path, struct signkey *k)
{
	const char *base = strrchr(path, '/');
	size_t n = strlen(path);
	char pubpath[PATH_MAX];

	if (!regular_readable(path))
		return fail(FH_ERR_IO, "cannot read key file %s", path);
	if (n >= sizeof(k->file))
		return fail(FH_ERR_INVAL, "key file path too long");
	memcpy(k->file, path, n + 1);
	base = base ? base + 1 : path;
	snprintf(k->name, sizeof(k->name), "%s", base);
	if (n > 4 && !strcmp(path + n - 4, ".pub")) {
		k->name[strlen(k->name) - 4] = '\0';
		k->have_pub = load_pubfile(path, &k->pub);
	} else if ((size_t)snprintf(pubpath, sizeof(pubpath), "%s.pub", path) < sizeof(pubpath)) {
		k->have_pub = load_pubfile(pubpath, &k->pub);
	}
	snprintf(k->desc, sizeof(k->desc), "key file %s", path);
	return 0;
}

/* The first acceptable identity of ssh-agent, its public key written to
 * DIR/agent.pub for ssh-keygen -f. FH_ERR_NOT_FOUND when the agent cannot
 * be reached or holds no usable key. */
static int key_from_agent(const char *dir, struct signkey *k)
{
	const char *argv[] = { "ssh-add", "-L", NULL };
	struct buf out, err;
	char path[PATH_MAX], fp[80] = "";
	const char *line;
	int st = -1, r;

	buf_init(&out, PROC_OUT_MAX);
	buf_init(&err, PROC_ERR_MAX);
	r = run(argv, &out, &err, &st);
	if (r == FH_ERR_SPAWN) {
		r = fail(FH_ERR_SPAWN, "cannot run ssh-add (is openssh-client installed?)");
		goto out;
	}
	if (r) {
		r = fail(FH_ERR_NOT_FOUND, "%s", st == 1 ? "ssh-agent holds no identities (ssh-add KEY first)"
							 : "cannot reach ssh-agent (SSH_AUTH_SOCK)");
		goto out;
	}
	r = fail(FH_ERR_NOT_FOUND, "ssh-agent holds no key of a type the agent accepts");
	for (line = buf_str(&out); *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (parse_publine(line, len, &k->pub) && accepted_type(k->pub.type)) {
			r = 0;
			break;
		}
		line += len + (nl ? 1 : 0);
	}
	if (r)
		goto out;
	snprintf(path, sizeof(path), "%s/agent.pub", dir);
	{
		struct buf l;
		buf_init(&l, PUBFILE_MAX + 512);
		r = buf_printf(&l, "%s %s%s%s\n", k->pub.type, k->pub.b64, k->pub.comment[0] ? " " : "",
			       k->pub.comment);
		if (!r)
			r = write_new_file(path, l.data, l.len, 0600);
		buf_free(&l);
	}
	if (r) {
		r = fail(FH_ERR_IO, "cannot write a temporary file");
		goto out;
	}
	snprintf(k->file, sizeof(k->file), "%s", path);
	k->have_pub = true;
	k->name[0] = '\0';
	(void)fingerprint(k->pub.b64, fp, sizeof(fp));
	snprintf(k->desc, sizeof(k->desc), "agent identity %s %s", k->pub.type, fp);
	r = 0;
out:
	buf_free(&out);
	buf_free(&err);
	return r;
}

static int key_from_home(struct signkey *k)
{
	const char *home = getenv("HOME");
	char path[PATH_MAX];
	size_t i;

	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || !*home)
		return fail(FH_ERR_NOT_FOUND, "no home directory to look for ~/.ssh keys in; use -key FILE");
	for (i = 0; identity_files[i]; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/.ssh/%s", home, identity_files[i]) >= sizeof(path))
			continue;
		if (regular_readable(path))
			return key_from_file(path, k);
	}
	return fail(FH_ERR_NOT_FOUND, "no signing key: no agent identity and none of ~/.ssh/id_ed25519, "
				      "id_ecdsa, id_ecdsa_sk, id_ed25519_sk, id_rsa; use -key FILE");
}

static int find_key(const char *keyfile, bool agent, const char *dir, struct signkey *k)
{
	const char *sock = getenv("SSH_AUTH_SOCK");
	int r;

	memset(k, 0, sizeof(*k));
	if (keyfile)
		return key_from_file(keyfile, k);
	if (agent) {
		if (!sock || !*sock)
			return fail(FH_ERR_NOT_FOUND, "-agent: SSH_AUTH_SOCK is not set");
		return key_from_agent(dir, k);
	}
	if (sock && *sock) {
		r = key_from_agent(dir, k);
		if (r != FH_ERR_NOT_FOUND)
			return r;
		memset(k, 0, sizeof(*k));
	}
	return key_from_home(k);
}

/* key_id: the public key's comment, else the key file's name, else the
 * key's fingerprint; each only if it is printable ASCII of 1..64 bytes. */
static int derive_key_id(const struct signkey *k, char *out, size_t outlen)
{
	char fp[80];

	const char *pick = NULL;
	size_t n;

	if (k->have_pub && printable_ascii(k->pub.comment, 1, 64))
		pick = k->pub.comment;
	else if (printable_ascii(k->name, 1, 64))
		pick = k->name;
	else if (k->have_pub && fingerprint(k->pub.b64, fp, sizeof(fp)) == 0)
		pick = fp;
	if (pick && (n = strlen(pick)) < outlen) {
		memcpy(out, pick, n + 1);
		return 0;
	}
	return fail(FH_ERR_INVAL, "cannot derive a key id from the key; give -key-id ID");
}

/* ---- temporary directory ---- */

struct tmpdir {
	char path[PATH_MAX];
	bool made;
};

static int tmpdir_make(struct tmpdir *t)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = "/tmp";
	if ((size_t)snprintf(t->path, sizeof(t->path), "%s/felhom-opsign.XXXXXX", base) >= sizeof(t->path) ||
	    !mkdtemp(t->path))
		return fail(FH_ERR_IO, "cannot create a temporary directory in %s", base);
	t->made = true;
	return 0;
}

static void tmpdir_remove(struct tmpdir *t)
{
	static const char *const names[] = { "blob", "blob.sig", "agent.pub", NULL };
	char p[PATH_MAX + 16];
	size_t i;

	if (!t->made)
		return;
	for (i = 0; names[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", t->path, names[i]);
		unlink(p);
	}
	rmdir(t->path);
	t->made = false;
}

/* ---- command line ---- */

struct args {
	const char *op, *host, *guest, *durable_id, *ttl, *key, *key_id, *out, *now;
	const char *signers, *skew, *max_lifetime, *bundle;
	const char *params[OPBLOB_MAX_PARAMS + 1];
	size_t nparams;
	bool agent, print_blob;
};

struct flag {
	const char *name;
	bool has_arg;
	size_t off;               /* offsetof the const char * / bool in struct args */
};

#define SF(n, f) { n, true, offsetof(struct args, f) }
#define BF(n, f) { n, false, offsetof(struct args, f) }
static const struct flag sign_flags[] = {
	SF("op", op), SF("host", host), SF("guest", guest), SF("durable-id", durable_id), SF("ttl", ttl),
	SF("key", key), SF("key-id", key_id), SF("o", out), SF("now", now), SF("param", params),
	BF("agent", agent), BF("print-blob", print_blob), { NULL, false, 0 },
};
static const struct flag verify_flags[] = {
	SF("signers", signers), SF("host", host), SF("now", now), SF("skew", skew),
	SF("max-lifetime", max_lifetime), { NULL, false, 0 },
};

/* Go-flag style: -name VALUE, -name=VALUE, --name likewise; booleans
 * take no value. One positional argument where allowed (verify BUNDLE). */
static int parse_args(int argc, char **argv, const struct flag *flags, bool positional, struct args *a)
{
	int i;

	for (i = 0; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *val = NULL;
		const struct flag *f;
		size_t nl;

		if (arg[0] != '-' || arg[1] == '\0') {
			if (!positional || a->bundle)
				return fail(FH_ERR_USAGE, "unexpected argument %.64s", arg);
			a->bundle = arg;
			continue;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nl = eq ? (size_t)(eq - name) : strlen(name);
		for (f = flags; f->name; f++) {
			if (strlen(f->name) == nl && !strncmp(f->name, name, nl))
				break;
		}
		if (!f->name)
			return fail(FH_ERR_USAGE, "unknown flag %.64s", arg);
		if (!f->has_arg) {
			if (eq)
				return fail(FH_ERR_USAGE, "-%s takes no value", f->name);
			*(bool *)(void *)((char *)a + f->off) = true;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return fail(FH_ERR_USAGE, "-%s needs a value", f->name);
		if (f->off == offsetof(struct args, params)) {
			if (a->nparams >= OPBLOB_MAX_PARAMS)
				return fail(FH_ERR_USAGE, "at most %d params", OPBLOB_MAX_PARAMS);
			a->params[a->nparams++] = val;
			continue;
		}
		{
			const char **slot = (const char **)(void *)((char *)a + f->off);
			if (*slot)
				return fail(FH_ERR_USAGE, "-%s given twice", f->name);
			*slot = val;
		}
	}
	return 0;
}

static bool host_scoped(const char *op)
{
	size_t i;

	for (i = 0; host_scoped_ops[i]; i++) {
		if (!strcmp(op, host_scoped_ops[i]))
			return true;
	}
	return false;
}

static int add_param(struct opblob *b, const char *key, size_t keylen, int type, const char *val)
{
	struct opblob_param *pm;
	size_t i;

	if (keylen == 0 || keylen > 63)
		return fail(FH_ERR_USAGE, "param name must be [a-z0-9_]{1,63}");
	for (i = 0; i < keylen; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return fail(FH_ERR_USAGE, "param name must be [a-z0-9_]{1,63}");
	}
	for (i = 0; i < b->nparams; i++) {
		if (strlen(b->params[i].key) == keylen && !memcmp(b->params[i].key, key, keylen))
			return fail(FH_ERR_USAGE, "param %.*s given twice", (int)keylen, key);
	}
	if (b->nparams >= OPBLOB_MAX_PARAMS)
		return fail(FH_ERR_USAGE, "at most %d params", OPBLOB_MAX_PARAMS);
	pm = &b->params[b->nparams];
	memset(pm, 0, sizeof(*pm));
	memcpy(pm->key, key, keylen);
	pm->type = type;
	switch (type) {
	case OPBLOB_INT:
		if (!parse_i64(val, &pm->num) || pm->num < -OPBLOB_MAX_SAFE_INT || pm->num > OPBLOB_MAX_SAFE_INT)
			return fail(FH_ERR_USAGE, "param %s: not an integer within +-(2^53-1)", pm->key);
		break;
	case OPBLOB_BOOL:
		if (!strcmp(val, "true"))
			pm->b = true;
		else if (!strcmp(val, "false"))
			pm->b = false;
		else
			return fail(FH_ERR_USAGE, "param %s: not true or false", pm->key);
		break;
	default: {
		struct buf chk;
		int r;
		size_t n = strlen(val);
		if (n >= sizeof(pm->str))
			return fail(FH_ERR_USAGE, "param %s: longer than 1023 bytes", pm->key);
		buf_init(&chk, 4 * sizeof(pm->str));
		r = json_canonical_string(val, n, &chk);     /* UTF-8 check */
		buf_free(&chk);
		if (r)
			return fail(FH_ERR_USAGE, "param %s: not valid UTF-8", pm->key);
		memcpy(pm->str, val, n + 1);
		break;
	}
	}
	b->nparams++;
	return 0;
}

/* "k=v", "k:str=v", "k:int=5", "k:bool=true". */
static int parse_param(struct opblob *b, const char *spec)
{
	const char *eq = strchr(spec, '='), *colon;
	size_t klen;
	int type = OPBLOB_STR;

	if (!eq)
		return fail(FH_ERR_USAGE, "-param needs KEY=VALUE");
	colon = memchr(spec, ':', (size_t)(eq - spec));
	klen = colon ? (size_t)(colon - spec) : (size_t)(eq - spec);
	if (colon) {
		size_t tl = (size_t)(eq - colon - 1);
		if (tl == 3 && !strncmp(colon + 1, "int", 3))
			type = OPBLOB_INT;
		else if (tl == 4 && !strncmp(colon + 1, "bool", 4))
			type = OPBLOB_BOOL;
		else if (!(tl == 3 && !strncmp(colon + 1, "str", 3)))
			return fail(FH_ERR_USAGE, "-param type must be str, int or bool");
	}
	return add_param(b, spec, klen, type, eq + 1);
}

/* Fills everything but key_id and nonce from the flags. */
static int build_blob(const struct args *a, int64_t now, int64_t ttl, struct opblob *b)
{
	size_t i;
	int r;

	memset(b, 0, sizeof(*b));
	b->v = 1;
	if (!a->op || !a->host)
		return fail(FH_ERR_USAGE, "-op and -host are required");
	if (!all_chars(a->op, 1, 63, "_", true))
		return fail(FH_ERR_USAGE, "-op must be [a-z0-9_]{1,63}");
	if (!all_chars(a->host, 1, 127, "._-", false))
		return fail(FH_ERR_USAGE, "-host must be [A-Za-z0-9._-]{1,127}");
	strcpy(b->op, a->op);
	strcpy(b->host_id, a->host);
	if (a->guest) {
		if (host_scoped(a->op))
			return fail(FH_ERR_USAGE, "%s is host-scoped: no -guest", a->op);
		if (!parse_i64(a->guest, &b->guest_id) || b->guest_id < 100 || b->guest_id > 999999999)
			return fail(FH_ERR_USAGE, "-guest must be a VMID 100..999999999");
		b->has_guest = true;
	}
	if (a->durable_id) {
		if (!*a->durable_id || !printable_ascii(a->durable_id, 1, 1023))
			return fail(FH_ERR_USAGE, "-durable-id must be printable ASCII of 1..1023 bytes");
		r = add_param(b, "durable_id", 10, OPBLOB_STR, a->durable_id);
		if (r)
			return r;
	}
	for (i = 0; i < a->nparams; i++) {
		r = parse_param(b, a->params[i]);
		if (r)
			return r;
	}
	if (!strcmp(a->op, "storage_wipe") && !a->durable_id)
		return fail(FH_ERR_USAGE, "storage_wipe needs -durable-id (the device the agent reported)");
	b->issued_at = now;
	b->expires_at = now + ttl;
	return 0;
}

static int make_nonce(char *out, size_t outlen)
{
	WC_RNG rng;
	uint8_t raw[NONCE_BYTES];
	struct buf enc;
	int r = FH_ERR_INTERNAL;

	if (wc_InitRng(&rng) != 0)
		return fail(FH_ERR_INTERNAL, "cannot initialize the random number generator");
	buf_init(&enc, 128);
	if (wc_RNG_GenerateBlock(&rng, raw, sizeof(raw)) == 0 && b64_encode(raw, sizeof(raw), true, &enc) == 0 &&
	    enc.len < outlen) {
		memcpy(out, enc.data, enc.len + 1);
		r = 0;
	}
	wc_FreeRng(&rng);
	memset(raw, 0, sizeof(raw));
	buf_free(&enc);
	return r ? fail(r, "cannot make a nonce") : 0;
}

/* Checks, before anything is signed, that the agent's verifier (sig.h)
 * takes this public key as a signer; then, after signing, that it accepts
 * the signature over exactly these blob bytes for this host. */
static int self_verifier(const struct signkey *k, const char *host, struct sig_verifier **out)
{
	char line[PUBFILE_MAX + 128], err[512] = "";
	const char *lines[1] = { line };
	struct sig_config c;
	int r;

	snprintf(line, sizeof(line), "operational self %s %s", k->pub.type, k->pub.b64);
	memset(&c, 0, sizeof(c));
	c.signers = lines;
	c.nsigners = 1;
	c.host_id = host;
	c.max_lifetime_seconds = TTL_MAX;
	c.clock_skew_seconds = 0;
	r = sig_verifier_new(&c, out, err, sizeof(err));
	if (r == FH_ERR_NOMEM)
		return fail(r, "out of memory");
	if (r)
		return fail(r, "felhom-agent would not accept this key as a signer: %s", err);
	return 0;
}

static int sign_blob(const struct signkey *k, const struct tmpdir *t, const struct buf *blob, struct buf *armor)
{
	char bpath[PATH_MAX + 16], spath[PATH_MAX + 16];
	const char *argv[] = { "ssh-keygen", "-q", "-Y", "sign", "-n", SIG_NAMESPACE, "-f", k->file, bpath, NULL };
	int st = -1, r;

	snprintf(bpath, sizeof(bpath), "%s/blob", t->path);
	snprintf(spath, sizeof(spath), "%s/blob.sig", t->path);
	if (write_new_file(bpath, blob->data, blob->len, 0600) != 0)
		return fail(FH_ERR_IO, "cannot write a temporary file");
	r = run(argv, NULL, NULL, &st);
	if (r == FH_ERR_SPAWN)
		return fail(r, "cannot run ssh-keygen (is openssh-client installed?)");
	if (r)
		return fail(r, "ssh-keygen -Y sign failed (exit status %d)", st);
	if (read_file(spath, armor) != 0 || armor->len < 30 ||
	    memcmp(armor->data, "-----BEGIN SSH SIGNATURE-----", 29) != 0)
		return fail(FH_ERR_DECODE, "ssh-keygen wrote no signature");
	return 0;
}

static int cmd_sign(int argc, char **argv)
{
	struct args a;
	struct opblob *b = calloc(1, sizeof(*b));
	struct signkey *k = calloc(1, sizeof(*k));
	struct sig_verifier *v = NULL;
	struct sig_verified *vd = NULL;
	struct tmpdir t = { "", false };
	struct buf blob, armor, b64, bundle;
	int64_t now, ttl = TTL_DEFAULT;
	char why[256] = "", exp[32];
	int r = FH_ERR_INTERNAL;

	buf_init(&blob, OPBLOB_MAX_BYTES);
	buf_init(&armor, SIG_ARMOR_MAX);
	buf_init(&b64, 2 * OPBLOB_MAX_BYTES);
	buf_init(&bundle, 4 * OPBLOB_MAX_BYTES + 4 * SIG_ARMOR_MAX);
	memset(&a, 0, sizeof(a));
	if (!b || !k) {
		r = fail(FH_ERR_NOMEM, "out of memory");
		goto out;
	}
	r = parse_args(argc, argv, sign_flags, false, &a);
	if (r)
		goto out;
	if (a.key && a.agent) {
		r = fail(FH_ERR_USAGE, "-key and -agent exclude each other");
		goto out;
	}
	if (a.key_id && !printable_ascii(a.key_id, 1, 64)) {
		r = fail(FH_ERR_USAGE, "-key-id must be printable ASCII of 1..64 bytes");
		goto out;
	}
	if (a.ttl && (!parse_ttl(a.ttl, &ttl) || ttl < 1 || ttl > TTL_MAX)) {
		r = fail(FH_ERR_USAGE, "-ttl must be like 900s, 15m or 1h30m, at most 24h");
		goto out;
	}
	now = (int64_t)time(NULL);
	if (a.now && (!parse_i64(a.now, &now) || now < 1 || now > OPBLOB_MAX_SAFE_INT - TTL_MAX)) {
		r = fail(FH_ERR_USAGE, "-now must be a positive Unix time");
		goto out;
	}
	r = build_blob(&a, now, ttl, b);
	if (r)
		goto out;
	r = make_nonce(b->nonce, sizeof(b->nonce));
	if (r)
		goto out;
	r = tmpdir_make(&t);
	if (r)
		goto out;
	if (a.key_id && a.print_blob && !a.key && !a.agent) {
		/* nothing to sign with is needed to show the blob */
	} else {
		r = find_key(a.key, a.agent, t.path, k);
		if (r)
			goto out;
	}
	if (a.key_id)
		memcpy(b->key_id, a.key_id, strlen(a.key_id) + 1);     /* checked: at most 64 */
	else if ((r = derive_key_id(k, b->key_id, sizeof(b->key_id))) != 0)
		goto out;
	if (opblob_validate(b, why, sizeof(why)) != 0) {
		r = fail(FH_ERR_INTERNAL, "blob does not validate: %s", why);
		goto out;
	}
	r = opblob_canonical(b, &blob);
	if (r) {
		r = fail(r, "cannot build the blob: %s", fh_strerror(r));
		goto out;
	}
	if (a.print_blob) {
		r = write_all(1, blob.data, blob.len);
		if (!r)
			r = write_all(1, "\n", 1);
		if (r)
			r = fail(r, "cannot write to stdout");
		goto out;
	}
	if (k->have_pub) {
		r = self_verifier(k, b->host_id, &v);
		if (r)
			goto out;
	}
	fprintf(stderr, PROG ": signing %s for host %s with %s\n", b->op, b->host_id, k->desc);
	r = sign_blob(k, &t, &blob, &armor);
	if (r)
		goto out;
	if (v) {
		vd = calloc(1, sizeof(*vd));
		if (!vd) {
			r = fail(FH_ERR_NOMEM, "out of memory");
			goto out;
		}
		r = sig_check(v, (const uint8_t *)blob.data, blob.len, armor.data, armor.len, b->issued_at, vd, why,
			      sizeof(why));
		if (r) {
			r = fail(r, "the signature does not pass felhom-agent's verifier: %s: %s", fh_strerror(r), why);
			goto out;
		}
	}
	r = b64_encode((const uint8_t *)blob.data, blob.len, false, &b64);
	if (!r)
		r = buf_appendz(&bundle, "{\"blob_b64\":");
	if (!r)
		r = json_canonical_string(b64.data, b64.len, &bundle);
	if (!r)
		r = buf_appendz(&bundle, ",\"signature\":");
	if (!r)
		r = json_canonical_string(armor.data, armor.len, &bundle);
	if (!r)
		r = buf_appendz(&bundle, "}\n");
	if (r) {
		r = fail(r, "cannot build the bundle: %s", fh_strerror(r));
		goto out;
	}
	if (a.out && strcmp(a.out, "-") != 0) {
		r = write_file_atomic(a.out, bundle.data, bundle.len);
		if (r) {
			r = fail(r, "cannot write %s: %s", a.out, strerror(errno));
			goto out;
		}
	} else if ((r = write_all(1, bundle.data, bundle.len)) != 0) {
		r = fail(r, "cannot write to stdout");
		goto out;
	}
	iso_time(b->expires_at, exp, sizeof(exp));
	fprintf(stderr, PROG ": signed %s (key_id %s, nonce %s), valid until %s%s%s\n", b->op, b->key_id, b->nonce,
		exp, a.out && strcmp(a.out, "-") ? "; bundle in " : "", a.out && strcmp(a.out, "-") ? a.out : "");
	if (ttl > AGENT_MAX_LIFETIME)
		fprintf(stderr, PROG ": note: a lifetime over %ds is refused by agents with the default "
				"authz.max_lifetime_seconds\n", AGENT_MAX_LIFETIME);
	r = 0;
out:
	tmpdir_remove(&t);
	sig_verifier_free(v);
	buf_free(&blob);
	buf_free(&armor);
	buf_free(&b64);
	buf_free(&bundle);
	free(vd);
	free(b);
	free(k);
	return r;
}

/* ---- verify ---- */

static int cmd_verify(int argc, char **argv)
{
	struct args a;
	struct buf raw, blob, canon, params;
	struct json *j = NULL;
	struct json_limits lim = { BUNDLE_MAX, 2, false };
	struct sig_verifier *v = NULL;
	struct sig_verified *vd = calloc(1, sizeof(*vd));
	struct sig_config c;
	const struct json *jb = NULL, *js = NULL;
	int64_t now, skew = AGENT_SKEW, maxlife = AGENT_MAX_LIFETIME;
	char why[512] = "", t1[32], t2[32];
	size_t i;
	int r = FH_ERR_INTERNAL;

	buf_init(&raw, BUNDLE_MAX);
	buf_init(&blob, BUNDLE_MAX);
	buf_init(&canon, BUNDLE_MAX);
	buf_init(&params, BUNDLE_MAX);
	memset(&a, 0, sizeof(a));
	if (!vd) {
		r = fail(FH_ERR_NOMEM, "out of memory");
		goto out;
	}
	r = parse_args(argc, argv, verify_flags, true, &a);
	if (r)
		goto out;
	if (!a.bundle || !a.signers || !a.host) {
		r = fail(FH_ERR_USAGE, "verify needs BUNDLE, -signers FILE and -host HOST");
		goto out;
	}
	now = (int64_t)time(NULL);
	if ((a.now && (!parse_i64(a.now, &now) || now < 0)) || (a.skew && (!parse_i64(a.skew, &skew) || skew < 0)) ||
	    (a.max_lifetime && (!parse_i64(a.max_lifetime, &maxlife) || maxlife < 1))) {
		r = fail(FH_ERR_USAGE, "-now, -skew and -max-lifetime take non-negative integers");
		goto out;
	}
	r = read_file(a.bundle, &raw);
	if (r) {
		r = fail(r, "cannot read %s: %s", a.bundle, r == FH_ERR_TOOBIG ? "over 64 KiB" : strerror(errno));
		goto out;
	}
	r = json_parse(raw.data ? raw.data : "", raw.len, &lim, &j, why, sizeof(why));
	if (r) {
		r = fail(FH_ERR_SIG_MALFORMED, "malformed: bundle is not JSON: %s", why);
		goto out;
	}
	r = FH_ERR_SIG_MALFORMED;
	fail(r, "malformed: bundle must be {\"blob_b64\":..,\"signature\":..}");
	if (j->type != JSON_OBJECT)
		goto out;
	for (i = 0; i < j->n; i++) {
		const struct json *m = j->items[i];
		if (m->type != JSON_STRING)
			goto out;
		if (!strcmp(j->keys[i], "blob_b64"))
			jb = m;
		else if (!strcmp(j->keys[i], "signature"))
			js = m;
		else if (strcmp(j->keys[i], "id") != 0)     /* the hub's signed-ops entries carry an id */
			goto out;
	}
	if (!jb || !js)
		goto out;
	if (b64_decode_strict(jb->s, jb->slen, &blob) != 0) {
		r = fail(FH_ERR_SIG_MALFORMED, "malformed: blob_b64 is not padded standard base64");
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.signers_file = a.signers;
	c.host_id = a.host;
	c.max_lifetime_seconds = maxlife;
	c.clock_skew_seconds = skew;
	r = sig_verifier_new(&c, &v, why, sizeof(why));
	if (r) {
		r = fail(r, "signers: %s", why);
		goto out;
	}
	/* the agent's pipeline, stages 1-8 (the nonce is not recorded) */
	r = sig_check(v, (const uint8_t *)blob.data, blob.len, js->s, js->slen, now, vd, why, sizeof(why));
	if (r) {
		r = fail(r, "rejected: %s: %s", fh_strerror(r), why);
		goto out;
	}
	/* what felhom-opsign and the hub emit is canonical; the agent would
	 * take any valid blob, but a non-canonical one did not come from us */
	r = opblob_canonical(&vd->op, &canon);
	if (!r)
		r = opblob_params_canonical(&vd->op, &params);
	if (r) {
		r = fail(r, "cannot re-encode the blob: %s", fh_strerror(r));
		goto out;
	}
	if (canon.len != blob.len || memcmp(canon.data, blob.data, blob.len) != 0) {
		r = fail(FH_ERR_SIG_MALFORMED, "signature verifies, but the blob is not in canonical form");
		goto out;
	}
	iso_time(vd->op.issued_at, t1, sizeof(t1));
	iso_time(vd->op.expires_at, t2, sizeof(t2));
	printf("ok: signed by %s (%s, %s)\n", vd->signer_id, sig_role_name(vd->role), sig_keytype_name(vd->keytype));
	printf("op: %s\nhost_id: %s\n", vd->op.op, vd->op.host_id);
	if (vd->op.has_guest)
		printf("guest_id: %" PRId64 "\n", vd->op.guest_id);
	else
		printf("guest_id: null\n");
	printf("params: %s\nkey_id: %s\nnonce: %s\n", buf_str(&params), vd->op.key_id, vd->op.nonce);
	printf("issued_at: %" PRId64 " (%s)\nexpires_at: %" PRId64 " (%s)\n", vd->op.issued_at, t1,
	       vd->op.expires_at, t2);
	if (fflush(stdout) != 0)
		r = fail(FH_ERR_IO, "cannot write to stdout");
out:
	json_free(j);
	sig_verifier_free(v);
	buf_free(&raw);
	buf_free(&blob);
	buf_free(&canon);
	buf_free(&params);
	free(vd);
	return r;
}

int main(int argc, char **argv)
{
	int i, r;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-version")) {
			printf(PROG " %s\n", FH_VERSION);
			return 0;
		}
	}
	if (argc < 2) {
		fprintf(stderr, PROG ": usage: -op OP -host HOST required (see " PROG " --help)\n");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "verify"))
		r = cmd_verify(argc - 2, argv + 2);
	else
		r = cmd_sign(argc - 1, argv + 1);
	if (r == 0)
		return 0;
	if (r == FH_ERR_USAGE) {
		fprintf(stderr, PROG ": usage: %s (see " PROG " --help)\n", g_msg);
		return EXIT_USAGE;
	}
	fprintf(stderr, PROG ": %s\n", g_msg[0] ? g_msg : fh_strerror(r));
	return EXIT_FAIL;
}

/* test_opsign.c — felhom-opsign end to end: the binary of this build
 * (t_build_dir()/felhom-opsign) run with temporary keys made by ssh-keygen
 * and an ssh-agent started here; signatures checked independently with
 * `ssh-keygen -Y verify`. No network. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "harness.h"
#include "json.h"
#include "opblob.h"

#define SSH_KEYGEN "/usr/bin/ssh-keygen"
#define SSH_AGENT "/usr/bin/ssh-agent"
#define SSH_ADD "/usr/bin/ssh-add"
#define HOST "host-7f3a"
#define DURABLE "byid:ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567"

/* snprintf into an array, aborting on truncation (paths here are short) */
#define PATHF(arr, ...) do { \
	if ((size_t)snprintf((arr), sizeof(arr), __VA_ARGS__) >= sizeof(arr)) \
		abort(); \
	} while (0)

static char g_dir[256];          /* scratch for this run */
static char g_opsign[512];
static char g_key_agent[512];    /* key held by the agent, comment "ops-agent" */
static char g_key_home[512];     /* ~/.ssh/id_ed25519 of g_home, comment "ops-home" */
static char g_key_other[512];    /* a key nobody trusts */
static char g_home[512];         /* HOME with .ssh/id_ed25519 */
static char g_empty_home[512];   /* HOME with nothing */
static char g_sockdir[64];
static char g_sock[512];
static char g_empty_sock[512];   /* an agent holding no keys */
static pid_t g_agent = -1, g_empty_agent = -1;

/* ---- processes ---- */

/* Environment for the tool: a fixed PATH, HOME, optionally SSH_AUTH_SOCK,
 * and the sanitizer options of this run. */
struct env {
	char home[600], sock[600], tmp[600], asan[600], ubsan[600];
	const char *v[10];
};

static void env_make(struct env *e, const char *home, const char *sock)
{
	size_t n = 0;
	const char *a = getenv("ASAN_OPTIONS"), *u = getenv("UBSAN_OPTIONS");

	e->v[n++] = "PATH=/usr/bin:/bin";
	e->v[n++] = "LC_ALL=C";
	PATHF(e->home, "HOME=%s", home);
	e->v[n++] = e->home;
	PATHF(e->tmp, "TMPDIR=%s", g_dir);
	e->v[n++] = e->tmp;
	if (sock) {
		PATHF(e->sock, "SSH_AUTH_SOCK=%s", sock);
		e->v[n++] = e->sock;
	}
	if (a) {
		PATHF(e->asan, "ASAN_OPTIONS=%s", a);
		e->v[n++] = e->asan;
	}
	if (u) {
		PATHF(e->ubsan, "UBSAN_OPTIONS=%s", u);
		e->v[n++] = e->ubsan;
	}
	e->v[n] = NULL;
}

/* Like t_run_cmd, with stdin from a file. */
static int run_stdin(const char *const argv[], const char *const envp[], const char *in, char **out, char **err)
{
	posix_spawn_file_actions_t fa;
	char outp[600], errp[600];
	int st = 0;
	pid_t pid;
	static unsigned seq;

	PATHF(outp, "%s/.out%u", g_dir, seq);
	PATHF(errp, "%s/.err%u", g_dir, seq++);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv, (char *const *)(uintptr_t)envp)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	waitpid(pid, &st, 0);
	if (out)
		*out = t_slurp(outp, NULL);
	if (err)
		*err = t_slurp(errp, NULL);
	unlink(outp);
	unlink(errp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *const sys_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

static int keygen(const char *path, const char *comment)
{
	const char *argv[] = { SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL };
	return t_run_cmd(argv, sys_env, NULL, NULL);
}

/* Starts `ssh-agent -D -a SOCK` in the background and waits for its socket. */
static pid_t agent_start(const char *sock)
{
	const char *argv[] = { SSH_AGENT, "-D", "-a", sock, NULL };
	posix_spawn_file_actions_t fa;
	struct stat st;
	pid_t pid;
	int i;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, SSH_AGENT, &fa, NULL, (char *const *)(uintptr_t)argv,
			(char *const *)(uintptr_t)sys_env)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	for (i = 0; i < 500; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return pid;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

static void agent_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

/* Runs felhom-opsign with args (NULL-terminated) in env; captures output. */
static int opsign(const struct env *e, char **out, char **err, const char *const *args)
{
	const char *argv[40];
	size_t n = 0;

	argv[n++] = g_opsign;
	while (*args && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	return t_run_cmd(argv, e->v, out, err);
}

#define OPSIGN(e, out, err, ...) opsign((e), (out), (err), (const char *const[]){ __VA_ARGS__, NULL })

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- bundles ---- */

struct bundle {
	char *blob;           /* decoded blob bytes, NUL-terminated */
	size_t bloblen;
	char *armor;
	struct opblob op;
};

static void bundle_free(struct bundle *b)
{
	free(b->blob);
	free(b->armor);
	memset(b, 0, sizeof(*b));
}

/* Standard base64, written out here so the test does not share the tool's
 * codec. */
static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static char *b64dec(const char *s, size_t n, size_t *outlen)
{
	char *o = malloc(n / 4 * 3 + 1);
	size_t i, k = 0;

	if (n % 4) {
		free(o);
		return NULL;
	}
	for (i = 0; i < n; i += 4) {
		int v[4], j;
		for (j = 0; j < 4; j++)
			v[j] = s[i + j] == '=' ? 0 : b64val(s[i + j]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
			free(o);
			return NULL;
		}
		o[k++] = (char)((v[0] << 2) | (v[1] >> 4));
		if (s[i + 2] != '=')
			o[k++] = (char)(((v[1] & 15) << 4) | (v[2] >> 2));
		if (s[i + 3] != '=')
			o[k++] = (char)(((v[2] & 3) << 6) | v[3]);
	}
	o[k] = '\0';
	*outlen = k;
	return o;
}

static char *b64enc(const char *p, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = malloc((n + 2) / 3 * 4 + 1);
	const unsigned char *s = (const unsigned char *)p;
	size_t i, k = 0;

	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
		o[k++] = al[v >> 18 & 63];
		o[k++] = al[v >> 12 & 63];
		o[k++] = i + 1 < n ? al[v >> 6 & 63] : '=';
		o[k++] = i + 2 < n ? al[v & 63] : '=';
	}
	o[k] = '\0';
	return o;
}

/* Parses a bundle as printed (one line) and checks its shape: canonical
 * JSON with exactly blob_b64 and signature, the blob canonical itself. */
static int bundle_parse(const char *text, struct bundle *b)
{
	struct json_limits lim = { 1 << 16, 4, false };
	struct json *j = NULL;
	struct buf c;
	const struct json *jb, *js;
	size_t n = strlen(text);
	int ok = -1;

	memset(b, 0, sizeof(*b));
	buf_init(&c, 1 << 17);
	if (n < 2 || text[n - 1] != '\n')
		goto out;
	n--;
	/* the bundle is its own canonical form */
	if (json_canonical(text, n, &c) || c.len != n || memcmp(c.data, text, n))
		goto out;
	if (json_parse(text, n, &lim, &j, NULL, 0) || j->type != JSON_OBJECT || j->n != 2)
		goto out;
	jb = json_get(j, "blob_b64");
	js = json_get(j, "signature");
	if (!jb || !js || jb->type != JSON_STRING || js->type != JSON_STRING)
		goto out;
	b->blob = b64dec(jb->s, jb->slen, &b->bloblen);
	b->armor = strdup(js->s);
	if (!b->blob || strncmp(b->armor, "-----BEGIN SSH SIGNATURE-----\n", 30))
		goto out;
	if (opblob_parse(b->blob, b->bloblen, &b->op, NULL, 0))
		goto out;
	buf_reset(&c);
	if (opblob_canonical(&b->op, &c) || c.len != b->bloblen || memcmp(c.data, b->blob, c.len))
		goto out;
	ok = 0;
out:
	json_free(j);
	buf_free(&c);
	if (ok)
		bundle_free(b);
	return ok;
}

/* ssh-keygen -Y verify over the decoded blob with an allowed_signers file
 * holding pubfile's key: 0 when ssh-keygen says the signature is good. */
static int keygen_verify(const struct bundle *b, const char *pubfile)
{
	char allowed[600], sig[600], msg[600], line[2048];
	char *pub = t_slurp(pubfile, NULL), *out = NULL, *err = NULL, *sp;
	int st;

	if (!pub)
		return -1;
	sp = strchr(pub, ' ');
	sp = sp ? strchr(sp + 1, ' ') : NULL;
	if (sp)
		*sp = '\0';     /* type and key, no comment */
	PATHF(allowed, "%s/allowed_signers", g_dir);
	PATHF(sig, "%s/check.sig", g_dir);
	PATHF(msg, "%s/check.blob", g_dir);
	PATHF(line, "ops@test namespaces=\"felhom-op-v1\" %s\n", strtok(pub, "\n"));
	free(pub);
	unlink(msg);
	if (t_write_file(allowed, line, 0600) || t_write_file(sig, b->armor, 0600))
		return -1;
	{
		int fd = open(msg, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, b->blob, b->bloblen) != (ssize_t)b->bloblen) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	{
		const char *argv[] = { SSH_KEYGEN, "-Y", "verify", "-f", allowed, "-I", "ops@test", "-n",
				       "felhom-op-v1", "-s", sig, NULL };
		st = run_stdin(argv, sys_env, msg, &out, &err);
	}
	if (st == 0 && (!out || !strstr(out, "Good \"felhom-op-v1\" signature for ops@test")))
		st = -1;
	free(out);
	free(err);
	return st;
}

static void pubpath(const char *key, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.pub", key);
}

/* A signers file (ROLE KEY_ID KEYTYPE BASE64 COMMENT) holding key's .pub. */
static void write_signers(const char *path, const char *key, const char *id)
{
	char pp[600], line[2048];
	char *pub;

	pubpath(key, pp, sizeof(pp));
	pub = t_slurp(pp, NULL);
	PATHF(line, "# test signers\noperational %s %s", id, pub ? pub : "");
	T_CHECK(pub && t_write_file(path, line, 0600) == 0);
	free(pub);
}

/* Checks what the controller's command must produce. */
static void check_wipe_bundle(const char *out, const char *key, const char *comment, struct bundle *b)
{
	char pp[600];
	int64_t now = (int64_t)time(NULL);
	size_t i;

	T_CHECK(bundle_parse(out, b) == 0);
	if (!b->blob)
		return;
	T_EQ_STR(b->op.op, "storage_wipe");
	T_EQ_STR(b->op.host_id, HOST);
	T_CHECK(!b->op.has_guest);
	T_CHECK(strstr(b->blob, "\"guest_id\":null,") != NULL);
	T_EQ_INT(b->op.nparams, 1);
	T_EQ_STR(b->op.params[0].key, "durable_id");
	T_EQ_STR(b->op.params[0].str, DURABLE);
	T_EQ_STR(b->op.key_id, comment);
	T_EQ_INT(b->op.expires_at - b->op.issued_at, 900);
	T_CHECK(b->op.issued_at >= now - 120 && b->op.issued_at <= now + 5);
	T_EQ_INT(strlen(b->op.nonce), 43);     /* 32 random bytes, base64url unpadded */
	for (i = 0; b->op.nonce[i]; i++)
		T_CHECK(b->op.nonce[i] != '+' && b->op.nonce[i] != '/' && b->op.nonce[i] != '=');
	pubpath(key, pp, sizeof(pp));
	T_EQ_INT(keygen_verify(b, pp), 0);
}

/* ---- tests ---- */

/* The exact command the in-guest controller prints, with the key in ssh-agent. */
T_TEST(t_controller_command_agent)
{
	struct env e;
	struct bundle b;
	char *out = NULL, *err = NULL;
	int st;

	env_make(&e, g_empty_home, g_sock);
	st = OPSIGN(&e, &out, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE);
	T_EQ_INT(st, 0);
	if (st)
		printf("  stderr: %s\n", err ? err : "");
	check_wipe_bundle(out, g_key_agent, "ops-agent", &b);
	T_CHECK(err && strstr(err, "agent identity ssh-ed25519 SHA256:"));
	bundle_free(&b);
	free(out);
	free(err);
}

/* The same with no agent: the default identity file under $HOME. */
T_TEST(t_controller_command_home_key)
{
	struct env e;
	struct bundle b;
	char *out = NULL, *err = NULL;
	int st;

	env_make(&e, g_home, NULL);
	st = OPSIGN(&e, &out, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE);
	T_EQ_INT(st, 0);
	if (st)
		printf("  stderr: %s\n", err ? err : "");
	check_wipe_bundle(out, g_key_home, "ops-home", &b);
	T_CHECK(err && strstr(err, "/.ssh/id_ed25519"));
	/* and the agent's key does not verify it */
	{
		char pp[600];
		pubpath(g_key_agent, pp, sizeof(pp));
		if (b.blob)
			T_CHECK(keygen_verify(&b, pp) != 0);
	}
	bundle_free(&b);
	free(out);
	free(err);
}

/* An agent with no identities: fall back to ~/.ssh, as ssh does. */
T_TEST(t_empty_agent_falls_back)
{
	struct env e;
	struct bundle b;
	char *out = NULL, *err = NULL;

	env_make(&e, g_home, g_empty_sock);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE), 0);
	check_wipe_bundle(out, g_key_home, "ops-home", &b);
	bundle_free(&b);
	free(out);
	free(err);
	/* -agent insists on the agent */
	T_EQ_INT(OPSIGN(&e, &out, &err, "-agent", "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE), 1);
	T_CHECK(out && !*out);
	T_CHECK(err && strstr(err, "no identities") && count_lines(err) == 1);
	free(out);
	free(err);
	/* no agent, no key: a failure, not a usage error */
	env_make(&e, g_empty_home, NULL);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE), 1);
	T_CHECK(err && strstr(err, "no signing key") && count_lines(err) == 1);
	free(out);
	free(err);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-agent", "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE), 1);
	T_CHECK(err && strstr(err, "SSH_AUTH_SOCK"));
	free(out);
	free(err);
}

/* -key, -key-id, -guest, params, -ttl, -now, -o. */
T_TEST(t_explicit_options)
{
	struct env e;
	struct bundle b;
	char *out = NULL, *err = NULL, *file;
	char path[600];
	int st;

	env_make(&e, g_empty_home, NULL);
	PATHF(path, "%s/guest.bundle", g_dir);
	st = OPSIGN(&e, &out, &err, "-op", "guest_destroy", "-host", "h.2_x-1", "-guest", "105", "-param", "reason=disk full",
		    "-param", "keep_days:int=-3", "-param", "force:bool=true", "-ttl", "1h30m", "-now", "1781000000",
		    "-key", g_key_other, "-key-id", "anna (laptop)", "-o", path);
	T_EQ_INT(st, 0);
	T_CHECK(out && !*out);          /* the bundle went to the file */
	file = t_slurp(path, NULL);
	T_CHECK(file && bundle_parse(file, &b) == 0);
	if (b.blob) {
		static const char head[] = "{\"expires_at\":1781005400,\"guest_id\":105,\"host_id\":\"h.2_x-1\","
					   "\"issued_at\":1781000000,\"key_id\":\"anna (laptop)\",\"nonce\":\"";
		T_CHECK(strncmp(b.blob, head, sizeof(head) - 1) == 0);
		T_CHECK(strstr(b.blob, "\",\"op\":\"guest_destroy\",\"params\":{\"force\":true,\"keep_days\":-3,"
				       "\"reason\":\"disk full\"},\"v\":1}") != NULL);
		{
			char pp[600];
			pubpath(g_key_other, pp, sizeof(pp));
			T_EQ_INT(keygen_verify(&b, pp), 0);
		}
	}
	bundle_free(&b);
	free(file);
	free(out);
	free(err);
}

/* A key file's comment becomes key_id; without .pub the file name does. */
T_TEST(t_key_id_derivation)
{
	struct env e;
	char *out = NULL, *err = NULL;
	char copy[600], pp[600];
	char *priv;

	env_make(&e, g_empty_home, NULL);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "x", "-host", "h", "-key", g_key_other, "-print-blob"), 0);
	T_CHECK(out && strstr(out, "\"key_id\":\"ops-other\""));
	free(out);
	free(err);
	/* a private key with no .pub beside it */
	PATHF(copy, "%s/lonely_key", g_dir);
	priv = t_slurp(g_key_other, NULL);
	T_CHECK(priv && t_write_file(copy, priv, 0600) == 0);
	free(priv);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "x", "-host", "h", "-key", copy, "-print-blob"), 0);
	T_CHECK(out && strstr(out, "\"key_id\":\"lonely_key\""));
	free(out);
	free(err);
	/* signing with it still works (ssh-keygen reads the private key) */
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "x", "-host", "h", "-key", copy), 0);
	{
		struct bundle b;
		T_CHECK(out && bundle_parse(out, &b) == 0);
		pubpath(g_key_other, pp, sizeof(pp));
		if (b.blob)
			T_EQ_INT(keygen_verify(&b, pp), 0);
		bundle_free(&b);
	}
	free(out);
	free(err);
}

/* -print-blob: the canonical blob and a newline, nothing signed; with
 * -key-id no key is needed at all. Nonces are fresh per run. */
T_TEST(t_print_blob)
{
	struct env e;
	char *o1 = NULL, *o2 = NULL, *err = NULL;
	struct opblob *p = calloc(1, sizeof(*p));
	struct buf c;
	size_t n;

	buf_init(&c, 1 << 16);
	env_make(&e, g_empty_home, NULL);
	T_EQ_INT(OPSIGN(&e, &o1, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE, "-key-id", "k",
			"-print-blob"), 0);
	free(err);
	T_EQ_INT(OPSIGN(&e, &o2, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE, "-key-id", "k",
			"-print-blob"), 0);
	free(err);
	n = o1 ? strlen(o1) : 0;
	T_CHECK(n > 1 && o1[n - 1] == '\n');
	if (n > 1) {
		T_OK(opblob_parse(o1, n - 1, p, NULL, 0));
		T_OK(opblob_canonical(p, &c));
		T_CHECK(c.len == n - 1 && memcmp(c.data, o1, c.len) == 0);
		T_CHECK(!p->has_guest);
		T_EQ_STR(p->key_id, "k");
	}
	T_CHECK(o1 && o2 && strcmp(o1, o2) != 0);   /* the nonce differs */
	buf_free(&c);
	free(p);
	free(o1);
	free(o2);
}

/* verify: a good bundle passes; tampering, the wrong host, an unknown
 * signer, expiry and a non-canonical blob are rejected with their names. */
T_TEST(t_verify_subcommand)
{
	struct env e;
	struct bundle b;
	char *out = NULL, *err = NULL, *good = NULL;
	char bpath[600], tpath[600], signers[600], others[600], now_s[32] = "0", late_s[32] = "0";
	int st;

	env_make(&e, g_home, NULL);
	PATHF(bpath, "%s/good.bundle", g_dir);
	PATHF(tpath, "%s/tampered.bundle", g_dir);
	PATHF(signers, "%s/signers", g_dir);
	PATHF(others, "%s/signers.other", g_dir);
	write_signers(signers, g_key_home, "ops-home");
	write_signers(others, g_key_other, "ops-other");
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "storage_wipe", "-host", HOST, "-durable-id", DURABLE, "-o", bpath), 0);
	free(out);
	free(err);

	st = OPSIGN(&e, &out, &err, "verify", bpath, "-signers", signers, "-host", HOST);
	T_EQ_INT(st, 0);
	if (st)
		printf("  stderr: %s\n", err ? err : "");
	T_CHECK(out && !strncmp(out, "ok: signed by ops-home (operational, ssh-ed25519)\n", 50));
	T_CHECK(out && strstr(out, "\nguest_id: null\n") && strstr(out, "\"durable_id\":\"" DURABLE "\""));
	free(out);
	free(err);

	/* "-" reads the bundle from stdin */
	{
		const char *argv[] = { g_opsign, "verify", "-", "-signers", signers, "-host", HOST, NULL };
		T_EQ_INT(run_stdin(argv, e.v, bpath, &out, &err), 0);
		T_CHECK(out && !strncmp(out, "ok: signed by ops-home", 22));
		free(out);
		free(err);
	}
	good = t_slurp(bpath, NULL);
	T_CHECK(good && bundle_parse(good, &b) == 0);

	/* wrong host */
	T_EQ_INT(OPSIGN(&e, &out, &err, "verify", bpath, "-signers", signers, "-host", "host-other"), 1);
	T_CHECK(err && strstr(err, "rejected: target") && count_lines(err) == 1);
	free(out);
	free(err);
	/* a signer list without the key */
	T_EQ_INT(OPSIGN(&e, &out, &err, "verify", bpath, "-signers", others, "-host", HOST), 1);
	T_CHECK(err && strstr(err, "rejected: unknown_signer"));
	free(out);
	free(err);
	/* checked after it expired, and long before it was issued */
	if (b.blob) {
		PATHF(late_s, "%lld", (long long)b.op.expires_at + 61);
		PATHF(now_s, "%lld", (long long)b.op.issued_at - 3600);
	}
	T_EQ_INT(OPSIGN(&e, &out, &err, "verify", bpath, "-signers", signers, "-host", HOST, "-now", late_s), 1);
	T_CHECK(err && strstr(err, "rejected: expired"));
	free(out);
	free(err);
	T_EQ_INT(OPSIGN(&e, &out, &err, "verify", bpath, "-signers", signers, "-host", HOST, "-now", now_s), 1);
	T_CHECK(err && strstr(err, "rejected: not_yet_valid"));
	free(out);
	free(err);

	/* tampered: the same blob with another durable id, signature kept */
	if (b.blob) {
		char *evil = strdup(b.blob), *at = strstr(evil, "WCC7K"), *enc, *doc;
		size_t dl;
		at[0] = 'X';
		enc = b64enc(evil, b.bloblen);
		dl = strlen(enc) + strlen(good) + 64;
		doc = malloc(dl);
		/* splice the new blob_b64 into the good bundle text */
		{
			const char *sigpart = strstr(good, ",\"signature\":");
			snprintf(doc, dl, "{\"blob_b64\":\"%s\"%s", enc, sigpart ? sigpart : "}");
		}
		T_CHECK(t_write_file(tpath, doc, 0600) == 0);
		T_EQ_INT(OPSIGN(&e, &out, &err, "verify", tpath, "-signers", signers, "-host", HOST), 1);
		T_CHECK(err && strstr(err, "rejected: bad_signature"));
		T_CHECK(out && !*out);
		free(out);
		free(err);
		/* ssh-keygen agrees */
		{
			struct bundle t = b;
			char pp[600];
			t.blob = evil;
			pubpath(g_key_home, pp, sizeof(pp));
			T_CHECK(keygen_verify(&t, pp) != 0);
		}
		/* a truncated signature and a broken bundle are malformed */
		snprintf(doc, dl, "{\"blob_b64\":\"%s\",\"signature\":\"-----BEGIN SSH SIGNATURE-----\\nAAAA\"}\n",
			 enc);
		T_CHECK(t_write_file(tpath, doc, 0600) == 0);
		T_EQ_INT(OPSIGN(&e, &out, &err, "verify", tpath, "-signers", signers, "-host", HOST), 1);
		T_CHECK(err && strstr(err, "rejected: malformed"));
		free(out);
		free(err);
		T_CHECK(t_write_file(tpath, "{\"blob_b64\":\"e30=\",\"blob_b64\":\"e30=\"}", 0600) == 0);
		T_EQ_INT(OPSIGN(&e, &out, &err, "verify", tpath, "-signers", signers, "-host", HOST), 1);
		T_CHECK(err && strstr(err, "malformed"));
		free(out);
		free(err);
		free(evil);
		free(enc);
		free(doc);
	}

	/* a validly signed but non-canonical blob (pretty-printed): the
	 * signature verifies, verify still refuses it */
	if (b.blob) {
		char msg[600], sig[600], doc[8192];
		char *pretty = malloc(b.bloblen + 8), *armor = NULL, *enc;
		snprintf(pretty, b.bloblen + 8, "%s \n", b.blob);
		PATHF(msg, "%s/pretty.blob", g_dir);
		PATHF(sig, "%s/pretty.blob.sig", g_dir);
		unlink(sig);
		T_CHECK(t_write_file(msg, pretty, 0600) == 0);
		{
			const char *argv[] = { SSH_KEYGEN, "-q", "-Y", "sign", "-n", "felhom-op-v1", "-f", g_key_home, msg,
					       NULL };
			T_EQ_INT(t_run_cmd(argv, sys_env, NULL, NULL), 0);
		}
		armor = t_slurp(sig, NULL);
		enc = b64enc(pretty, strlen(pretty));
		T_CHECK(armor != NULL);
		if (armor) {
			struct buf j;
			buf_init(&j, sizeof(doc));
			buf_appendz(&j, "{\"blob_b64\":");
			json_canonical_string(enc, strlen(enc), &j);
			buf_appendz(&j, ",\"signature\":");
			json_canonical_string(armor, strlen(armor), &j);
			buf_appendz(&j, "}");
			T_CHECK(t_write_file(tpath, buf_str(&j), 0600) == 0);
			buf_free(&j);
		}
		T_EQ_INT(OPSIGN(&e, &out, &err, "verify", tpath, "-signers", signers, "-host", HOST), 1);
		T_CHECK(err && strstr(err, "not in canonical form"));
		free(out);
		free(err);
		free(pretty);
		free(armor);
		free(enc);
	}
	bundle_free(&b);
	free(good);
}

/* Usage errors: exit 2 and exactly one line on stderr, nothing on stdout. */
T_TEST(t_usage_errors)
{
	static const char *const cases[][12] = {
		{ NULL },
		{ "-op", "storage_wipe", NULL },                                          /* no -host */
		{ "-host", HOST, NULL },                                                   /* no -op */
		{ "-op", "storage_wipe", "-host", HOST, "-durable-id", "x", "-guest", "101", NULL },
		{ "-op", "storage_wipe", "-host", HOST, NULL },                            /* no -durable-id */
		{ "-op", "Storage", "-host", HOST, NULL },
		{ "-op", "x", "-host", "bad host", NULL },
		{ "-op", "x", "-host", HOST, "-guest", "99", NULL },
		{ "-op", "x", "-host", HOST, "-guest", "abc", NULL },
		{ "-op", "x", "-host", HOST, "-ttl", "25h", NULL },
		{ "-op", "x", "-host", HOST, "-ttl", "10", NULL },
		{ "-op", "x", "-host", HOST, "-ttl", "10x", NULL },
		{ "-op", "x", "-host", HOST, "-param", "Bad=1", NULL },
		{ "-op", "x", "-host", HOST, "-param", "novalue", NULL },
		{ "-op", "x", "-host", HOST, "-param", "n:int=1.5", NULL },
		{ "-op", "x", "-host", HOST, "-param", "n:float=1", NULL },
		{ "-op", "x", "-host", HOST, "-param", "a=1", "-param", "a=2", NULL },
		{ "-op", "x", "-host", HOST, "-durable-id", "d", "-param", "durable_id=e", NULL },
		{ "-op", "x", "-host", HOST, "-key", "k", "-agent", NULL },
		{ "-op", "x", "-host", HOST, "-key-id", "", NULL },
		{ "-op", "x", "-host", HOST, "-frobnicate", NULL },
		{ "-op", "x", "-host", HOST, "-agent=yes", NULL },
		{ "-op", "x", "-host", HOST, "stray", NULL },
		{ "-op", "x", "-op", "y", "-host", HOST, NULL },
		{ "-op", "x", "-host", NULL },
		{ "verify", NULL },
		{ "verify", "b.json", "-host", HOST, NULL },
		{ "verify", "b.json", "-signers", "s", NULL },
		{ "verify", "b.json", "c.json", "-signers", "s", "-host", HOST, NULL },
		{ "verify", "b.json", "-signers", "s", "-host", HOST, "-now", "soon", NULL },
	};
	struct env e;
	size_t i;

	env_make(&e, g_home, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL, *err = NULL;
		int st = opsign(&e, &out, &err, cases[i]);
		if (st != 2 || !out || *out || count_lines(err) != 1 || strncmp(err, "felhom-opsign: usage: ", 22))
			t_failf(__FILE__, __LINE__, "usage case %zu: exit %d, stderr \"%s\"", i, st, err ? err : "");
		free(out);
		free(err);
	}
}

T_TEST(t_help_and_version)
{
	struct env e;
	char *out = NULL, *err = NULL;

	env_make(&e, g_home, NULL);
	T_EQ_INT(OPSIGN(&e, &out, &err, "--help"), 0);
	T_CHECK(out && !strncmp(out, "usage: felhom-opsign -op OP -host HOST", 38));
	T_CHECK(err && !*err);
	free(out);
	free(err);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "x", "--version"), 0);
	T_CHECK(out && !strncmp(out, "felhom-opsign ", 14) && count_lines(out) == 1);
	free(out);
	free(err);
}

/* A key the agent would not accept as a signer is refused before signing. */
T_TEST(t_unacceptable_key_refused)
{
	char k[600];
	struct env e;
	char *out = NULL, *err = NULL;
	const char *argv[] = { SSH_KEYGEN, "-q", "-t", "rsa", "-b", "1024", "-N", "", "-C", "weak", "-f", k, NULL };

	PATHF(k, "%s/rsa1024", g_dir);
	T_EQ_INT(t_run_cmd(argv, sys_env, NULL, NULL), 0);
	env_make(&e, g_empty_home, NULL);
	T_EQ_INT(OPSIGN(&e, &out, &err, "-op", "x", "-host", "h", "-key", k), 1);
	T_CHECK(out && !*out);
	T_CHECK(err && strstr(err, "would not accept this key") && count_lines(err) == 1);
	free(out);
	free(err);
}

/* ---- setup ---- */

static int setup(void)
{
	char ssh[600], path[600];
	struct stat st;

	if (stat(SSH_KEYGEN, &st) || stat(SSH_AGENT, &st) || stat(SSH_ADD, &st)) {
		printf("FAIL setup\n  openssh-client is missing (make deps)\n");
		return -1;
	}
	PATHF(g_opsign, "%s/felhom-opsign", t_build_dir());
	if (access(g_opsign, X_OK)) {
		printf("FAIL setup\n  %s not built\n", g_opsign);
		return -1;
	}
	t_tmpdir(g_dir, sizeof(g_dir));
	PATHF(g_home, "%s/home", g_dir);
	PATHF(g_empty_home, "%s/empty-home", g_dir);
	PATHF(ssh, "%s/.ssh", g_home);
	if (mkdir(g_home, 0700) || mkdir(g_empty_home, 0700) || mkdir(ssh, 0700))
		return -1;
	PATHF(g_key_home, "%s/id_ed25519", ssh);
	PATHF(g_key_agent, "%s/agent_key", g_dir);
	PATHF(g_key_other, "%s/other_key", g_dir);
	if (keygen(g_key_home, "ops-home") || keygen(g_key_agent, "ops-agent") || keygen(g_key_other, "ops-other"))
		return -1;
	/* sockets live in a short /tmp directory: sun_path holds 108 bytes */
	PATHF(g_sockdir, "/tmp/fh-agent-XXXXXX");
	if (!mkdtemp(g_sockdir)) {
		g_sockdir[0] = '\0';
		return -1;
	}
	PATHF(g_sock, "%s/agent.sock", g_sockdir);
	PATHF(g_empty_sock, "%s/empty.sock", g_sockdir);
	g_agent = agent_start(g_sock);
	g_empty_agent = agent_start(g_empty_sock);
	if (g_agent < 0 || g_empty_agent < 0)
		return -1;
	{
		char env_sock[600];
		const char *envp[] = { "PATH=/usr/bin:/bin", env_sock, NULL };
		const char *argv[] = { SSH_ADD, "-q", g_key_agent, NULL };
		PATHF(env_sock, "SSH_AUTH_SOCK=%s", g_sock);
		if (t_run_cmd(argv, envp, NULL, NULL) != 0)
			return -1;
	}
	/* the agent's key must not also be found as a file */
	PATHF(path, "%s/.ssh/id_ed25519", g_empty_home);
	return stat(path, &st) == 0 ? -1 : 0;
}

static void teardown(void)
{
	char cmd[600];
	const char *argv[] = { "/bin/rm", "-rf", cmd, NULL };

	agent_stop(&g_agent);
	agent_stop(&g_empty_agent);
	if (g_dir[0]) {
		PATHF(cmd, "%s", g_dir);
		t_run_cmd(argv, sys_env, NULL, NULL);
	}
	if (g_sockdir[0]) {
		unlink(g_sock);
		unlink(g_empty_sock);
		rmdir(g_sockdir);
	}
}

int main(void)
{
	if (setup() != 0) {
		teardown();
		printf("FAIL setup\n# passed 0 failed 1\n");
		return 1;
	}
	T_RUN(t_controller_command_agent);
	T_RUN(t_controller_command_home_key);
	T_RUN(t_empty_agent_falls_back);
	T_RUN(t_explicit_options);
	T_RUN(t_key_id_derivation);
	T_RUN(t_print_blob);
	T_RUN(t_verify_subcommand);
	T_RUN(t_usage_errors);
	T_RUN(t_help_and_version);
	T_RUN(t_unacceptable_key_refused);
	teardown();
	return t_done();
}

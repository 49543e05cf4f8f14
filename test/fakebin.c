/* fakebin.c — fake and recording host tools for tests (fakebin.h). */
#include "fakebin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define SYSTEM_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

static bool quotable(const char *s)
{
	return s && !strchr(s, '\'');
}

int fakebin_init(struct fakebin *fb, const char *root)
{
	memset(fb, 0, sizeof(*fb));
	if (!quotable(root) || (size_t)snprintf(fb->bin, sizeof(fb->bin), "%s/bin", root) >= sizeof(fb->bin) ||
	    (size_t)snprintf(fb->fx, sizeof(fb->fx), "%s/fx", root) >= sizeof(fb->fx) ||
	    (size_t)snprintf(fb->rec, sizeof(fb->rec), "%s/record", root) >= sizeof(fb->rec))
		return -1;
	if ((size_t)snprintf(fb->self, sizeof(fb->self), "%s/felhom-agent", fb->bin) >= sizeof(fb->self))
		return -1;
	if ((mkdir(fb->bin, 0755) && errno != EEXIST) || (mkdir(fb->fx, 0755) && errno != EEXIST))
		return -1;
	return 0;
}

int fakebin_script(const struct fakebin *fb, const char *name, const char *body)
{
	char path[400], text[4096];
	int n;

	if (!name || !*name || strchr(name, '/') ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", fb->bin, name) >= sizeof(path))
		return -1;
	n = snprintf(text, sizeof(text),
		     "#!/bin/sh\n"
		     "{ printf '%%s\\n' \"${0##*/}\"; for a in \"$@\"; do printf '%%s\\n' \"$a\"; done; "
		     "printf '%%s\\n' '--'; } >> '%s'\n"
		     "FX='%s'\n"
		     "%s\n",
		     fb->rec, fb->fx, body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	/* replaced, never rewritten in place: a running copy keeps its text */
	unlink(path);
	return t_write_file(path, text, 0755);
}

int fakebin_wrap(const struct fakebin *fb, const char *name, const char *real)
{
	char body[600];

	if (!quotable(real) || real[0] != '/' ||
	    (size_t)snprintf(body, sizeof(body), "PATH='" SYSTEM_PATH "'; export PATH\nexec '%s' \"$@\"", real) >=
		    sizeof(body))
		return -1;
	return fakebin_script(fb, name, body);
}

int fakebin_disk_tools(const struct fakebin *fb)
{
	static const struct {
		const char *name, *body;
	} tools[] = {
		{ "lsblk", "/bin/cat \"$FX/lsblk.json\"" },
		{ "wipefs",
		  "if [ \"$1\" = --no-act ]; then f=\"$FX/wipefs$(printf %s \"$3\" | /usr/bin/tr / _)\"; "
		  "[ -f \"$f\" ] && /bin/cat \"$f\"; exit 0; fi\n"
		  "if [ \"$1\" = -a ]; then s=$(printf %s \"$2\" | /usr/bin/tr / _); "
		  "/bin/rm -f \"$FX/wipefs$s\" \"$FX/blkid$s\" \"$FX/data$s\"; exit 0; fi\nexit 1" },
		{ "blkid", "f=\"$FX/blkid$(printf %s \"$4\" | /usr/bin/tr / _)\"; "
			   "if [ -f \"$f\" ]; then /bin/cat \"$f\"; exit 0; fi; exit 2" },
		/* cmp -s -n LENM -i OFFM:0 DEV /dev/zero: the real cmp over the
		 * device's content fixture (its bytes from offset 0: a range past
		 * its end is exit 1, as on a device); no fixture: all zeros */
		{ "cmp", "[ \"$1 $2 $4 $7\" = \"-s -n -i /dev/zero\" ] || exit 2; "
			 "f=\"$FX/data$(printf %s \"$6\" | /usr/bin/tr / _)\"; [ -f \"$f\" ] || exit 0; "
			 "exec /usr/bin/cmp -s -n \"$3\" -i \"$5\" \"$f\" /dev/zero" },
		{ "mkfs", "s=$(printf %s \"$3\" | /usr/bin/tr / _); u=$(/bin/cat \"$FX/next_uuid\"); "
			  "printf 'TYPE=%s\\nUUID=%s\\nUSAGE=filesystem\\n' \"$2\" \"$u\" > \"$FX/blkid$s\"; "
			  "printf '{\"signatures\":[{\"type\":\"%s\",\"offset\":\"0x438\"}]}' \"$2\" > \"$FX/wipefs$s\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (fakebin_script(fb, tools[i].name, tools[i].body))
			return -1;
	return 0;
}

int fakebin_self(const struct fakebin *fb, const char *body)
{
	return fakebin_script(fb, "felhom-agent", body);
}

static int fx_path(const struct fakebin *fb, const char *name, char *out, size_t n)
{
	if (!name || !*name || strchr(name, '/') || (size_t)snprintf(out, n, "%s/%s", fb->fx, name) >= n)
		return -1;
	return 0;
}

int fakebin_fx_write(const struct fakebin *fb, const char *name, const char *text)
{
	char path[400];

	if (fx_path(fb, name, path, sizeof(path)))
		return -1;
	return t_write_file(path, text, 0644);
}

void fakebin_fx_rm(const struct fakebin *fb, const char *name)
{
	char path[400];

	if (!fx_path(fb, name, path, sizeof(path)))
		unlink(path);
}

bool fakebin_fx_exists(const struct fakebin *fb, const char *name)
{
	char path[400];

	return !fx_path(fb, name, path, sizeof(path)) && access(path, F_OK) == 0;
}

char *fakebin_log(const struct fakebin *fb)
{
	char *s = t_slurp(fb->rec, NULL);

	if (!s)
		s = calloc(1, 1);
	return s;
}

void fakebin_clear(const struct fakebin *fb)
{
	unlink(fb->rec);
}

bool fakebin_log_absent(const struct fakebin *fb)
{
	return access(fb->rec, F_OK) != 0 && errno == ENOENT;
}

size_t fakebin_count(const struct fakebin *fb, const char *needle)
{
	char *s = fakebin_log(fb);
	const char *p = s;
	size_t n = 0;

	if (!s || !*needle) {
		free(s);
		return 0;
	}
	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p++;
	}
	free(s);
	return n;
}

/* Records are split at "--" lines (a tool given a "--" argument shows as
 * two pieces; only the first starts with its name). */
char *fakebin_select(const struct fakebin *fb, const char *const prefixes[])
{
	char *s = fakebin_log(fb), *out;
	const char *p, *end;
	size_t o = 0, i;

	if (!s)
		return NULL;
	out = malloc(strlen(s) + 1);
	if (!out) {
		free(s);
		return NULL;
	}
	for (p = s; *p; p = end) {
		const char *term = strstr(p, "\n--\n");
		bool take = false;

		end = term ? term + 4 : p + strlen(p);
		for (i = 0; prefixes[i] && !take; i++)
			take = !strncmp(p, prefixes[i], strlen(prefixes[i]));
		if (take) {
			memcpy(out + o, p, (size_t)(end - p));
			o += (size_t)(end - p);
		}
	}
	out[o] = '\0';
	free(s);
	return out;
}

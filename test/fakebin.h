/* fakebin.h — fake (and recording) host tools for tests of the privileged
 * backend (priv.h, mode direct).
 *
 *   struct fakebin fb;
 *   fakebin_init(&fb, dir);                 // dir/bin, dir/fx, dir/record
 *   fakebin_disk_tools(&fb);                // lsblk wipefs blkid cmp mkfs
 *   fakebin_fx_write(&fb, "lsblk.json", "{\"blockdevices\":[...]}");
 *   ... run the code under test with priv_opts.path = fb.bin ...
 *   T_EQ_INT(fakebin_count(&fb, "wipefs\n-a\n"), 0);
 *
 * Every tool is a #!/bin/sh script in fb.bin that first appends its name
 * and arguments, one per line, then a line "--", to fb.rec; then runs its
 * body with FX set to the fixture directory. Every path is baked into the
 * script text (the backend passes no environment but PATH and LC_ALL), so
 * paths must not contain a single quote.
 *
 * The disk tools (fakebin_disk_tools) answer from per-device fixtures in
 * fb.fx, named TOOL + the device path with '/' as '_' ("blkid_dev_sdd"):
 *   lsblk              prints fx/lsblk.json
 *   wipefs --no-act    prints fx/wipefs_DEV (absent: nothing found)
 *   wipefs -a DEV      removes fx/{wipefs,blkid,data}_DEV
 *   blkid -p ... DEV   prints fx/blkid_DEV, else exits 2 (nothing found)
 *   cmp -s -n LENM -i OFFM:0 DEV /dev/zero
 *                      the real /usr/bin/cmp with fx/data_DEV standing for
 *                      the device's content (so a range past its end is
 *                      exit 1, "not zero"); no fixture: exit 0 (all zeros);
 *                      any other argv: exit 2
 *   mkfs -t T DEV      writes the blkid/wipefs fixtures of a new T
 *                      filesystem whose UUID is fx/next_uuid
 *
 * fakebin_wrap makes a recording wrapper around a real tool instead: the
 * argv is recorded, then the real program runs with the system PATH.
 *
 * fakebin_self writes fb.self (fb.bin/felhom-agent), a stand-in for the
 * agent's own binary (priv_opts.self_path) that records
 * "felhom-agent\n--mount-unit\nadd\n..." like any tool.
 *
 * Every script is unlinked before it is written, so a name that is a
 * symbolic link (to a real system binary, say) is replaced, never written
 * through.
 */
#ifndef FH_TEST_FAKEBIN_H
#define FH_TEST_FAKEBIN_H

#include <stdbool.h>
#include <stddef.h>

struct fakebin {
	char bin[300];          /* the tools; the backend's only PATH entry */
	char fx[300];           /* fixtures */
	char rec[300];          /* the argv record */
	char self[320];         /* bin/felhom-agent (fakebin_self) */
};

/* Makes root/bin and root/fx (root must exist). 0 or -1. */
int fakebin_init(struct fakebin *fb, const char *root);
/* Writes the tool `name` running body (NULL: only record). 0 or -1. */
int fakebin_script(const struct fakebin *fb, const char *name, const char *body);
/* A recording wrapper that execs the absolute path real. 0 or -1. */
int fakebin_wrap(const struct fakebin *fb, const char *name, const char *real);
/* The five fake disk tools described above. 0 or -1. */
int fakebin_disk_tools(const struct fakebin *fb);
/* Writes fb->self running body (NULL: only record, exit 0). 0 or -1. */
int fakebin_self(const struct fakebin *fb, const char *body);

/* Fixture files in fb->fx. */
int fakebin_fx_write(const struct fakebin *fb, const char *name, const char *text);
void fakebin_fx_rm(const struct fakebin *fb, const char *name);
bool fakebin_fx_exists(const struct fakebin *fb, const char *name);

/* The record so far (malloc'd, "" when nothing ran; NULL only on ENOMEM). */
char *fakebin_log(const struct fakebin *fb);
/* Forgets the record. */
void fakebin_clear(const struct fakebin *fb);
/* True when nothing ran since the last clear. */
bool fakebin_log_absent(const struct fakebin *fb);
/* Occurrences of needle in the record ("wipefs\n-a\n": wipes run). */
size_t fakebin_count(const struct fakebin *fb, const char *needle);
/* The records (each "NAME\nARG...\n--\n") that start with one of
 * prefixes[] (NULL-terminated), in the order they ran, concatenated
 * (malloc'd; "" when none). */
char *fakebin_select(const struct fakebin *fb, const char *const prefixes[]);

#endif

/* gate.h — the reversibility gate (SPEC §7): the classifier, role scoping,
 * action binding and the decision every mutation passes before the
 * executor (recon.h) may touch Proxmox.
 *
 * An action is what the executor would do: an op name, this host, a guest
 * (or none), and its params, in the op blob's own shapes (opblob.h), so a
 * signature is bound to an action by comparing canonical bytes.
 *
 * Classifier — benign or destructive by provenance and data-bearingness,
 * never by verb alone:
 *
 *   op                 benign when                              else
 *   start, snapshot,   always                                    -
 *   vzdump
 *   stop, shutdown     the guest was created by an agent job     destructive
 *                      (journal: JRNL_F_CREATES_GUEST), or it is (the agent
 *                      an agent-tagged scratch guest             never stops a
 *                                                                guest it did
 *                                                                not create
 *                                                                unsigned)
 *   set_config         every key set or deleted is one of        destructive
 *                      GATE_CONFIG_BENIGN_KEYS (cores, memory,   (disks, mount
 *                      swap, cpulimit, cpuunits, description,    points, unused
 *                      onboot, tags, hostname, startup)          volumes: data)
 *   restore            force is absent/false (Proxmox refuses    destructive,
 *                      to overwrite an existing guest then), or  unless the
 *                      the guest was created in the same job     provenance
 *   destroy            the guest was created in the same         destructive
 *                      journaled job, or it is an agent-tagged
 *                      scratch guest of a restore test
 *   rollback,          the snapshot (param "name") was created   destructive
 *   delete_snapshot    in the same journaled job
 *   backup_prune       the job is the engine's own backup        destructive
 *                      retention (source JRNL_SRC_BACKUP, whose
 *                      policy comes from the local config only)
 *   storage_wipe,      never                                     destructive
 *   disk_shrink,
 *   signer_rotate
 *   anything else      never (unknown ops fail safe)             destructive
 *
 * Golden archives (gate_opts.golden_archives): an action any of whose
 * string params equals a golden volid is destructive whatever its source
 * and provenance, except a restore without force (which only reads the
 * archive into a new guest).
 *
 * Provenance (struct gate_prov) is established by the caller from the
 * journal (jrnl.h) and the engine's own knowledge of the job it runs, and
 * only from there: nothing the hub sends — params, tags, "scratch" flags,
 * job ids, sources — is ever read by the classifier.
 *
 * Decision (gate_decide, pure):
 *   - with a verified signature (whatever the class): the signer's role must
 *     allow the op (recovery: signer_rotate only; operational: anything)
 *     -> else rejected/role_denied; the signed op, host, guest and params
 *     must equal the action's -> else rejected/binding_mismatch; then
 *     allowed;
 *   - without a signature: benign -> allowed; destructive ->
 *     pending_signature (never executed).
 * Recording (gate_record, inside the caller's LMDB write transaction):
 * a verified signature's nonce is burnt even when the decision rejects it
 * (role_denied, binding_mismatch); a nonce seen before turns the decision
 * into rejected/replay. The caller writes the decision (audit, idempotency
 * key, journal intent) in the same transaction.
 *
 * Signers: the effective set is the configured signers (authz.signers,
 * authz.signers_file) with the rotation kept in LMDB applied on top
 * (signer lines added, keys removed by fingerprint). A `signer_rotate` op
 * has params "add" (signer lines, '\n'-separated; may be absent) and
 * "remove" (key fingerprints "SHA256:<base64 without padding>",
 * ','-separated; may be absent); a rotation that would leave no
 * operational signer is refused (FH_ERR_GATE_LAST_SIGNER). The rotation
 * record is one text value in the store ("+LINE" / "-FINGERPRINT" lines,
 * at most GATE_ROTATION_MAX_BYTES) under the key "signers" of
 * STORE_DB_GATE. A state directory of an earlier version kept it under
 * "gate_signers" in STORE_DB_SEQ: gate_new moves it over in one
 * transaction (when STORE_DB_GATE has none) and drops the old key.
 */
#ifndef FH_GATE_H
#define FH_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opblob.h"
#include "sig.h"
#include "task.h"

struct store;
struct store_txn;

#define GATE_CONFIG_BENIGN_KEYS \
	"cores", "memory", "swap", "cpulimit", "cpuunits", "description", "onboot", "tags", "hostname", "startup"
#define GATE_ROTATION_MAX_BYTES ((size_t)256 * 1024)   /* the stored rotation record */
#define GATE_ROTATION_MAX_LINES 256                      /* lines added, keys removed */
#define GATE_GOLDEN_MAX 4096                             /* golden archive volids */

/* What the executor would do. op, host_id, has_guest, guest_id, nparams and
 * params have the op blob's rules (opblob_validate); the other members of
 * .b (key_id, nonce, times, v) are ignored by the gate. */
struct gate_action {
	struct opblob b;
};

/* Builds an action: op, host, guest (0 = host-scoped), no params.
 * FH_ERR_INVAL when op or host is not valid in a blob. */
int gate_action_init(struct gate_action *a, const char *op, const char *host_id, int64_t guest);
/* Adds a string / integer / boolean param, kept sorted by key.
 * FH_ERR_INVAL (bad key, duplicate, value too long), FH_ERR_TOOBIG (more
 * than OPBLOB_MAX_PARAMS). */
int gate_action_str(struct gate_action *a, const char *key, const char *v);
int gate_action_int(struct gate_action *a, const char *key, int64_t v);
int gate_action_bool(struct gate_action *a, const char *key, bool v);
int gate_action_null(struct gate_action *a, const char *key);
/* The param named key, or NULL. */
const struct opblob_param *gate_action_param(const struct gate_action *a, const char *key);
/* The action of a verified op: its op, host, guest and params. */
void gate_action_from_blob(struct gate_action *a, const struct opblob *b);

/* Facts from the journal and the engine, never from the hub. */
struct gate_prov {
	bool created_in_job;     /* the guest was created (restore/create) earlier in this same journaled job */
	bool scratch;            /* the guest is an agent-tagged scratch guest of a restore test (journaled) */
	bool own_snapshot;       /* the snapshot in param "name" was made earlier in this same job */
	bool created_by_agent;   /* the guest was created by an agent job, any job (jrnl_provenance) */
	bool retention;          /* the job is the engine's own backup retention (source JRNL_SRC_BACKUP) */
	bool golden;             /* a string param names a golden archive (gate_names_golden) */
};

enum gate_class { GATE_BENIGN = 1, GATE_DESTRUCTIVE = 2 };
/* "benign" / "destructive". */
const char *gate_class_name(enum gate_class c);

/* Classifies a (by the table above). *why gets a static one-line reason.
 * p may be NULL (no provenance). Never fails for a well-formed action;
 * FH_ERR_INVAL for NULL arguments. */
int gate_classify(const struct gate_action *a, const struct gate_prov *p, enum gate_class *out,
		  const char **why);
/* True for ops the table knows (unknown ops are destructive). */
bool gate_op_known(const char *op);

struct gate_decision {
	enum gate_class cls;
	bool allowed;                /* go ahead and execute */
	enum task_outcome outcome;   /* not allowed: PENDING_SIGNATURE or REJECTED;
					allowed: NONE (the executor decides) */
	int reason;                  /* REJECTED: the typed rejection (FH_ERR_SIG_*) */
	bool is_signed;              /* a verified signature came with the action */
	enum sig_role role;          /* is_signed: the signer's role */
	char signer[SIG_KEY_ID_MAX + 1]; /* is_signed: its KEY_ID from the signer set */
	char why[160];               /* one line, for the audit log and op-results */
};

/* The decision for action a with provenance p (may be NULL) and a verified
 * signature vd (NULL: unsigned). Pure: no I/O, the nonce is not looked at.
 * Always 0 (FH_ERR_INVAL for NULL a/out); *out filled. */
int gate_decide(const struct gate_action *a, const struct gate_prov *p, const struct sig_verified *vd,
		struct gate_decision *out);

/* Inside the caller's write transaction t: for a signed decision (vd not
 * NULL), records the nonce (sig_record) — also when d rejects it; a nonce
 * used before changes d to rejected/replay (allowed = false). Unsigned
 * decisions record nothing. 0, or the transaction's sticky error
 * (FH_ERR_STORE, FH_ERR_STORE_FULL: the caller aborts and fails safe). */
int gate_record(struct store_txn *t, const struct sig_verified *vd, struct gate_decision *d);

/* ---- the signer set -------------------------------------------------- */

struct gate;

struct gate_opts {
	struct store *st;            /* the agent's LMDB environment (rotation record) */
	const char *const *signers;  /* authz.signers lines (may be NULL) */
	size_t nsigners;
	const char *signers_file;    /* authz.signers_file (NULL/"" = none) */
	const char *host_id;         /* hub.host_id: required */
	int64_t max_lifetime_seconds;
	int64_t clock_skew_seconds;
	const char *const *golden_archives;  /* backup.golden_archives volids (may be NULL) */
	size_t ngolden;              /* at most GATE_GOLDEN_MAX */
};

/* Builds the effective signer set (config + the stored rotation) and its
 * verifier. Zero signers is allowed (every signature is then
 * unknown_signer, every destructive action pending_signature). Moves a
 * rotation record of an earlier version's state directory (see the top).
 * FH_ERR_CONFIG (a bad signer line or golden volid; err names it),
 * FH_ERR_IO, FH_ERR_STORE, FH_ERR_DECODE (a stored record does not read),
 * FH_ERR_NOMEM. *out (gate_free) only on success. */
int gate_new(const struct gate_opts *o, struct gate **out, char *err, size_t errlen);
void gate_free(struct gate *g);
/* Signers in the effective set; of which operational. */
size_t gate_nsigners(struct gate *g);
size_t gate_noperational(struct gate *g);
const char *gate_host_id(const struct gate *g);
/* True when a string param of a equals a golden archive volid (whatever
 * the op: gate_classify exempts a restore without force). Thread-safe
 * (the list does not change after gate_new). */
bool gate_names_golden(const struct gate *g, const struct gate_action *a);
size_t gate_ngolden(const struct gate *g);

/* sig_check (stages 1-8) against the effective set. Thread-safe (a
 * rotation swaps the verifier under a lock). Errors as sig_check. */
int gate_check(struct gate *g, const uint8_t *blob, size_t bloblen, const char *armor, size_t armorlen,
	       int64_t now, struct sig_verified *out, char *why, size_t whylen);

/* Applies a signer_rotate action inside t: the new rotation record is
 * written in t, and the verifier is swapped when gate_rotate_commit is
 * called after t committed. FH_ERR_INVAL (bad params: why says which),
 * FH_ERR_CONFIG (an added line is not a valid signer, or duplicates one),
 * FH_ERR_NOT_FOUND (a fingerprint to remove is not in the set),
 * FH_ERR_GATE_LAST_SIGNER (no operational signer would be left), store
 * errors. Nothing changes on error. */
int gate_rotate(struct gate *g, struct store_txn *t, const struct gate_action *a, char *why, size_t whylen);
/* After the transaction of gate_rotate committed: re-reads the record and
 * rebuilds the verifier. 0 or the errors of gate_new. */
int gate_reload(struct gate *g, char *err, size_t errlen);

/* "SHA256:<base64, no padding>" of a signer line's key blob (what
 * ssh-keygen -l prints). FH_ERR_CONFIG for a line that does not parse. */
int gate_fingerprint(const char *signer_line, char *out, size_t outlen);

#endif

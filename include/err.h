/* err.h — the project's one error space.
 *
 * Every function that can fail returns int: 0 (FH_OK) or one of the negative
 * codes below. Each code has exactly one stable name (fh_strerror), used in
 * logs, CLI output and tests; names are a contract and are never renamed.
 * Codes are append-only.
 */
#ifndef FH_ERR_H
#define FH_ERR_H

enum fh_err {
	FH_OK = 0,
	FH_ERR_INTERNAL = -1,      /* "internal": a bug or impossible state */
	FH_ERR_NOMEM = -2,         /* "nomem" */
	FH_ERR_INVAL = -3,         /* "invalid_argument": caller passed bad input */
	FH_ERR_CONFIG = -4,        /* "config": configuration invalid */
	FH_ERR_IO = -5,            /* "io": local file or descriptor error */
	FH_ERR_TOOBIG = -6,        /* "too_big": input over its cap */
	FH_ERR_DECODE = -7,        /* "decode": peer sent bytes we cannot decode */
	FH_ERR_TRANSPORT = -8,     /* "transport": connect, DNS, reset, EOF */
	FH_ERR_TLS = -9,           /* "tls": handshake or certificate verification */
	FH_ERR_TLS_PIN = -10,      /* "tls_pin_mismatch": leaf digest is not the pin */
	FH_ERR_HTTP_401 = -11,     /* "http_unauthorized" */
	FH_ERR_HTTP_403 = -12,     /* "http_forbidden" (privilege named when known) */
	FH_ERR_HTTP_4XX = -13,     /* "http_client_error": other 4xx (400 param check) */
	FH_ERR_HTTP_501 = -14,     /* "http_not_implemented": unknown path */
	FH_ERR_HTTP_5XX = -15,     /* "http_server_error": 500-504 and others */
	FH_ERR_HTTP_PROXY = -16,   /* "http_proxy_error": 595-599 forwarding errors */
	FH_ERR_TASK = -17,         /* "task_failed": exit status not OK/WARNINGS */
	FH_ERR_TIMEOUT = -18,      /* "timeout" */
	FH_ERR_CANCELLED = -19,    /* "cancelled" */
	FH_ERR_UPID = -20,         /* "upid_malformed" */
	FH_ERR_SPAWN = -21,        /* "spawn_failed": a program could not be started */
	FH_ERR_EXIT = -22,         /* "exit_status": a program exited non-zero */
	FH_ERR_USAGE = -23,        /* "usage": command-line misuse */
	FH_ERR_NOT_FOUND = -24,    /* "not_found" */
	/* Typed rejections of the signed-operation pipeline (SPEC §5, §7). */
	FH_ERR_SIG_MALFORMED = -25,      /* "malformed" */
	FH_ERR_SIG_NAMESPACE = -26,      /* "namespace" */
	FH_ERR_SIG_UNKNOWN_SIGNER = -27, /* "unknown_signer" */
	FH_ERR_SIG_BAD_SIGNATURE = -28,  /* "bad_signature" */
	FH_ERR_SIG_TARGET = -29,         /* "target" */
	FH_ERR_SIG_EXPIRED = -30,        /* "expired" */
	FH_ERR_SIG_NOT_YET_VALID = -31,  /* "not_yet_valid" */
	FH_ERR_SIG_REPLAY = -32,         /* "replay" */
	FH_ERR_SIG_ROLE_DENIED = -33,    /* "role_denied" (gate) */
	FH_ERR_SIG_BINDING = -34,        /* "binding_mismatch" (gate) */
	FH_ERR_STORE = -35,              /* "store_failed": LMDB error (fail safe) */
	FH_ERR_STORE_FULL = -36,         /* "store_full": map full after growth */
	FH_ERR_HUB_PARKED = -37,         /* "hub_parked": hub refused our key (401/403) */
	FH_ERR_TASK_EVENT = -38,         /* "invalid_task_event": event not allowed in the task's state */
	FH_ERR_DUPLICATE = -39,          /* "duplicate": idempotency key already recorded */
	/* The reconcile engine and the gate (SPEC §7). */
	FH_ERR_QUEUE_FULL = -40,         /* "queue_full": serializer queue at its cap (refused, not blocked) */
	FH_ERR_BLOCKED = -41,            /* "blocked": the hub blocked every mutation */
	FH_ERR_UNSUPPORTED = -42,        /* "unsupported_op": the executor has no such op */
	FH_ERR_GATE_LAST_SIGNER = -43,   /* "last_operational_signer": rotation would leave none */
	FH_ERR_PENDING_SIGNATURE = -44,  /* "pending_signature": destructive and unsigned */
	FH_ERR_LOCKED = -45,             /* "state_locked": another process runs the engine on this state */
	FH_ERR_INTERRUPTED = -46,       /* "interrupted": a host-executed op was cut off by a crash (never re-run) */
	FH_ERR__LAST = -47
};

/* Stable name of a code; "unknown_error" for anything outside the enum.
 * Returns a static string. */
const char *fh_strerror(int code);

#endif

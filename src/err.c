/* err.c — stable names of the project's error codes. */
#include "err.h"

static const char *const names[] = {
	"ok",
	"internal",
	"nomem",
	"invalid_argument",
	"config",
	"io",
	"too_big",
	"decode",
	"transport",
	"tls",
	"tls_pin_mismatch",
	"http_unauthorized",
	"http_forbidden",
	"http_client_error",
	"http_not_implemented",
	"http_server_error",
	"http_proxy_error",
	"task_failed",
	"timeout",
	"cancelled",
	"upid_malformed",
	"spawn_failed",
	"exit_status",
	"usage",
	"not_found",
	"malformed",
	"namespace",
	"unknown_signer",
	"bad_signature",
	"target",
	"expired",
	"not_yet_valid",
	"replay",
	"role_denied",
	"binding_mismatch",
	"store_failed",
	"store_full",
	"hub_parked",
	"invalid_task_event",
	"duplicate",
	"queue_full",
	"blocked",
	"unsupported_op",
	"last_operational_signer",
	"pending_signature",
	"state_locked",
	"interrupted",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == (unsigned)-FH_ERR__LAST,
	       "every error code has a name");

const char *fh_strerror(int code)
{
	if (code > 0 || code <= FH_ERR__LAST)
		return "unknown_error";
	return names[-code];
}

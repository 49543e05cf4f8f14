/* fuzz_envelope.c — libFuzzer target for the hub's response envelope
 * decoder (hub_parse_envelope): bytes from the hub, bounded, typed. Built
 * by `make fuzz`; make check replays vectors/fuzz/envelope/ through
 * build/test_fuzz_envelope. Invariants checked on every input: a success
 * leaves a consistent envelope (members absent are zero), a failure leaves
 * the output untouched, and the adopted interval is always within its
 * clamp. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_envelope e, before;
	char why[128];
	int64_t iv;
	int r;

	memset(&e, 0x5a, sizeof(e));
	before = e;
	r = hub_parse_envelope((const char *)data, size, 4096, &e, why, sizeof(why));
	if (r) {
		if (r != FH_ERR_DECODE && r != FH_ERR_TOOBIG && r != FH_ERR_NOMEM)
			abort();
		if (memcmp(&e, &before, sizeof(e)))
			abort();   /* outputs only on success */
		if (!memchr(why, '\0', sizeof(why)))
			abort();
		return 0;
	}
	if ((!e.poll_interval_set && e.poll_interval_seconds) || (!e.blocked_set && e.blocked) ||
	    (!e.desired_generation_set && e.desired_generation) || (!e.signed_ops_set && e.has_signed_ops))
		abort();
	if (e.desired_generation < 0)
		abort();
	iv = hub_clamp_interval(e.poll_interval_seconds, HUB_INTERVAL_MIN, HUB_INTERVAL_MAX);
	if (iv < HUB_INTERVAL_MIN || iv > HUB_INTERVAL_MAX)
		abort();
	return 0;
}

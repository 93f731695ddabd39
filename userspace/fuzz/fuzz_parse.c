/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the agent's message parser (hl_req_parse), the code
 * that sees every byte a client sends. Run: make fuzz FUZZ_SECONDS=600
 */
#include "common/proto.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_req r;
	char err[256];
	int rc;

	rc = hl_req_parse((const char *)data, size, &r, err, sizeof(err));
	if (rc == 0) {
		/* Touch every extracted field: they must be valid C strings. */
		size_t n = 0;

		if (r.session)
			n += strlen(r.session);
		if (r.label)
			n += strlen(r.label);
		if (r.reason)
			n += strlen(r.reason);
		if (r.kernel)
			n += strlen(r.kernel);
		if (r.initrd)
			n += strlen(r.initrd);
		if (r.cmdline)
			n += strlen(r.cmdline);
		if (r.client)
			n += strlen(r.client);
		if (r.op <= HL_OP_UNKNOWN || r.op >= HL_OP__COUNT || n > (size_t)-1 / 2)
			abort();
		/* The reply path must be able to encode anything we accepted. */
		struct json_object *o = hl_reply_err(r.id, EINVAL, "%s %s", hl_op_name(r.op), r.session ? r.session : "");
		size_t len;
		char *s = hl_json_dump(o, &len);

		free(s);
		json_object_put(o);
		hl_req_free(&r);
	} else if (r.root) {
		abort(); /* failed parses must not leak the tree */
	} else if (!err[0]) {
		abort(); /* every rejection carries a message */
	}
	return 0;
}

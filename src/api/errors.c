/*
 * errors.c - names and descriptions of muxado codes and errno values.
 *
 * The muxado codes' table is the wire layer's (wire/codes.c), shared with
 * the frame text of muxdump and the tracer; errno values are libc's.
 */
#include <string.h>

#include "wire/codes.h"
#include "muxring.h"

const char *muxring_code_name(uint32_t code)
{
	return mr_code_name(code);
}

const char *muxring_strerror(int err)
{
	if (muxring_is_code(err))
		return mr_code_meaning(muxring_err_code(err));
	return strerror(-err);
}

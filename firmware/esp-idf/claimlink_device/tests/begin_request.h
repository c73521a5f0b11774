/*
 * One committing aws-claim Begin for a whole bundle, with its right SHA-256: what the tests and the
 * fuzz target send to reach the bundle's check.
 */
#ifndef CL_BEGIN_REQUEST_H
#define CL_BEGIN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/** The packed AwsClaimPayload (malloc'd, *out_len bytes): CmdClaimBegin with total_length, the
 *  bundle's SHA-256, the bundle as data, and commit. NULL when out of memory. */
uint8_t *claim_begin_request(const uint8_t *bundle, size_t len, size_t *out_len);

#endif

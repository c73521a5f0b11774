/*
 * The vector claim (proto/vectors/claim.json's bundle: the fixture certificate, its RSA key as
 * primes, template claimlink-fleet, SerialNumber SN-0001) and helpers to hand it to a device.
 */
#ifndef CL_CLAIM_FIXTURE_H
#define CL_CLAIM_FIXTURE_H

#include "claimlink_device.h"

#include <stddef.h>
#include <stdint.h>

/** The vector bundle, with seconds_left / expires_at_epoch replaced when not 0 (malloc'd). */
uint8_t *fixture_bundle(size_t *len, uint32_t seconds_left, uint64_t expires_at_epoch);
/** Sends `bundle` as one Begin that commits; returns the answer's ClaimTransferError (-1: failed). */
int fixture_send(cl_device_t *dev, const uint8_t *bundle, size_t len);
/** Commits the vector bundle (seconds_left as given, 0 = the vector's). */
int fixture_commit(cl_device_t *dev, uint32_t seconds_left);
/** Sends an aws-status request and decodes the answer's fields into the arguments (any may be NULL;
 *  strings are copied into 256-byte buffers). Returns the stage, or -1. */
int fixture_status(cl_device_t *dev, int *failure, uint32_t *status_code, char *error_code,
                   char *error_message, char *thing_name, char *certificate_id);
/** The fixture files (proto/vectors/fixture/claim-cert.pem, claim-key.pem), malloc'd text. */
char *fixture_file(const char *name);

#endif

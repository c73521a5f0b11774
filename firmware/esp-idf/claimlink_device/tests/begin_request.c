/* One committing Begin for a whole bundle (begin_request.h). */
#include "begin_request.h"

#include <stdlib.h>

#include <mbedtls/sha256.h>

#include "cl_internal.h"
#include "claimlink_aws.pb-c.h"

uint8_t *claim_begin_request(const uint8_t *bundle, size_t len, size_t *out_len)
{
    AwsClaimPayload req = AWS_CLAIM_PAYLOAD__INIT;
    CmdClaimBegin begin = CMD_CLAIM_BEGIN__INIT;
    uint8_t digest[32];
#if CL_MBEDTLS3
    mbedtls_sha256(bundle, len, digest, 0);
#else
    mbedtls_sha256_ret(bundle, len, digest, 0);
#endif
    begin.total_length = (uint32_t)len;
    begin.sha256 = (ProtobufCBinaryData){32, digest};
    begin.data = (ProtobufCBinaryData){len, (uint8_t *)bundle};
    begin.commit = 1;
    req.msg = AWS_CLAIM_MSG_TYPE__TypeCmdBegin;
    req.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_BEGIN;
    req.cmd_begin = &begin;
    *out_len = aws_claim_payload__get_packed_size(&req);
    uint8_t *packed = malloc(*out_len == 0 ? 1 : *out_len);
    if (packed != NULL) {
        aws_claim_payload__pack(&req, packed);
    }
    return packed;
}

/*
 * The aws-claim endpoint (docs/protocol.md section 5.3): Begin, Chunk, Commit, Abort.
 *
 * The transfer goes into one buffer of total_length bytes (at most max_bundle_length), allocated at
 * Begin; a commit that passes every check makes that buffer the held claim, and any failure wipes
 * it. Refusals are answers (status InvalidArgument and the ClaimTransferError); a request that does
 * not decode, an unknown msg or a payload that does not match msg fails the handler and changes
 * nothing.
 */
#include "cl_internal.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <mbedtls/platform_util.h>

#if CL_MBEDTLS3
#define CL_SHA256(in, len, out) mbedtls_sha256((in), (len), (out), 0)
#else
#define CL_SHA256(in, len, out) mbedtls_sha256_ret((in), (len), (out), 0)
#endif

static void wipe_transfer(cl_device_t *dev)
{
    cl_buf_wipe(&dev->rx);
    dev->rx_active = false;
    dev->rx_total = 0;
    mbedtls_platform_zeroize(dev->rx_sha256, sizeof dev->rx_sha256);
}

static void wipe_held(cl_device_t *dev)
{
    cl_buf_wipe(&dev->claim);
    dev->claim_committed_ms = 0;
}

void cl_claim_wipe_all(cl_device_t *dev)
{
    wipe_transfer(dev);
    wipe_held(dev);
}

/* Checks and keeps the transfer (section 5.3 step 3); any failure wipes it. */
static ClaimTransferError commit(cl_device_t *dev)
{
    if (!dev->rx_active) {
        return CLAIM_TRANSFER_ERROR__NotStarted;
    }
    ClaimTransferError error = CLAIM_TRANSFER_ERROR__None;
    uint8_t digest[32];
    if (dev->rx.len != dev->rx_total) {
        error = CLAIM_TRANSFER_ERROR__Incomplete;
    } else if (CL_SHA256(dev->rx.data, dev->rx.len, digest) != 0
               || memcmp(digest, dev->rx_sha256, 32) != 0) {
        error = CLAIM_TRANSFER_ERROR__DigestMismatch;
    } else if (!cl_bundle_valid(dev, dev->rx.data, dev->rx.len)) {
        error = CLAIM_TRANSFER_ERROR__BundleInvalid;
    }
    if (error != CLAIM_TRANSFER_ERROR__None) {
        cl_log(dev, CL_LOG_WARN, "claim refused at commit (error %d): wiped", (int)error);
        wipe_transfer(dev);
        return error;
    }
    wipe_held(dev);
    dev->claim = dev->rx; /* the buffer moves: the claim is held in it */
    dev->rx.data = NULL;
    dev->rx.len = 0;
    wipe_transfer(dev);
    dev->claim_committed_ms = dev->ports.monotonic_ms(dev->ports.ctx);
    dev->claim_gen = dev->claim_gen + 1 == 0 ? 1 : dev->claim_gen + 1;
    cl_log(dev, CL_LOG_INFO, "claim committed (%u bytes)", (unsigned)dev->claim.len);
    return CLAIM_TRANSFER_ERROR__None;
}

static ClaimTransferError begin(cl_device_t *dev, const CmdClaimBegin *cmd)
{
    wipe_held(dev); /* a Begin discards any claim held, whatever follows */
    wipe_transfer(dev);
    if (cmd->total_length > dev->cfg.max_bundle_length || cmd->data.len > cmd->total_length) {
        cl_log(dev, CL_LOG_WARN, "claim of %u bytes refused: too large", (unsigned)cmd->total_length);
        return CLAIM_TRANSFER_ERROR__TooLarge;
    }
    if (cmd->sha256.len != 32) {
        return CLAIM_TRANSFER_ERROR__BundleInvalid;
    }
    dev->rx.data = cl_alloc(cmd->total_length == 0 ? 1 : cmd->total_length);
    if (dev->rx.data == NULL) {
        return CLAIM_TRANSFER_ERROR__TooLarge;
    }
    if (cmd->data.len > 0) {
        memcpy(dev->rx.data, cmd->data.data, cmd->data.len);
    }
    dev->rx.len = cmd->data.len;
    dev->rx_total = cmd->total_length;
    memcpy(dev->rx_sha256, cmd->sha256.data, 32);
    dev->rx_active = true;
    return cmd->commit ? commit(dev) : CLAIM_TRANSFER_ERROR__None;
}

static ClaimTransferError chunk(cl_device_t *dev, const CmdClaimChunk *cmd)
{
    if (!dev->rx_active) {
        return CLAIM_TRANSFER_ERROR__NotStarted;
    }
    if (cmd->offset != dev->rx.len) {
        return CLAIM_TRANSFER_ERROR__OutOfOrder;
    }
    if (cmd->data.len > dev->rx_total - dev->rx.len) {
        return CLAIM_TRANSFER_ERROR__TooLarge;
    }
    if (cmd->data.len > 0) {
        memcpy(dev->rx.data + dev->rx.len, cmd->data.data, cmd->data.len);
    }
    dev->rx.len += cmd->data.len;
    return cmd->commit ? commit(dev) : CLAIM_TRANSFER_ERROR__None;
}

/* What `received` says after a step: the whole bundle once committed, else what the transfer holds. */
static uint32_t received(const cl_device_t *dev, bool committed, uint32_t total)
{
    return committed ? total : (dev->rx_active ? (uint32_t)dev->rx.len : 0);
}

static int pack(const AwsClaimPayload *answer, uint8_t **out, size_t *out_len)
{
    size_t n = aws_claim_payload__get_packed_size(answer);
    *out = malloc(n == 0 ? 1 : n);
    if (*out == NULL) {
        return -1;
    }
    *out_len = aws_claim_payload__pack(answer, *out);
    return 0;
}

int cl_claim_handle(cl_device_t *dev, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    AwsClaimPayload *req = aws_claim_payload__unpack(&cl_pb_allocator, in_len, in);
    if (req == NULL) {
        cl_log(dev, CL_LOG_WARN, "aws-claim: a request that does not decode");
        return -1;
    }
    AwsClaimPayload answer = AWS_CLAIM_PAYLOAD__INIT;
    RespClaimBegin resp_begin = RESP_CLAIM_BEGIN__INIT;
    RespClaimChunk resp_chunk = RESP_CLAIM_CHUNK__INIT;
    RespClaimAbort resp_abort = RESP_CLAIM_ABORT__INIT;
    ClaimTransferError error = CLAIM_TRANSFER_ERROR__None;
    int rc = 0;
    if (req->msg == AWS_CLAIM_MSG_TYPE__TypeCmdBegin
        && req->payload_case == AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_BEGIN) {
        uint32_t total = req->cmd_begin->total_length;
        error = begin(dev, req->cmd_begin);
        bool committed = error == CLAIM_TRANSFER_ERROR__None && req->cmd_begin->commit;
        resp_begin.received = received(dev, committed, total);
        resp_begin.max_bundle_length = dev->cfg.max_bundle_length;
        resp_begin.committed = committed;
        answer.msg = AWS_CLAIM_MSG_TYPE__TypeRespBegin;
        answer.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_RESP_BEGIN;
        answer.resp_begin = &resp_begin;
    } else if (req->msg == AWS_CLAIM_MSG_TYPE__TypeCmdChunk
               && req->payload_case == AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_CHUNK) {
        uint32_t total = dev->rx_total;
        error = chunk(dev, req->cmd_chunk);
        bool committed = error == CLAIM_TRANSFER_ERROR__None && req->cmd_chunk->commit;
        resp_chunk.received = received(dev, committed, total);
        resp_chunk.committed = committed;
        answer.msg = AWS_CLAIM_MSG_TYPE__TypeRespChunk;
        answer.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_RESP_CHUNK;
        answer.resp_chunk = &resp_chunk;
    } else if (req->msg == AWS_CLAIM_MSG_TYPE__TypeCmdAbort) {
        /* As the simulator and ESP-IDF-style handlers: an abort needs no payload. */
        cl_claim_wipe_all(dev);
        cl_log(dev, CL_LOG_INFO, "claim aborted: wiped");
        answer.msg = AWS_CLAIM_MSG_TYPE__TypeRespAbort;
        answer.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_RESP_ABORT;
        answer.resp_abort = &resp_abort;
    } else {
        cl_log(dev, CL_LOG_WARN, "aws-claim: unexpected message (msg %d)", (int)req->msg);
        rc = -1;
    }
    aws_claim_payload__free_unpacked(req, &cl_pb_allocator);
    if (rc != 0) {
        return rc;
    }
    answer.error = error;
    answer.status = error == CLAIM_TRANSFER_ERROR__None ? STATUS__Success : STATUS__InvalidArgument;
    return pack(&answer, out, out_len);
}

bool cl_holds_claim(const cl_device_t *dev)
{
    return dev->claim.data != NULL;
}

bool cl_holds_partial_claim(const cl_device_t *dev)
{
    return dev->rx_active;
}

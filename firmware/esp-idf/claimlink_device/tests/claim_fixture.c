/* The vector claim and helpers (claim_fixture.h). */
#include "claim_fixture.h"
#include "begin_request.h"
#include "unit.h"

#include "claimlink_aws.pb-c.h"

uint8_t *fixture_bundle(size_t *len, uint32_t seconds_left, uint64_t expires_at_epoch)
{
    cJSON *root = unit_vector("claim.json");
    size_t raw_len;
    uint8_t *raw = unit_unhex(cJSON_GetObjectItem(root, "bundle")->valuestring, &raw_len);
    cJSON_Delete(root);
    ClaimBundle *b = claim_bundle__unpack(NULL, raw_len, raw);
    free(raw);
    if (seconds_left != 0) {
        b->seconds_left = seconds_left;
    }
    if (expires_at_epoch != 0) {
        b->expires_at_epoch = expires_at_epoch;
    }
    *len = claim_bundle__get_packed_size(b);
    uint8_t *out = malloc(*len);
    claim_bundle__pack(b, out);
    claim_bundle__free_unpacked(b, NULL);
    return out;
}

int fixture_send(cl_device_t *dev, const uint8_t *bundle, size_t len)
{
    size_t n = 0;
    uint8_t *in = claim_begin_request(bundle, len, &n);
    if (in == NULL) {
        return -1;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = cl_claim_handle(dev, in, n, &out, &out_len);
    free(in);
    if (rc != 0) {
        return -1;
    }
    AwsClaimPayload *answer = aws_claim_payload__unpack(NULL, out_len, out);
    free(out);
    int error = answer != NULL ? (int)answer->error : -1;
    aws_claim_payload__free_unpacked(answer, NULL);
    return error;
}

int fixture_commit(cl_device_t *dev, uint32_t seconds_left)
{
    size_t len;
    uint8_t *bundle = fixture_bundle(&len, seconds_left, 0);
    int rc = fixture_send(dev, bundle, len);
    free(bundle);
    return rc;
}

static void copy(char *dst, const char *src)
{
    if (dst != NULL) {
        snprintf(dst, 256, "%s", src != NULL ? src : "");
    }
}

int fixture_status(cl_device_t *dev, int *failure, uint32_t *status_code, char *error_code,
                   char *error_message, char *thing_name, char *certificate_id)
{
    static const uint8_t request[] = {0x52, 0x00};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (cl_status_handle(dev, request, sizeof request, &out, &out_len) != 0) {
        return -1;
    }
    AwsStatusPayload *a = aws_status_payload__unpack(NULL, out_len, out);
    free(out);
    if (a == NULL || a->payload_case != AWS_STATUS_PAYLOAD__PAYLOAD_RESP_GET) {
        aws_status_payload__free_unpacked(a, NULL);
        return -1;
    }
    const RespGetCloudStatus *r = a->resp_get;
    int stage = (int)r->stage;
    if (failure != NULL) {
        *failure = r->failure != NULL ? (int)r->failure->kind : 0;
    }
    if (status_code != NULL) {
        *status_code = r->failure != NULL ? r->failure->status_code : 0;
    }
    copy(error_code, r->failure != NULL ? r->failure->error_code : "");
    copy(error_message, r->failure != NULL ? r->failure->error_message : "");
    copy(thing_name, r->thing_name);
    copy(certificate_id, r->certificate_id);
    aws_status_payload__free_unpacked(a, NULL);
    return stage;
}

char *fixture_file(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/fixture/%s", CLAIMLINK_VECTORS_DIR, name);
    return unit_read_file(path, NULL);
}

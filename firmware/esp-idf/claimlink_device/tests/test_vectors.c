/*
 * Every vector of proto/vectors/ byte for byte: the plaintext answers of the aws-claim and
 * aws-status handlers must equal claim.json's and negative.json's bytes, and the aws-status
 * encoder aws_status.json's for every stage and failure kind.
 */
#include "unit.h"
#include "fake_ports.h"
#include "../src/cl_internal.h"

/* Sends one request to its endpoint and compares the answer with the vector's. */
static void exchange(cl_device_t *dev, const char *endpoint, const char *request_hex,
                     const char *answer_hex, const char *label)
{
    size_t in_len;
    uint8_t *in = unit_unhex(request_hex, &in_len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = strcmp(endpoint, "aws-claim") == 0 ? cl_claim_handle(dev, in, in_len, &out, &out_len)
                                                : cl_status_handle(dev, in, in_len, &out, &out_len);
    CHECK_MSG(rc == 0, "%s: the handler failed", label);
    char *got = rc == 0 ? unit_hex(out, out_len) : strdup("");
    CHECK_MSG(strcmp(got, answer_hex) == 0, "%s: answered %s, the vector says %s", label, got, answer_hex);
    free(got);
    free(out);
    free(in);
}

static cl_device_t *device(fake_t *f)
{
    cl_config_t cfg = cl_config_default();
    cfg.max_bundle_length = 8192; /* the vectors' */
    cl_ports_t ports = fake_ports(f, false);
    return cl_device_new(&cfg, &ports);
}

static void claim_vectors(void)
{
    cJSON *root = unit_vector("claim.json");
    cJSON *transfer;
    cJSON_ArrayForEach(transfer, cJSON_GetObjectItem(root, "transfers"))
    {
        fake_t f = {0};
        cl_device_t *dev = device(&f);
        int i = 0;
        cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(transfer, "messages"))
        {
            char label[96];
            snprintf(label, sizeof label, "claim.json %s message %d", transfer->string, i++);
            exchange(dev, cJSON_GetObjectItem(m, "endpoint")->valuestring,
                     cJSON_GetObjectItem(m, "request")->valuestring,
                     cJSON_GetObjectItem(m, "answer")->valuestring, label);
        }
        CHECK_MSG(i >= 4, "claim.json %s: only %d messages", transfer->string, i);
        CHECK(!cl_holds_claim(dev)); /* the last abort wiped it */
        cl_device_free(dev);
        fake_free(&f);
    }
    cJSON_Delete(root);
}

static void negative_vectors(void)
{
    cJSON *root = unit_vector("negative.json");
    fake_t f = {0};
    cl_device_t *dev = device(&f); /* one session, as the vectors' */
    int cases = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "case")->valuestring;
        int i = 0;
        cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "steps"))
        {
            char label[160];
            snprintf(label, sizeof label, "negative.json '%s' step %d", name, i++);
            exchange(dev, "aws-claim", cJSON_GetObjectItem(s, "request")->valuestring,
                     cJSON_GetObjectItem(s, "answer")->valuestring, label);
        }
        cJSON *then = cJSON_GetObjectItem(c, "then_aws_status");
        char label[160];
        snprintf(label, sizeof label, "negative.json '%s' then aws-status", name);
        exchange(dev, "aws-status", cJSON_GetObjectItem(then, "request")->valuestring,
                 cJSON_GetObjectItem(then, "answer")->valuestring, label);
        CHECK_MSG(!cl_holds_claim(dev), "%s: a claim is held", name);
        cases++;
    }
    CHECK(cases == 11);
    cl_device_free(dev);
    fake_free(&f);
    cJSON_Delete(root);
}

static const char *const STAGES[] = {"Idle", "ClaimReceived", "WifiConnecting", "WifiConnected",
                                     "TimeSynced", "MqttConnectedWithClaim", "CertificateIssued",
                                     "ThingRegistered", "ReconnectedWithPermanent", "Done", "Failed"};
static const char *const KINDS[] = {"NoFailure", "WifiAuth", "WifiNotFound", "DhcpTimeout", "TimeSync",
                                    "ClaimExpired", "TlsRejected", "MqttRejected", "CertificateRejected",
                                    "RegisterThingRejected", "ReconnectFailed", "CredentialsProvider",
                                    "Internal"};

static int index_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

static const char *text_or_empty(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItem(obj, name);
    return cJSON_IsString(item) ? item->valuestring : "";
}

static void status_vectors(void)
{
    cJSON *root = unit_vector("aws_status.json");
    int n = 0;
    cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(root, "answers"))
    {
        const char *name = cJSON_GetObjectItem(a, "case")->valuestring;
        const cJSON *reads = cJSON_GetObjectItem(a, "sdk_reads");
        cl_status_view_t v = {0};
        v.stage = (cl_stage_t)index_of(STAGES, 11, text_or_empty(reads, "stage"));
        v.ip4_addr = text_or_empty(reads, "ip4_addr");
        v.thing_name = text_or_empty(reads, "thing_name");
        v.certificate_id = text_or_empty(reads, "certificate_id");
        v.error_code = "";
        v.error_message = "";
        const char *failure = text_or_empty(reads, "failure");
        if (failure[0] != '\0') {
            v.failure = (cl_failure_kind_t)index_of(KINDS, 13, failure);
        }
        if (v.failure == CL_FAIL_CERTIFICATE_REJECTED || v.failure == CL_FAIL_REGISTER_THING_REJECTED) {
            /* AWS's words in the vector (sdk_reads names the kind only). */
            v.status_code = 400;
            v.error_code = "InvalidParameters";
            v.error_message = "the AWS errorMessage, verbatim";
        }
        CHECK_MSG((int)v.stage >= 0, "%s: unknown stage", name);
        uint8_t *out = NULL;
        size_t out_len = 0;
        CHECK(cl_status_pack(&v, &out, &out_len) == 0);
        char *got = unit_hex(out, out_len);
        const char *want = cJSON_GetObjectItem(a, "answer")->valuestring;
        CHECK_MSG(strcmp(got, want) == 0, "aws_status.json '%s': %s, the vector says %s", name, got, want);
        free(got);
        free(out);
        n++;
    }
    CHECK(n == 22);
    /* The request the vectors give is the one aws-status takes. */
    fake_t f = {0};
    cl_device_t *dev = device(&f);
    exchange(dev, "aws-status", cJSON_GetObjectItem(root, "request")->valuestring, "08015a00", "status request");
    cl_device_free(dev);
    fake_free(&f);
    cJSON_Delete(root);
}

int main(void)
{
    claim_vectors();
    negative_vectors();
    status_vectors();
    return unit_end("test_vectors");
}

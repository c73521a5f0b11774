/*
 * The aws-claim handler beyond the vectors: malformed requests fail the handler and change nothing,
 * Begin while a transfer or a claim is held, abort and the session's end wipe, the size limits, and
 * bundles that must be refused (primes implausible or not the certificate's, both or neither key, a
 * DER key of another certificate, no endpoint or certificate). Plus the log check: a whole hand-over
 * and cloud half with a log sink, and not one byte of the claim key or the issued key in the log.
 */
#define _GNU_SOURCE /* memmem */
#include "unit.h"
#include "fake_ports.h"
#include "claim_fixture.h"
#include "../src/cl_internal.h"

#include <mbedtls/pk.h>

static cl_device_t *device(fake_t *f, uint32_t max)
{
    cl_config_t cfg = cl_config_default();
    cfg.max_bundle_length = max;
    cl_ports_t ports = fake_ports(f, false);
    return cl_device_new(&cfg, &ports);
}

/* Sends raw request bytes; returns the handler's rc, the answer's error in *error. */
static int send_raw(cl_device_t *dev, const uint8_t *in, size_t len, int *error, uint32_t *received)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = cl_claim_handle(dev, in, len, &out, &out_len);
    if (rc == 0) {
        AwsClaimPayload *a = aws_claim_payload__unpack(NULL, out_len, out);
        *error = a != NULL ? (int)a->error : -1;
        if (received != NULL && a != NULL) {
            *received = a->payload_case == AWS_CLAIM_PAYLOAD__PAYLOAD_RESP_BEGIN   ? a->resp_begin->received
                        : a->payload_case == AWS_CLAIM_PAYLOAD__PAYLOAD_RESP_CHUNK ? a->resp_chunk->received
                                                                                   : 0;
        }
        aws_claim_payload__free_unpacked(a, NULL);
    }
    free(out);
    return rc;
}

static int send_msg(cl_device_t *dev, const AwsClaimPayload *req, int *error, uint32_t *received)
{
    size_t n = aws_claim_payload__get_packed_size(req);
    uint8_t *in = malloc(n + 1);
    aws_claim_payload__pack(req, in);
    int rc = send_raw(dev, in, n, error, received);
    free(in);
    return rc;
}

static int begin(cl_device_t *dev, uint32_t total, const uint8_t *data, size_t len, bool commit, int *error)
{
    static uint8_t sha[32] = {1};
    AwsClaimPayload req = AWS_CLAIM_PAYLOAD__INIT;
    CmdClaimBegin b = CMD_CLAIM_BEGIN__INIT;
    b.total_length = total;
    b.sha256 = (ProtobufCBinaryData){32, sha};
    b.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    b.commit = commit;
    req.msg = AWS_CLAIM_MSG_TYPE__TypeCmdBegin;
    req.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_BEGIN;
    req.cmd_begin = &b;
    return send_msg(dev, &req, error, NULL);
}

static int chunk(cl_device_t *dev, uint32_t offset, const uint8_t *data, size_t len, int *error, uint32_t *received)
{
    AwsClaimPayload req = AWS_CLAIM_PAYLOAD__INIT;
    CmdClaimChunk c = CMD_CLAIM_CHUNK__INIT;
    c.offset = offset;
    c.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    req.msg = AWS_CLAIM_MSG_TYPE__TypeCmdChunk;
    req.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_CHUNK;
    req.cmd_chunk = &c;
    return send_msg(dev, &req, error, received);
}

static void malformed_and_state(void)
{
    fake_t f = {0};
    cl_device_t *dev = device(&f, 8192);
    uint8_t data[100] = {0};
    int error = 0;
    uint32_t received = 0;
    CHECK(begin(dev, 300, data, 100, false, &error) == 0 && error == CLAIM_TRANSFER_ERROR__None);
    /* Garbage, an unknown msg, a payload that does not match msg: the handler fails. */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK(send_raw(dev, garbage, sizeof garbage, &error, NULL) == -1);
    static const uint8_t unknown[] = {0x08, 0x07};
    CHECK(send_raw(dev, unknown, sizeof unknown, &error, NULL) == -1);
    static const uint8_t begin_without_payload[] = {0x08, 0x00};
    CHECK(send_raw(dev, begin_without_payload, sizeof begin_without_payload, &error, NULL) == -1);
    AwsClaimPayload mismatch = AWS_CLAIM_PAYLOAD__INIT;
    CmdClaimChunk c = CMD_CLAIM_CHUNK__INIT;
    mismatch.msg = AWS_CLAIM_MSG_TYPE__TypeCmdBegin;
    mismatch.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_CHUNK;
    mismatch.cmd_chunk = &c;
    CHECK(send_msg(dev, &mismatch, &error, NULL) == -1);
    CHECK(send_raw(dev, (const uint8_t *)"", 0, &error, NULL) == -1); /* empty: msg Begin, no payload */
    /* ... and the transfer goes on where it was. */
    CHECK(chunk(dev, 100, data, 100, &error, &received) == 0 && error == 0 && received == 200);
    /* Begin while a transfer is partial: it starts again. */
    CHECK(begin(dev, 300, data, 50, false, &error) == 0 && error == 0);
    CHECK(chunk(dev, 200, data, 10, &error, &received) == 0 && error == CLAIM_TRANSFER_ERROR__OutOfOrder && received == 50);
    /* Data beyond total_length in the Begin itself. */
    CHECK(begin(dev, 10, data, 11, false, &error) == 0 && error == CLAIM_TRANSFER_ERROR__TooLarge);
    CHECK(chunk(dev, 0, data, 1, &error, NULL) == 0 && error == CLAIM_TRANSFER_ERROR__NotStarted);
    /* A sha256 that is not 32 bytes. */
    AwsClaimPayload req = AWS_CLAIM_PAYLOAD__INIT;
    CmdClaimBegin b = CMD_CLAIM_BEGIN__INIT;
    b.total_length = 10;
    req.msg = AWS_CLAIM_MSG_TYPE__TypeCmdBegin;
    req.payload_case = AWS_CLAIM_PAYLOAD__PAYLOAD_CMD_BEGIN;
    req.cmd_begin = &b;
    CHECK(send_msg(dev, &req, &error, NULL) == 0 && error == CLAIM_TRANSFER_ERROR__BundleInvalid);
    /* The session's end wipes a partial transfer, not a held claim. */
    CHECK(begin(dev, 300, data, 100, false, &error) == 0 && error == 0);
    cl_session_ended(dev);
    CHECK(chunk(dev, 100, data, 1, &error, NULL) == 0 && error == CLAIM_TRANSFER_ERROR__NotStarted);
    CHECK(fixture_commit(dev, 0) == 0);
    cl_session_ended(dev);
    CHECK(cl_holds_claim(dev));
    /* The claim is one buffer of the bundle's size. */
    size_t len;
    uint8_t *bundle = fixture_bundle(&len, 0, 0);
    CHECK(dev->claim.len == len);
    /* Begin while held discards the claim, even when the new transfer is refused. */
    CHECK(begin(dev, 9000, data, 0, false, &error) == 0 && error == CLAIM_TRANSFER_ERROR__TooLarge);
    CHECK(!cl_holds_claim(dev));
    /* Abort wipes a held claim and a partial one. */
    CHECK(fixture_commit(dev, 0) == 0);
    static const uint8_t abort_req[] = {0x08, 0x04};
    CHECK(send_raw(dev, abort_req, sizeof abort_req, &error, NULL) == 0 && error == 0);
    CHECK(!cl_holds_claim(dev));
    CHECK(begin(dev, 300, data, 100, false, &error) == 0);
    CHECK(send_raw(dev, abort_req, sizeof abort_req, &error, NULL) == 0);
    CHECK(chunk(dev, 100, data, 1, &error, NULL) == 0 && error == CLAIM_TRANSFER_ERROR__NotStarted);
    free(bundle);
    cl_device_free(dev);
    fake_free(&f);
    /* The limit is max_bundle_length exactly. */
    dev = device(&f, (uint32_t)len);
    bundle = fixture_bundle(&len, 0, 0);
    CHECK(fixture_send(dev, bundle, len) == 0);
    cl_device_free(dev);
    fake_free(&f);
    dev = device(&f, (uint32_t)len - 1);
    CHECK(fixture_send(dev, bundle, len) == CLAIM_TRANSFER_ERROR__TooLarge);
    cl_device_free(dev);
    fake_free(&f);
    free(bundle);
}

typedef void (*edit_fn)(ClaimBundle *b, void *arg);

/* The vector bundle after `edit`, sent with its right digest: the answer's error. */
static int edited(edit_fn edit, void *arg)
{
    size_t len;
    uint8_t *raw = fixture_bundle(&len, 0, 0);
    ClaimBundle *b = claim_bundle__unpack(NULL, len, raw);
    ClaimBundle orig = *b; /* the edits point fields at static data: restored before the free */
    RsaPrimes orig_primes = *b->rsa_key;
    edit(b, arg);
    size_t n = claim_bundle__get_packed_size(b);
    uint8_t *out = malloc(n + 1);
    claim_bundle__pack(b, out);
    *b = orig;
    *b->rsa_key = orig_primes;
    fake_t f = {0};
    cl_device_t *dev = device(&f, 8192);
    int error = fixture_send(dev, out, n);
    if (error != 0) {
        CHECK(!cl_holds_claim(dev));
    }
    cl_device_free(dev);
    fake_free(&f);
    claim_bundle__free_unpacked(b, NULL);
    free(out);
    free(raw);
    return error;
}

static uint8_t small[600];
static void set_p(ClaimBundle *b, void *arg) { b->rsa_key->p = *(ProtobufCBinaryData *)arg; }
static void set_q(ClaimBundle *b, void *arg) { b->rsa_key->q = *(ProtobufCBinaryData *)arg; }
static void set_e(ClaimBundle *b, void *arg) { b->rsa_key->e = *(ProtobufCBinaryData *)arg; }
static void swap_pq(ClaimBundle *b, void *arg)
{
    (void)arg;
    ProtobufCBinaryData t = b->rsa_key->p;
    b->rsa_key->p = b->rsa_key->q;
    b->rsa_key->q = t;
}
static void pad_p(ClaimBundle *b, void *arg)
{
    (void)arg;
    memset(small, 0, sizeof small);
    memcpy(small + 2, b->rsa_key->p.data, b->rsa_key->p.len);
    b->rsa_key->p = (ProtobufCBinaryData){b->rsa_key->p.len + 2, small};
}
static void no_endpoint(ClaimBundle *b, void *arg) { (void)arg; b->iot_endpoint = ""; }
static void no_cert(ClaimBundle *b, void *arg) { (void)arg; b->certificate_der.len = 0; }
static void bad_cert(ClaimBundle *b, void *arg) { (void)arg; b->certificate_der.len = 100; }
static void der_key(ClaimBundle *b, void *arg)
{
    b->private_key_der = *(ProtobufCBinaryData *)arg;
    b->rsa_key = NULL;
}

static void refused_bundles(void)
{
    ProtobufCBinaryData v;
    small[0] = 3;
    v = (ProtobufCBinaryData){1, small};
    CHECK(edited(set_p, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid); /* plausible, not the modulus */
    small[0] = 1;
    CHECK(edited(set_q, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    small[0] = 2;
    CHECK(edited(set_e, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    small[0] = 1;
    CHECK(edited(set_e, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    v.len = 0;
    CHECK(edited(set_e, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    /* 4097 bits, odd: refused before any arithmetic. */
    memset(small, 0, sizeof small);
    small[0] = 1;
    small[513] = 1;
    v = (ProtobufCBinaryData){514, small};
    CHECK(edited(set_p, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    /* e of 65 bits. */
    memset(small, 0xff, 9);
    small[0] = 1;
    v = (ProtobufCBinaryData){9, small};
    CHECK(edited(set_e, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    /* p and q swapped: the same key. A prime with leading zero bytes: the same number. */
    CHECK(edited(swap_pq, NULL) == 0);
    CHECK(edited(pad_p, NULL) == 0);
    CHECK(edited(no_endpoint, NULL) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    CHECK(edited(no_cert, NULL) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    CHECK(edited(bad_cert, NULL) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    /* The key as DER: its own certificate's passes, another key's is refused. */
    char *pem = fixture_file("claim-key.pem");
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    CHECK(mbedtls_pk_parse_key(&pk, (const uint8_t *)pem, strlen(pem) + 1, NULL, 0, NULL, NULL) == 0);
#else
    CHECK(mbedtls_pk_parse_key(&pk, (const uint8_t *)pem, strlen(pem) + 1, NULL, 0) == 0);
#endif
    uint8_t der[2000];
    int n = mbedtls_pk_write_key_der(&pk, der, sizeof der);
    CHECK(n > 0);
    v = (ProtobufCBinaryData){(size_t)n, der + sizeof der - n};
    CHECK(edited(der_key, &v) == 0);
    der[sizeof der - n + 200] ^= 1; /* another (broken) key */
    CHECK(edited(der_key, &v) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    mbedtls_pk_free(&pk);
    free(pem);
}

/* True when any `window`-byte run of `secret` occurs in the log as raw bytes or as hex (either case). */
static bool leaks(const char *log, size_t log_len, const uint8_t *secret, size_t len, size_t window)
{
    for (size_t i = 0; i + window <= len; i++) {
        if (memmem(log, log_len, secret + i, window) != NULL) {
            return true;
        }
        char *hex = unit_hex(secret + i, window);
        bool found = memmem(log, log_len, hex, 2 * window) != NULL;
        for (char *c = hex; *c != '\0'; c++) {
            *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
        }
        found = found || memmem(log, log_len, hex, 2 * window) != NULL;
        free(hex);
        if (found) {
            return true;
        }
    }
    return false;
}

static void key_never_logged(void)
{
    fake_t f = {0};
    f.now_ms = 5;
    cl_config_t cfg = cl_config_default();
    cfg.keys = CL_KEYS_CREATE;
    cl_ports_t ports = fake_ports(&f, false);
    cl_device_t *dev = cl_device_new(&cfg, &ports);
    /* A refused bundle, a committed one, then the whole cloud half with AWS's key in an answer. */
    ProtobufCBinaryData three = {1, (uint8_t *)"\x03"};
    CHECK(edited(set_q, &three) == CLAIM_TRANSFER_ERROR__BundleInvalid);
    CHECK(fixture_commit(dev, 0) == 0);
    static const uint8_t ip[4] = {10, 0, 0, 2};
    cl_wifi_event(dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(dev, CL_WIFI_GOT_IP, ip);
    cl_on_time_synced(dev, true);
    cl_on_mqtt_connected(dev);
    cl_on_mqtt_subscribed(dev, true);
    cl_on_mqtt_subscribed(dev, true);
    char *cert = fixture_file("claim-cert.pem");
    char *key = fixture_file("claim-key.pem");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "certificateId", "abc");
    cJSON_AddStringToObject(o, "certificatePem", cert);
    cJSON_AddStringToObject(o, "privateKey", key);
    cJSON_AddStringToObject(o, "certificateOwnershipToken", "t");
    char *accepted = cJSON_PrintUnformatted(o);
    cl_on_mqtt_message(dev, "$aws/certificates/create/json/accepted", (const uint8_t *)accepted, strlen(accepted));
    cl_on_mqtt_subscribed(dev, true);
    cl_on_mqtt_subscribed(dev, true);
    const char *reg = "{\"thingName\":\"thing-1\"}";
    cl_on_mqtt_message(dev, "$aws/provisioning-templates/claimlink-fleet/provision/json/accepted",
                       (const uint8_t *)reg, strlen(reg));
    cl_on_mqtt_connected(dev);
    CHECK(cl_stage(dev) == CL_STAGE_DONE);
    CHECK(f.log_len > 200); /* the log did say things */
    /* The claim's primes, the claim key as DER (what connect got), AWS's key (DER and PEM lines). */
    size_t len;
    uint8_t *raw = fixture_bundle(&len, 0, 0);
    ClaimBundle *b = claim_bundle__unpack(NULL, len, raw);
    CHECK(!leaks(f.log, f.log_len, b->rsa_key->p.data, b->rsa_key->p.len, 8));
    CHECK(!leaks(f.log, f.log_len, b->rsa_key->q.data, b->rsa_key->q.len, 8));
    CHECK(f.stored_key != NULL && !leaks(f.log, f.log_len, f.stored_key, f.stored_key_len, 8));
    char *line = strtok(key, "\n");
    int lines = 0;
    while (line != NULL) {
        if (line[0] != '-') {
            CHECK_MSG(strstr(f.log, line) == NULL, "a line of the key's PEM is in the log");
            lines++;
        }
        line = strtok(NULL, "\n");
    }
    CHECK(lines > 10);
    /* The check itself finds what it looks for. */
    CHECK(leaks(f.log, f.log_len, (const uint8_t *)"claim committed", 15, 8));
    claim_bundle__free_unpacked(b, NULL);
    free(raw);
    cJSON_free(accepted);
    cJSON_Delete(o);
    free(cert);
    free(key);
    cl_device_free(dev);
    fake_free(&f);
}

int main(void)
{
    malformed_and_state();
    refused_bundles();
    key_never_logged();
    return unit_end("test_claim");
}

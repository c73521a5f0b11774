/*
 * The cloud half (docs/protocol.md section 12) against a scripted MQTT port: the happy paths (CSR and
 * CreateKeysAndCertificate), subscriptions before each publish, AWS's rejections in its own words,
 * timeouts and dropped connections (MqttRejected), the claim's expiry mid-flow (ClaimExpired, with
 * certificate_id once issued), persistence before the reconnection, the claim wiped at the end, the
 * Wi-Fi rules of section 9, and the credentials-provider step.
 */
#include "unit.h"
#include "fake_ports.h"
#include "claim_fixture.h"
#include "../src/cl_internal.h"

#include <mbedtls/x509_csr.h>

#define CSR_TOPIC "$aws/certificates/create-from-csr/json"
#define CREATE_TOPIC "$aws/certificates/create/json"
#define REG_TOPIC "$aws/provisioning-templates/claimlink-fleet/provision/json"
#define CERT_ID "4f1c3a3bd0e3e4c4b1d5c7a3a6f5e0b0f7c2e1d9a8b7c6d5e4f3a2b1c0d9e8f7"

typedef struct {
    fake_t f;
    cl_device_t *dev;
} env_t;

static void setup(env_t *e, cl_keys_mode_t keys, bool credentials, uint32_t seconds_left)
{
    memset(e, 0, sizeof *e);
    e->f.now_ms = 1000;
    cl_config_t cfg = cl_config_default();
    cfg.keys = keys;
    cfg.client_id = "device-7";
    cfg.answer_timeout_ms = 20000;
    cl_ports_t ports = fake_ports(&e->f, credentials);
    e->dev = cl_device_new(&cfg, &ports);
    CHECK(fixture_commit(e->dev, seconds_left) == 0);
}

static void teardown(env_t *e)
{
    cl_device_free(e->dev);
    fake_free(&e->f);
}

static const uint8_t IP[4] = {192, 168, 1, 23};

static int stage(env_t *e)
{
    return fixture_status(e->dev, NULL, NULL, NULL, NULL, NULL, NULL);
}

static void message(env_t *e, const char *topic, const char *json)
{
    cl_on_mqtt_message(e->dev, topic, (const uint8_t *)json, strlen(json));
}

/* Answers the certificate request as AWS does (the fixture certificate; its key with `create`). */
static char *certificate_accepted(bool with_key)
{
    char *pem = fixture_file("claim-cert.pem");
    char *key = fixture_file("claim-key.pem");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "certificateId", CERT_ID);
    cJSON_AddStringToObject(o, "certificatePem", pem);
    if (with_key) {
        cJSON_AddStringToObject(o, "privateKey", key);
    }
    cJSON_AddStringToObject(o, "certificateOwnershipToken", "token-123");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(pem);
    free(key);
    return text;
}

/* Applied, IP, clock synced, connected with the claim, both SUBACKs: the request is published. */
static void to_certificate_request(env_t *e)
{
    cl_wifi_event(e->dev, CL_WIFI_APPLIED, NULL);
    CHECK(stage(e) == CL_STAGE_WIFI_CONNECTING);
    cl_wifi_event(e->dev, CL_WIFI_GOT_IP, IP);
    CHECK(e->f.time_syncs == 1);
    CHECK(stage(e) == CL_STAGE_WIFI_CONNECTED);
    CHECK(!cl_holds_claim(e->dev)); /* the cloud half took it */
    e->f.now_ms += 20;
    cl_on_time_synced(e->dev, true);
    CHECK(stage(e) == CL_STAGE_TIME_SYNCED);
    CHECK(e->f.connects == 1);
    CHECK(strcmp(e->f.connect_host, "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com") == 0);
    CHECK(e->f.connect_port == 8883);
    CHECK(strcmp(e->f.connect_client_id, "device-7") == 0);
    CHECK(e->f.connect_key_len > 1000); /* PKCS#1 of the RSA-2048 claim, rebuilt from its primes */
    cl_on_mqtt_connected(e->dev);
    CHECK(stage(e) == CL_STAGE_MQTT_CONNECTED_WITH_CLAIM);
    bool csr = e->dev->cfg.keys == CL_KEYS_CSR;
    const char *topic = csr ? CSR_TOPIC : CREATE_TOPIC;
    CHECK(e->f.subscribes == 2);
    CHECK(strncmp(e->f.subscribed[0], topic, strlen(topic)) == 0 && strstr(e->f.subscribed[0], "/accepted"));
    CHECK(strncmp(e->f.subscribed[1], topic, strlen(topic)) == 0 && strstr(e->f.subscribed[1], "/rejected"));
    cl_on_mqtt_subscribed(e->dev, true);
    CHECK(e->f.publishes == 0); /* not before both SUBACKs */
    cl_on_mqtt_subscribed(e->dev, true);
    CHECK(e->f.publishes == 1);
    CHECK(strcmp(e->f.published_topic[0], topic) == 0);
}

/* The certificate accepted, RegisterThing subscribed and published. */
static void to_register(env_t *e)
{
    to_certificate_request(e);
    char *accepted = certificate_accepted(e->dev->cfg.keys == CL_KEYS_CREATE);
    message(e, e->dev->cfg.keys == CL_KEYS_CSR ? CSR_TOPIC "/accepted" : CREATE_TOPIC "/accepted", accepted);
    free(accepted);
    char cert_id[256];
    CHECK(fixture_status(e->dev, NULL, NULL, NULL, NULL, NULL, cert_id) == CL_STAGE_CERTIFICATE_ISSUED);
    CHECK(strcmp(cert_id, CERT_ID) == 0);
    CHECK(e->f.subscribes == 4);
    CHECK(strcmp(e->f.subscribed[2], REG_TOPIC "/accepted") == 0);
    CHECK(strcmp(e->f.subscribed[3], REG_TOPIC "/rejected") == 0);
    CHECK(e->f.publishes == 1);
    cl_on_mqtt_subscribed(e->dev, true);
    cl_on_mqtt_subscribed(e->dev, true);
    CHECK(e->f.publishes == 2);
    CHECK(strcmp(e->f.published_topic[1], REG_TOPIC) == 0);
    cJSON *reg = cJSON_Parse(e->f.published[1]);
    CHECK(reg != NULL);
    const cJSON *token = cJSON_GetObjectItem(reg, "certificateOwnershipToken");
    CHECK(cJSON_IsString(token) && strcmp(token->valuestring, "token-123") == 0);
    const cJSON *serial = cJSON_GetObjectItem(cJSON_GetObjectItem(reg, "parameters"), "SerialNumber");
    CHECK(cJSON_IsString(serial) && strcmp(serial->valuestring, "SN-0001") == 0);
    cJSON_Delete(reg);
}

static void check_failed(env_t *e, int kind, uint32_t status, const char *code, const char *msg, const char *cert_id)
{
    int failure = 0;
    uint32_t status_code = 0;
    char error_code[256], error_message[256], cid[256];
    int st = fixture_status(e->dev, &failure, &status_code, error_code, error_message, NULL, cid);
    CHECK_MSG(st == CL_STAGE_FAILED, "stage %d", st);
    CHECK_MSG(failure == kind, "failure %d, expected %d", failure, kind);
    if (code != NULL) {
        CHECK(status_code == status);
        CHECK_MSG(strcmp(error_code, code) == 0, "error_code '%s'", error_code);
    }
    if (msg != NULL) {
        CHECK_MSG(strcmp(error_message, msg) == 0, "error_message '%s'", error_message);
    }
    CHECK_MSG(strcmp(cid, cert_id) == 0, "certificate_id '%s'", cid);
    CHECK(cl_cloud_finished(e->dev));
    CHECK(e->dev->cloud.claim.data == NULL && !cl_holds_claim(e->dev)); /* the claim is wiped */
}

static void happy(cl_keys_mode_t keys)
{
    env_t e;
    setup(&e, keys, false, 0);
    to_certificate_request(&e);
    if (keys == CL_KEYS_CSR) {
        /* The request carries a CSR for a P-256 key made here. */
        cJSON *req = cJSON_Parse(e.f.published[0]);
        const cJSON *csr = cJSON_GetObjectItem(req, "certificateSigningRequest");
        CHECK(cJSON_IsString(csr));
        mbedtls_x509_csr parsed;
        mbedtls_x509_csr_init(&parsed);
        CHECK(mbedtls_x509_csr_parse(&parsed, (const unsigned char *)csr->valuestring, strlen(csr->valuestring) + 1) == 0);
        CHECK(mbedtls_pk_get_type(&parsed.pk) == MBEDTLS_PK_ECKEY && mbedtls_pk_get_bitlen(&parsed.pk) == 256);
        mbedtls_x509_csr_free(&parsed);
        cJSON_Delete(req);
    } else {
        CHECK(strcmp(e.f.published[0], "{}") == 0);
    }
    teardown(&e);

    setup(&e, keys, false, 0);
    to_register(&e);
    message(&e, REG_TOPIC "/accepted", "{\"thingName\":\"thing-7\",\"deviceConfiguration\":{}}");
    /* Stored before the reconnection, the claim wiped, then the permanent certificate used. */
    CHECK(e.f.stores == 1 && e.f.stored_at_connects == 1);
    CHECK(e.dev->cloud.claim.data == NULL);
    CHECK(e.f.disconnects >= 1);
    CHECK(e.f.connects == 2);
    CHECK(e.f.connect_cert_len == e.f.stored_cert_len && memcmp(e.f.connect_cert, e.f.stored_cert, e.f.stored_cert_len) == 0);
    CHECK(e.f.connect_key_len == e.f.stored_key_len && memcmp(e.f.connect_key, e.f.stored_key, e.f.stored_key_len) == 0);
    CHECK(strcmp(e.f.connect_client_id, "device-7") == 0);
    CHECK(stage(&e) == CL_STAGE_THING_REGISTERED);
    if (keys == CL_KEYS_CREATE) {
        CHECK(e.f.stored_key_len > 1000); /* AWS's RSA key, as DER */
    } else {
        CHECK(e.f.stored_key_len < 200); /* the P-256 key, SEC1 DER */
    }
    cl_on_mqtt_connected(e.dev);
    char thing[256], cid[256];
    CHECK(fixture_status(e.dev, NULL, NULL, NULL, NULL, thing, cid) == CL_STAGE_DONE);
    CHECK(strcmp(thing, "thing-7") == 0 && strcmp(cid, CERT_ID) == 0);
    CHECK(cl_cloud_finished(e.dev));
    CHECK(e.dev->cloud.key_der.data == NULL); /* the key in RAM wiped: it lives in storage */
    CHECK(cl_next_wake_ms(e.dev) == UINT32_MAX);
    teardown(&e);
}

static void rejections(void)
{
    env_t e;
    /* CreateCertificateFromCsr rejected: AWS's words verbatim, no certificate. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_certificate_request(&e);
    message(&e, CSR_TOPIC "/rejected",
            "{\"statusCode\":400,\"errorCode\":\"InvalidCSR\",\"errorMessage\":\"The CSR is not valid, verbatim\"}");
    check_failed(&e, CL_FAIL_CERTIFICATE_REJECTED, 400, "InvalidCSR", "The CSR is not valid, verbatim", "");
    CHECK(e.f.disconnects >= 1);
    teardown(&e);
    /* RegisterThing rejected: the issued certificate is named. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_register(&e);
    message(&e, REG_TOPIC "/accepted/other", "{}"); /* not the answer: ignored */
    message(&e, REG_TOPIC "/rejected",
            "{\"statusCode\":404,\"errorCode\":\"ResourceNotFound\",\"errorMessage\":\"The provisioning template claimlink-fleet does not exist or is disabled.\"}");
    check_failed(&e, CL_FAIL_REGISTER_THING_REJECTED, 404, "ResourceNotFound",
                 "The provisioning template claimlink-fleet does not exist or is disabled.", CERT_ID);
    CHECK(e.f.stores == 0);
    teardown(&e);
    /* A refused subscription. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    cl_on_mqtt_connected(e.dev);
    cl_on_mqtt_subscribed(e.dev, false);
    check_failed(&e, CL_FAIL_MQTT_REJECTED, 0, "", NULL, "");
    CHECK(e.f.publishes == 0);
    teardown(&e);
}

static void connection_failures(void)
{
    env_t e;
    /* TLS refused, MQTT refused, time sync failed. */
    for (int i = 0; i < 3; i++) {
        setup(&e, CL_KEYS_CSR, false, 0);
        cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
        cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
        if (i == 2) {
            cl_on_time_synced(e.dev, false);
            check_failed(&e, CL_FAIL_TIME_SYNC, 0, "", NULL, "");
            CHECK(e.f.connects == 0);
        } else {
            cl_on_time_synced(e.dev, true);
            cl_on_mqtt_connect_failed(e.dev, i == 0 ? CL_CONNECT_TLS : CL_CONNECT_MQTT, "refused here");
            check_failed(&e, i == 0 ? CL_FAIL_TLS_REJECTED : CL_FAIL_MQTT_REJECTED, 0, "", "refused here", "");
        }
        teardown(&e);
    }
    /* Silence while waiting for the certificate: MqttRejected, never CertificateRejected. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_certificate_request(&e);
    CHECK(cl_next_wake_ms(e.dev) <= 20000);
    e.f.now_ms += 19999;
    cl_tick(e.dev);
    CHECK(stage(&e) == CL_STAGE_MQTT_CONNECTED_WITH_CLAIM);
    e.f.now_ms += 1;
    cl_tick(e.dev);
    check_failed(&e, CL_FAIL_MQTT_REJECTED, 0, "", NULL, "");
    teardown(&e);
    /* A dropped connection while waiting for RegisterThing: MqttRejected, the certificate named. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_register(&e);
    cl_on_mqtt_disconnected(e.dev);
    check_failed(&e, CL_FAIL_MQTT_REJECTED, 0, "", NULL, CERT_ID);
    teardown(&e);
    /* No CONNACK in time. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    e.f.now_ms += 20000;
    cl_tick(e.dev);
    check_failed(&e, CL_FAIL_MQTT_REJECTED, 0, "", NULL, "");
    teardown(&e);
    /* The reconnection fails: the thing and the certificate are named; the identity was stored. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_register(&e);
    message(&e, REG_TOPIC "/accepted", "{\"thingName\":\"thing-7\"}");
    cl_on_mqtt_connect_failed(e.dev, CL_CONNECT_TLS, "the certificate is not active");
    check_failed(&e, CL_FAIL_RECONNECT_FAILED, 0, "", "the certificate is not active", CERT_ID);
    CHECK(e.f.stores == 1);
    char thing[256];
    fixture_status(e.dev, NULL, NULL, NULL, NULL, thing, NULL);
    CHECK(strcmp(thing, "thing-7") == 0);
    teardown(&e);
    /* Storage fails: no reconnection, Internal. */
    setup(&e, CL_KEYS_CSR, false, 0);
    e.f.store_fails = true;
    to_register(&e);
    message(&e, REG_TOPIC "/accepted", "{\"thingName\":\"thing-7\"}");
    check_failed(&e, CL_FAIL_INTERNAL, 0, "", NULL, CERT_ID);
    CHECK(e.f.connects == 1);
    teardown(&e);
    /* A malformed accepted answer. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_certificate_request(&e);
    message(&e, CSR_TOPIC "/accepted", "{\"certificateId\":\"x\"}");
    check_failed(&e, CL_FAIL_INTERNAL, 0, "", NULL, "");
    teardown(&e);
}

/* No TCP connection: tried again with a growing pause while the claim has time, never past it. */
static void connection_retries(void)
{
    env_t e;
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    CHECK(e.f.connects == 1);
    uint32_t pauses[3];
    for (int i = 0; i < 3; i++) {
        cl_on_mqtt_connect_failed(e.dev, CL_CONNECT_NETWORK, "Connection refused");
        CHECK_MSG(stage(&e) == CL_STAGE_TIME_SYNCED, "attempt %d: stage %d", i + 1, stage(&e));
        pauses[i] = cl_next_wake_ms(e.dev);
        CHECK_MSG(pauses[i] >= (250u << i) && pauses[i] <= (250u << i) * 5 / 4, "pause %u", pauses[i]);
        e.f.now_ms += pauses[i] - 1;
        cl_tick(e.dev);
        CHECK(e.f.connects == 1 + i); /* not before its time */
        e.f.now_ms += 1;
        cl_tick(e.dev);
        CHECK(e.f.connects == 2 + i);
    }
    cl_on_mqtt_connected(e.dev);
    CHECK(stage(&e) == CL_STAGE_MQTT_CONNECTED_WITH_CLAIM);
    teardown(&e);

    /* The network never comes: ClaimExpired, and no attempt starts after the claim's expiry. */
    setup(&e, CL_KEYS_CSR, false, 20);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    uint64_t expiry = 1000 + 20000;
    while (stage(&e) != CL_STAGE_FAILED) {
        CHECK(e.f.now_ms < expiry);
        cl_on_mqtt_connect_failed(e.dev, CL_CONNECT_NETWORK, "No route to host");
        if (stage(&e) == CL_STAGE_FAILED) {
            break;
        }
        e.f.now_ms += cl_next_wake_ms(e.dev);
        cl_tick(e.dev);
    }
    check_failed(&e, CL_FAIL_CLAIM_EXPIRED, 0, "", NULL, "");
    CHECK_MSG(e.f.connects >= 5, "%d attempts", e.f.connects);
    teardown(&e);

    /* A TLS refusal is final: the server answered, another try would get the same answer. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    cl_on_mqtt_connect_failed(e.dev, CL_CONNECT_TLS, "certificate unknown");
    check_failed(&e, CL_FAIL_TLS_REJECTED, 0, "", "certificate unknown", "");
    CHECK(e.f.connects == 1);
    teardown(&e);
}

static void expiry(void)
{
    env_t e;
    /* Mid-flow, after the certificate: ClaimExpired with certificate_id (seconds_left 60, counted on
     * the monotonic clock from the commit; the answer timeout is longer). */
    setup(&e, CL_KEYS_CSR, false, 60);
    e.dev->cfg.answer_timeout_ms = 120000;
    to_register(&e);
    e.f.now_ms = 1000 + 59999;
    cl_tick(e.dev);
    CHECK(stage(&e) == CL_STAGE_CERTIFICATE_ISSUED);
    CHECK(cl_next_wake_ms(e.dev) == 1);
    e.f.now_ms += 1;
    cl_tick(e.dev);
    check_failed(&e, CL_FAIL_CLAIM_EXPIRED, 0, "", NULL, CERT_ID);
    teardown(&e);
    /* Before getting online: never connects. */
    setup(&e, CL_KEYS_CSR, false, 60);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    e.f.now_ms += 61000;
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    cl_on_time_synced(e.dev, true);
    check_failed(&e, CL_FAIL_CLAIM_EXPIRED, 0, "", NULL, "");
    CHECK(e.f.connects == 0);
    teardown(&e);
    /* The synced wall clock says expires_at_epoch passed, although seconds_left has time. */
    setup(&e, CL_KEYS_CSR, false, 0); /* the vector's 3600 s, expires_at_epoch 1900000000 */
    to_certificate_request(&e);
    e.f.wall = 1900000000;
    cl_tick(e.dev);
    check_failed(&e, CL_FAIL_CLAIM_EXPIRED, 0, "", NULL, "");
    teardown(&e);
    /* After RegisterThing the claim no longer bounds the reconnection. */
    setup(&e, CL_KEYS_CSR, false, 60);
    e.dev->cfg.answer_timeout_ms = 120000;
    to_register(&e);
    message(&e, REG_TOPIC "/accepted", "{\"thingName\":\"thing-7\"}");
    e.f.now_ms = 1000 + 60000;
    cl_tick(e.dev);
    CHECK(stage(&e) == CL_STAGE_THING_REGISTERED);
    cl_on_mqtt_connected(e.dev);
    CHECK(stage(&e) == CL_STAGE_DONE);
    teardown(&e);
}

static void wifi_rules(void)
{
    env_t e;
    /* A wrong passphrase keeps the claim; Reset: ClaimReceived again; the corrected join uses it. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_AUTH_FAILED, NULL);
    int failure = 0;
    CHECK(fixture_status(e.dev, &failure, NULL, NULL, NULL, NULL, NULL) == CL_STAGE_FAILED);
    CHECK(failure == CL_FAIL_WIFI_AUTH);
    CHECK(cl_holds_claim(e.dev));
    cl_wifi_event(e.dev, CL_WIFI_RESET, NULL);
    CHECK(stage(&e) == CL_STAGE_CLAIM_RECEIVED);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    CHECK(e.f.time_syncs == 1);
    teardown(&e);
    /* Not found, DHCP timeout. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_NOT_FOUND, NULL);
    fixture_status(e.dev, &failure, NULL, NULL, NULL, NULL, NULL);
    CHECK(failure == CL_FAIL_WIFI_NOT_FOUND);
    cl_wifi_event(e.dev, CL_WIFI_DHCP_TIMEOUT, NULL);
    fixture_status(e.dev, &failure, NULL, NULL, NULL, NULL, NULL);
    CHECK(failure == CL_FAIL_DHCP_TIMEOUT);
    teardown(&e);
    /* A claim committed after ApplyConfig is not used by that join. */
    fake_t f = {0};
    cl_config_t cfg = cl_config_default();
    cl_ports_t ports = fake_ports(&f, false);
    cl_device_t *dev = cl_device_new(&cfg, &ports);
    cl_wifi_event(dev, CL_WIFI_APPLIED, NULL);
    CHECK(fixture_commit(dev, 0) == 0);
    cl_wifi_event(dev, CL_WIFI_GOT_IP, IP);
    CHECK(f.time_syncs == 0);
    CHECK(fixture_status(dev, NULL, NULL, NULL, NULL, NULL, NULL) == CL_STAGE_WIFI_CONNECTED);
    cl_device_free(dev);
    fake_free(&f);
    /* Without a claim: Wi-Fi only. A claim aborted between APPLIED and GOT_IP is not used either. */
    setup(&e, CL_KEYS_CSR, false, 0);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    static const uint8_t abort_req[] = {0x08, 0x04, 0x72, 0x00};
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK(cl_claim_handle(e.dev, abort_req, sizeof abort_req, &out, &out_len) == 0);
    free(out);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    CHECK(e.f.time_syncs == 0);
    CHECK(stage(&e) == CL_STAGE_WIFI_CONNECTED);
    teardown(&e);
    /* After a run ended, a fresh claim and a new join start a new run from scratch. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_certificate_request(&e);
    message(&e, CSR_TOPIC "/rejected", "{\"statusCode\":403,\"errorCode\":\"Forbidden\",\"errorMessage\":\"no\"}");
    CHECK(stage(&e) == CL_STAGE_FAILED);
    CHECK(fixture_commit(e.dev, 0) == 0);
    cl_wifi_event(e.dev, CL_WIFI_RESET, NULL);
    CHECK(stage(&e) == CL_STAGE_CLAIM_RECEIVED);
    cl_wifi_event(e.dev, CL_WIFI_APPLIED, NULL);
    cl_wifi_event(e.dev, CL_WIFI_GOT_IP, IP);
    CHECK(e.f.time_syncs == 2);
    CHECK(stage(&e) == CL_STAGE_WIFI_CONNECTED); /* the old failure is gone */
    cl_on_time_synced(e.dev, true);
    CHECK(e.f.connects == 2 && stage(&e) == CL_STAGE_TIME_SYNCED);
    teardown(&e);
    /* The cloud half's end wipes a claim committed meanwhile. */
    setup(&e, CL_KEYS_CSR, false, 0);
    to_certificate_request(&e);
    CHECK(fixture_commit(e.dev, 0) == 0);
    CHECK(cl_holds_claim(e.dev));
    message(&e, CSR_TOPIC "/rejected", "{\"statusCode\":400,\"errorCode\":\"X\",\"errorMessage\":\"y\"}");
    CHECK(!cl_holds_claim(e.dev));
    teardown(&e);
}

static void credentials(void)
{
    for (int ok = 0; ok < 2; ok++) {
        env_t e;
        setup(&e, CL_KEYS_CSR, true, 0);
        to_register(&e);
        message(&e, REG_TOPIC "/accepted", "{\"thingName\":\"thing-7\"}");
        cl_on_mqtt_connected(e.dev);
        CHECK(e.f.credentials == 1 && strcmp(e.f.credentials_thing, "thing-7") == 0);
        CHECK(stage(&e) == CL_STAGE_RECONNECTED_WITH_PERMANENT);
        cl_on_credentials(e.dev, ok == 1, ok == 1 ? 200 : 403, ok == 1 ? "" : "Forbidden");
        if (ok == 1) {
            CHECK(stage(&e) == CL_STAGE_DONE);
        } else {
            check_failed(&e, CL_FAIL_CREDENTIALS_PROVIDER, 403, "", "Forbidden", CERT_ID);
        }
        teardown(&e);
    }
}

int main(void)
{
    happy(CL_KEYS_CSR);
    happy(CL_KEYS_CREATE);
    rejections();
    connection_failures();
    connection_retries();
    expiry();
    wifi_rules();
    credentials();
    return unit_end("test_cloud");
}

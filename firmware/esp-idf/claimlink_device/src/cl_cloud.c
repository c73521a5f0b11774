/*
 * The cloud half (docs/protocol.md section 12) as an event-driven state machine:
 *
 *   TIME_SYNC -> CONNECT (claim) -> SUB_CERT -> WAIT_CERT -> SUB_REG -> WAIT_REG
 *             -> [persist, wipe the claim] -> RECONNECT (permanent) -> [CREDENTIALS] -> ENDED
 *
 * Every wait has a deadline: the answer timeout, and up to RegisterThing's answer also the claim's
 * expiry (seconds_left counted on the monotonic clock from the commit; once the wall clock is synced,
 * expires_at_epoch as well, the earlier wins). Subscriptions to accepted/rejected come before each
 * request. AWS's rejections are reported with its statusCode/errorCode/errorMessage verbatim; a
 * connection that drops or stays silent while waiting is MqttRejected. certificate_id is reported
 * from CertificateIssued on, also when the flow then fails. The claim is wiped when the flow ends,
 * whatever the outcome, and as soon as the permanent identity is stored.
 */
#include "cl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <mbedtls/platform_util.h>

#define TOPIC_CSR "$aws/certificates/create-from-csr/json"
#define TOPIC_CREATE "$aws/certificates/create/json"

static uint64_t now_ms(const cl_device_t *dev)
{
    return dev->ports.monotonic_ms(dev->ports.ctx);
}

/* The states whose waits the claim's expiry bounds: the claim is needed up to RegisterThing. */
static bool needs_claim(cl_cloud_state_t s)
{
    return s >= CL_CLOUD_TIME_SYNC && s <= CL_CLOUD_WAIT_REG;
}

/* The claim's expiry on the monotonic clock: seconds_left from the commit, or expires_at_epoch
 * against the synced wall clock if that is earlier. */
static uint64_t claim_deadline(const cl_device_t *dev)
{
    const cl_cloud_t *c = &dev->cloud;
    uint64_t deadline = c->claim_expiry_ms;
    uint64_t wall = dev->ports.wall_epoch != NULL ? dev->ports.wall_epoch(dev->ports.ctx) : 0;
    if (wall != 0 && c->claim_expiry_epoch != 0) {
        uint64_t now = now_ms(dev);
        uint64_t by_wall = c->claim_expiry_epoch <= wall ? now : now + (c->claim_expiry_epoch - wall) * 1000;
        if (by_wall < deadline) {
            deadline = by_wall;
        }
    }
    return deadline;
}

static void set_text(char **field, const char *value)
{
    cl_free(*field);
    *field = value != NULL ? cl_strndup(value, CL_TEXT_MAX) : NULL;
}

static bool connected(cl_cloud_state_t s)
{
    return (s >= CL_CLOUD_CONNECT && s <= CL_CLOUD_WAIT_REG) || s == CL_CLOUD_RECONNECT;
}

/* The end, whatever the outcome: every claim the device holds is wiped, and the keys in RAM. */
static void finish(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    c->state = CL_CLOUD_ENDED;
    cl_buf_wipe(&c->claim);
    cl_buf_wipe(&c->key_der);
    cl_buf_wipe(&c->cert_der);
    set_text(&c->ownership_token, NULL);
    set_text(&c->pending_payload, NULL);
    cl_claim_wipe_all(dev);
}

void cl_cloud_fail(cl_device_t *dev, cl_failure_kind_t kind, uint32_t status, const char *code,
                   const char *message)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state == CL_CLOUD_ENDED || c->state == CL_CLOUD_OFF) {
        return;
    }
    if (connected(c->state) && dev->ports.mqtt_disconnect != NULL) {
        dev->ports.mqtt_disconnect(dev->ports.ctx);
    }
    c->failure = kind;
    c->status_code = status;
    set_text(&c->error_code, code != NULL ? code : "");
    set_text(&c->error_message, message != NULL ? message : "");
    c->stage = CL_STAGE_FAILED;
    cl_log(dev, CL_LOG_ERROR, "cloud half failed (kind %d): %u %s %s", (int)kind, (unsigned)status,
           c->error_code != NULL ? c->error_code : "", c->error_message != NULL ? c->error_message : "");
    finish(dev);
}

static void reach(cl_device_t *dev, cl_stage_t stage)
{
    dev->cloud.stage = stage;
    cl_log(dev, CL_LOG_INFO, "stage %d reached", (int)stage);
}

void cl_cloud_reset(cl_device_t *dev)
{
    /* The cloud half's own buffers and words; the claims the device holds are not its business. */
    cl_cloud_t *c = &dev->cloud;
    cl_buf_wipe(&c->claim);
    cl_buf_wipe(&c->key_der);
    cl_buf_wipe(&c->cert_der);
    set_text(&c->ownership_token, NULL);
    set_text(&c->pending_payload, NULL);
    set_text(&c->certificate_id, NULL);
    set_text(&c->thing_name, NULL);
    set_text(&c->error_code, NULL);
    set_text(&c->error_message, NULL);
    set_text(&c->host, NULL);
    memset(c, 0, sizeof *c);
}

static uint64_t step_deadline(const cl_device_t *dev)
{
    return now_ms(dev) + dev->cfg.answer_timeout_ms;
}

void cl_cloud_start(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    cl_cloud_reset(dev); /* a new run (a fresh claim after an earlier one ended) starts clean */
    ClaimBundle *b = cl_bundle_decode(dev->claim.data, dev->claim.len);
    if (b == NULL) { /* checked at commit: cannot happen */
        return;
    }
    c->claim_expiry_ms = dev->claim_committed_ms + (uint64_t)b->seconds_left * 1000;
    c->claim_expiry_epoch = b->expires_at_epoch;
    claim_bundle__free_unpacked(b, &cl_pb_allocator);
    c->claim = dev->claim; /* the cloud half keeps its own copy: the held one is gone */
    dev->claim.data = NULL;
    dev->claim.len = 0;
    c->state = CL_CLOUD_TIME_SYNC;
    c->stage = CL_STAGE_WIFI_CONNECTED;
    c->step_deadline_ms = step_deadline(dev);
    cl_log(dev, CL_LOG_INFO, "cloud half started: time sync");
    if (dev->ports.time_sync_start == NULL || dev->ports.time_sync_start(dev->ports.ctx) != 0) {
        cl_cloud_fail(dev, CL_FAIL_TIME_SYNC, 0, "", "cannot start the time sync");
    }
}

/* Splits "host[:port]" (the bundle's iot_endpoint). */
static int set_endpoint(cl_device_t *dev, const char *endpoint)
{
    cl_cloud_t *c = &dev->cloud;
    set_text(&c->host, endpoint);
    if (c->host == NULL) {
        return -1;
    }
    c->port = dev->cfg.default_port;
    char *colon = strrchr(c->host, ':');
    if (colon != NULL) {
        char *end = NULL;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (end != colon + 1 && *end == '\0' && port > 0 && port <= 65535) {
            c->port = (uint16_t)port;
        }
        *colon = '\0';
    }
    return 0;
}

static void connect_with_claim(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    ClaimBundle *b = cl_bundle_decode(c->claim.data, c->claim.len);
    cl_buf_t key = {0};
    int rc = -1;
    if (b != NULL && set_endpoint(dev, b->iot_endpoint) == 0 && cl_bundle_key_der(dev, b, &key) == 0) {
        cl_mqtt_connect_t params = {.host = c->host, .port = c->port, .client_id = dev->client_id,
                                    .cert_der = b->certificate_der.data,
                                    .cert_len = b->certificate_der.len, .key_der = key.data,
                                    .key_len = key.len};
        c->state = CL_CLOUD_CONNECT;
        c->step_deadline_ms = step_deadline(dev);
        c->connect_attempts++;
        cl_log(dev, CL_LOG_INFO, "connecting to %s:%u with the claim as %s", c->host, (unsigned)c->port,
               dev->client_id);
        rc = dev->ports.mqtt_connect(dev->ports.ctx, &params);
    }
    cl_buf_wipe(&key);
    if (b != NULL) {
        claim_bundle__free_unpacked(b, &cl_pb_allocator);
    }
    if (rc != 0) {
        cl_cloud_fail(dev, b == NULL ? CL_FAIL_INTERNAL : CL_FAIL_TLS_REJECTED, 0, "",
                      "cannot start the connection with the claim");
    }
}

void cl_on_time_synced(cl_device_t *dev, bool ok)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state != CL_CLOUD_TIME_SYNC) {
        return;
    }
    if (!ok) {
        cl_cloud_fail(dev, CL_FAIL_TIME_SYNC, 0, "", "the clock could not be synced");
        return;
    }
    reach(dev, CL_STAGE_TIME_SYNCED);
    if (now_ms(dev) >= claim_deadline(dev)) {
        cl_cloud_fail(dev, CL_FAIL_CLAIM_EXPIRED, 0, "", "the claim expired before the device got online");
        return;
    }
    connect_with_claim(dev);
}

/* Subscribes to topic/accepted and topic/rejected; `payload` is published once both are granted. */
static void request(cl_device_t *dev, const char *topic, char *payload, cl_cloud_state_t sub_state)
{
    cl_cloud_t *c = &dev->cloud;
    char reply[sizeof c->request_topic + 16];
    if (payload == NULL || strlen(topic) >= sizeof c->request_topic) {
        cl_free(payload);
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "cannot build the request");
        return;
    }
    strcpy(c->request_topic, topic);
    set_text(&c->pending_payload, NULL);
    c->pending_payload = payload;
    c->state = sub_state;
    c->subacks = 2;
    c->step_deadline_ms = step_deadline(dev);
    snprintf(reply, sizeof reply, "%s/accepted", topic);
    int rc = dev->ports.mqtt_subscribe(dev->ports.ctx, reply);
    snprintf(reply, sizeof reply, "%s/rejected", topic);
    if (rc == 0) {
        rc = dev->ports.mqtt_subscribe(dev->ports.ctx, reply);
    }
    if (rc != 0) {
        cl_cloud_fail(dev, CL_FAIL_MQTT_REJECTED, 0, "", "cannot subscribe");
    }
}

/* cJSON allocates with its own hooks; the JSON we build carries no secret, but the text of a
 * request is copied into a wiped-on-free buffer so that one free function serves every buffer. */
static char *print_json(cJSON *root)
{
    char *text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
    char *out = text != NULL ? cl_strndup(text, 16384) : NULL;
    if (text != NULL) {
        cJSON_free(text);
    }
    cJSON_Delete(root);
    return out;
}

static void request_certificate(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    cJSON *root = cJSON_CreateObject();
    if (dev->cfg.keys == CL_KEYS_CSR) {
        char *csr = NULL;
        if (cl_keys_make_csr(dev, &c->key_der, &csr) != 0) {
            cJSON_Delete(root);
            cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "cannot make the key and its CSR");
            return;
        }
        cJSON_AddStringToObject(root, "certificateSigningRequest", csr);
        cl_free(csr);
        cl_log(dev, CL_LOG_INFO, "P-256 key made on the device; CreateCertificateFromCsr");
        request(dev, TOPIC_CSR, print_json(root), CL_CLOUD_SUB_CERT);
    } else {
        cl_log(dev, CL_LOG_INFO, "CreateKeysAndCertificate");
        request(dev, TOPIC_CREATE, print_json(root), CL_CLOUD_SUB_CERT);
    }
}

static void register_thing(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    ClaimBundle *b = cl_bundle_decode(c->claim.data, c->claim.len);
    if (b == NULL) {
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "the claim is gone");
        return;
    }
    char topic[sizeof c->request_topic];
    int n = snprintf(topic, sizeof topic, "$aws/provisioning-templates/%s/provision/json", b->template_name);
    cJSON *root = cJSON_CreateObject();
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "certificateOwnershipToken", c->ownership_token);
    for (size_t i = 0; i < b->n_template_parameters; i++) {
        cJSON_AddStringToObject(params, b->template_parameters[i]->key, b->template_parameters[i]->value);
    }
    cJSON_AddItemToObject(root, "parameters", params);
    cl_log(dev, CL_LOG_INFO, "RegisterThing with template %s", b->template_name);
    claim_bundle__free_unpacked(b, &cl_pb_allocator);
    if (n < 0 || (size_t)n >= sizeof topic) {
        cJSON_Delete(root);
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "template name too long");
        return;
    }
    request(dev, topic, print_json(root), CL_CLOUD_SUB_REG);
}

void cl_on_mqtt_subscribed(cl_device_t *dev, bool granted)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state != CL_CLOUD_SUB_CERT && c->state != CL_CLOUD_SUB_REG) {
        return;
    }
    if (!granted) {
        cl_cloud_fail(dev, CL_FAIL_MQTT_REJECTED, 0, "", "the broker refused a subscription");
        return;
    }
    if (--c->subacks > 0) {
        return;
    }
    c->state = c->state == CL_CLOUD_SUB_CERT ? CL_CLOUD_WAIT_CERT : CL_CLOUD_WAIT_REG;
    const char *payload = c->pending_payload;
    if (dev->ports.mqtt_publish(dev->ports.ctx, c->request_topic, (const uint8_t *)payload,
                                strlen(payload)) != 0) {
        cl_cloud_fail(dev, CL_FAIL_MQTT_REJECTED, 0, "", "cannot publish the request");
        return;
    }
    set_text(&c->pending_payload, NULL);
}

void cl_on_mqtt_connected(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state == CL_CLOUD_CONNECT) {
        reach(dev, CL_STAGE_MQTT_CONNECTED_WITH_CLAIM);
        request_certificate(dev);
    } else if (c->state == CL_CLOUD_RECONNECT) {
        reach(dev, CL_STAGE_RECONNECTED_WITH_PERMANENT);
        dev->ports.mqtt_disconnect(dev->ports.ctx);
        if (dev->ports.credentials_start == NULL) {
            reach(dev, CL_STAGE_DONE);
            finish(dev);
            return;
        }
        cl_mqtt_connect_t identity = {.host = c->host, .port = c->port, .client_id = dev->client_id,
                                      .cert_der = c->cert_der.data, .cert_len = c->cert_der.len,
                                      .key_der = c->key_der.data, .key_len = c->key_der.len};
        c->state = CL_CLOUD_CREDENTIALS;
        c->step_deadline_ms = step_deadline(dev);
        if (dev->ports.credentials_start(dev->ports.ctx, &identity, c->thing_name) != 0) {
            cl_cloud_fail(dev, CL_FAIL_CREDENTIALS_PROVIDER, 0, "", "cannot reach the credentials provider");
        }
    }
}

/* The pause before connection attempt n + 1 (n >= 1): 250 ms doubling to 8 s, plus up to a quarter
 * of it at random, so that devices that lost the network together do not come back together. */
static uint64_t backoff_ms(cl_device_t *dev, uint32_t attempts)
{
    uint64_t base = attempts >= 6 ? 8000 : 250ull << (attempts - 1);
    uint8_t r = 0;
    if (dev->ports.random(dev->ports.ctx, &r, 1) != 0) {
        r = 0;
    }
    return base + base * r / 1024;
}

void cl_on_mqtt_connect_failed(cl_device_t *dev, cl_connect_failure_t why, const char *reason)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state == CL_CLOUD_CONNECT && why == CL_CONNECT_NETWORK) {
        /* No TCP connection (common on a fresh Wi-Fi link): try again, but never past the claim. */
        uint64_t now = now_ms(dev);
        uint64_t at = now + backoff_ms(dev, c->connect_attempts);
        if (at >= claim_deadline(dev)) {
            char why_text[240];
            snprintf(why_text, sizeof why_text, "the claim expired while connecting (%u attempts): %s",
                     (unsigned)c->connect_attempts, reason != NULL ? reason : "");
            c->state = CL_CLOUD_TIME_SYNC; /* not connected: nothing to disconnect */
            cl_cloud_fail(dev, CL_FAIL_CLAIM_EXPIRED, 0, "", why_text);
            return;
        }
        cl_log(dev, CL_LOG_WARN, "no connection to %s:%u (attempt %u): %s; trying again in %u ms", c->host,
               (unsigned)c->port, (unsigned)c->connect_attempts, reason != NULL ? reason : "",
               (unsigned)(at - now));
        c->state = CL_CLOUD_BACKOFF;
        c->retry_at_ms = at;
        return;
    }
    if (c->state == CL_CLOUD_CONNECT) {
        c->state = CL_CLOUD_TIME_SYNC; /* not connected: nothing to disconnect */
        cl_cloud_fail(dev, why == CL_CONNECT_TLS ? CL_FAIL_TLS_REJECTED : CL_FAIL_MQTT_REJECTED, 0, "",
                      reason);
    } else if (c->state == CL_CLOUD_RECONNECT) {
        c->state = CL_CLOUD_CREDENTIALS;
        cl_cloud_fail(dev, CL_FAIL_RECONNECT_FAILED, 0, "", reason);
    }
}

void cl_on_mqtt_disconnected(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    if (needs_claim(c->state) && c->state != CL_CLOUD_TIME_SYNC && c->state != CL_CLOUD_BACKOFF) {
        cl_cloud_fail(dev, CL_FAIL_MQTT_REJECTED, 0, "", "the connection dropped while waiting");
    } else if (c->state == CL_CLOUD_RECONNECT) {
        cl_cloud_fail(dev, CL_FAIL_RECONNECT_FAILED, 0, "", "the connection dropped");
    }
}

/* The string `name` of `obj`, or NULL. */
static const char *json_text(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void rejected(cl_device_t *dev, const cJSON *body, cl_failure_kind_t kind)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(body, "statusCode");
    double code = cJSON_IsNumber(status) ? status->valuedouble : 0;
    uint32_t status_code = code >= 0 && code <= 4294967295.0 ? (uint32_t)code : 0;
    const char *error_code = json_text(body, "errorCode");
    const char *message = json_text(body, "errorMessage");
    cl_cloud_fail(dev, kind, status_code, error_code != NULL ? error_code : "", message != NULL ? message : "");
}

/* Wipes the private key AWS sent (CreateKeysAndCertificate) before cJSON frees it. */
static void wipe_json_key(cJSON *body)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(body, "privateKey");
    if (cJSON_IsString(item) && item->valuestring != NULL) {
        mbedtls_platform_zeroize(item->valuestring, strlen(item->valuestring));
    }
}

static void certificate_accepted(cl_device_t *dev, const cJSON *body)
{
    cl_cloud_t *c = &dev->cloud;
    const char *id = json_text(body, "certificateId");
    const char *pem = json_text(body, "certificatePem");
    const char *token = json_text(body, "certificateOwnershipToken");
    const char *key = json_text(body, "privateKey");
    if (id == NULL || pem == NULL || token == NULL || (dev->cfg.keys == CL_KEYS_CREATE && key == NULL)) {
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "malformed accepted answer to the certificate request");
        return;
    }
    set_text(&c->certificate_id, id); /* reported from here on, also if the flow fails */
    set_text(&c->ownership_token, token);
    if (cl_keys_pem_cert_to_der(pem, &c->cert_der) != 0
        || (dev->cfg.keys == CL_KEYS_CREATE && cl_keys_pem_key_to_der(dev, key, &c->key_der) != 0)) {
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "the issued certificate or key does not parse");
        return;
    }
    reach(dev, CL_STAGE_CERTIFICATE_ISSUED);
    cl_log(dev, CL_LOG_INFO, "certificate %s issued", c->certificate_id);
    register_thing(dev);
}

static void thing_registered(cl_device_t *dev, const cJSON *body)
{
    cl_cloud_t *c = &dev->cloud;
    const char *thing = json_text(body, "thingName");
    set_text(&c->thing_name, thing != NULL ? thing : "");
    reach(dev, CL_STAGE_THING_REGISTERED);
    /* Persist before anything further is reported; then the claim has done its job. */
    if (dev->ports.store_identity(dev->ports.ctx, c->cert_der.data, c->cert_der.len, c->key_der.data,
                                  c->key_der.len)
        != 0) {
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "cannot store the permanent certificate");
        return;
    }
    cl_buf_wipe(&c->claim);
    set_text(&c->ownership_token, NULL);
    dev->ports.mqtt_disconnect(dev->ports.ctx);
    cl_log(dev, CL_LOG_INFO, "thing %s registered; identity stored, claim wiped; reconnecting", c->thing_name);
    cl_mqtt_connect_t params = {.host = c->host, .port = c->port, .client_id = dev->client_id,
                                .cert_der = c->cert_der.data, .cert_len = c->cert_der.len,
                                .key_der = c->key_der.data, .key_len = c->key_der.len};
    c->state = CL_CLOUD_RECONNECT;
    c->step_deadline_ms = step_deadline(dev);
    if (dev->ports.mqtt_connect(dev->ports.ctx, &params) != 0) {
        cl_cloud_fail(dev, CL_FAIL_RECONNECT_FAILED, 0, "", "cannot start the connection");
    }
}

void cl_on_mqtt_message(cl_device_t *dev, const char *topic, const uint8_t *payload, size_t len)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state != CL_CLOUD_WAIT_CERT && c->state != CL_CLOUD_WAIT_REG) {
        return;
    }
    size_t n = strlen(c->request_topic);
    if (strncmp(topic, c->request_topic, n) != 0) {
        return;
    }
    bool accepted = strcmp(topic + n, "/accepted") == 0;
    if (!accepted && strcmp(topic + n, "/rejected") != 0) {
        return;
    }
    cJSON *body = cJSON_ParseWithLength((const char *)payload, len);
    bool cert = c->state == CL_CLOUD_WAIT_CERT;
    if (body == NULL) {
        cl_cloud_fail(dev, CL_FAIL_INTERNAL, 0, "", "an answer that is not JSON");
    } else if (!accepted) {
        rejected(dev, body, cert ? CL_FAIL_CERTIFICATE_REJECTED : CL_FAIL_REGISTER_THING_REJECTED);
    } else if (cert) {
        certificate_accepted(dev, body);
    } else {
        thing_registered(dev, body);
    }
    if (body != NULL) {
        wipe_json_key(body);
        cJSON_Delete(body);
    }
}

void cl_on_credentials(cl_device_t *dev, bool ok, uint32_t http_status, const char *message)
{
    if (dev->cloud.state != CL_CLOUD_CREDENTIALS) {
        return;
    }
    if (!ok) {
        cl_cloud_fail(dev, CL_FAIL_CREDENTIALS_PROVIDER, http_status, "", message);
        return;
    }
    cl_log(dev, CL_LOG_INFO, "the credentials provider accepted the permanent certificate");
    reach(dev, CL_STAGE_DONE);
    finish(dev);
}

void cl_tick(cl_device_t *dev)
{
    cl_cloud_t *c = &dev->cloud;
    if (c->state == CL_CLOUD_OFF || c->state == CL_CLOUD_ENDED) {
        return;
    }
    uint64_t now = now_ms(dev);
    if (needs_claim(c->state) && now >= claim_deadline(dev)) {
        cl_cloud_fail(dev, CL_FAIL_CLAIM_EXPIRED, 0, "", "the claim expired");
    } else if (c->state == CL_CLOUD_BACKOFF) {
        if (now >= c->retry_at_ms) {
            connect_with_claim(dev);
        }
    } else if (now >= c->step_deadline_ms) {
        char why[240];
        snprintf(why, sizeof why, "no answer in time (%s)",
                 c->state == CL_CLOUD_CONNECT || c->state == CL_CLOUD_RECONNECT ? "CONNECT" : c->request_topic);
        cl_failure_kind_t kind = c->state == CL_CLOUD_TIME_SYNC     ? CL_FAIL_TIME_SYNC
                                 : c->state == CL_CLOUD_RECONNECT   ? CL_FAIL_RECONNECT_FAILED
                                 : c->state == CL_CLOUD_CREDENTIALS ? CL_FAIL_CREDENTIALS_PROVIDER
                                                                    : CL_FAIL_MQTT_REJECTED;
        cl_cloud_fail(dev, kind, 0, "", why);
    }
}

uint32_t cl_next_wake_ms(cl_device_t *dev)
{
    const cl_cloud_t *c = &dev->cloud;
    if (c->state == CL_CLOUD_OFF || c->state == CL_CLOUD_ENDED) {
        return UINT32_MAX;
    }
    uint64_t wake = c->state == CL_CLOUD_BACKOFF ? c->retry_at_ms : c->step_deadline_ms;
    if (needs_claim(c->state)) {
        uint64_t expiry = claim_deadline(dev);
        wake = expiry < wake ? expiry : wake;
    }
    uint64_t now = now_ms(dev);
    return wake <= now ? 0 : (wake - now > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)(wake - now));
}

bool cl_cloud_finished(const cl_device_t *dev)
{
    return dev->cloud.state == CL_CLOUD_ENDED;
}

bool cl_cloud_running(const cl_device_t *dev)
{
    return dev->cloud.state != CL_CLOUD_OFF && dev->cloud.state != CL_CLOUD_ENDED;
}

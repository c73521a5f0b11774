/*
 * The MQTT port over libmosquitto (MQTT 3.1.1, clean session, mutual TLS), driven from the host's
 * single-threaded poll loop: mosquitto_connect_async, then mosquitto_loop_read / _write / _misc when
 * poll says so. The TLS context is ours (host_tls_context: certificate and key from DER in memory,
 * the server verified against --ca and its name), given with MOSQ_OPT_SSL_CTX and
 * MOSQ_OPT_SSL_CTX_WITH_DEFAULTS = 0 so libmosquitto adds nothing to it.
 *
 * libmosquitto's callbacks only queue events; host_mqtt_service hands them to the core after the
 * loop call returned, so the core may disconnect (and this port destroy) a client from an event.
 * Each client has a generation: events of a client the core already left are dropped.
 */
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mosquitto.h>
#include <openssl/ssl.h>

enum { EV_CONNECTED, EV_CONNECT_FAILED, EV_SUBSCRIBED, EV_MESSAGE, EV_DISCONNECTED };

struct host_event {
    host_event_t *next;
    int type;
    uint32_t generation;
    bool flag;          /* EV_SUBSCRIBED: granted */
    int failure;        /* EV_CONNECT_FAILED: a cl_connect_failure_t */
    char *topic;
    uint8_t *payload;   /* wiped when freed: an accepted CreateKeysAndCertificate carries a key */
    size_t len;
    char reason[160];
};

static host_event_t *push(host_t *h, int type, bool flag, const char *reason)
{
    host_event_t *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->type = type;
    e->generation = h->generation;
    e->flag = flag;
    if (reason != NULL) {
        snprintf(e->reason, sizeof e->reason, "%s", reason);
    }
    *h->events_tail = e;
    h->events_tail = &e->next;
    return e;
}

/* A failed connection attempt, and what failed: see cl_connect_failure_t. */
static void connect_failed(host_t *h, cl_connect_failure_t why, const char *reason)
{
    host_event_t *e = push(h, EV_CONNECT_FAILED, false, reason);
    if (e != NULL) {
        e->failure = (int)why;
    }
}

/* What a libmosquitto error before CONNACK means (errno read at once, as the call left it). */
static cl_connect_failure_t classify(int rc)
{
    int err = errno;
    if (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_CONN_LOST) {
        return CL_CONNECT_TLS; /* the handshake failed, or the server closed the connection in it */
    }
    if (rc == MOSQ_ERR_EAI || rc == MOSQ_ERR_NO_CONN
        || (rc == MOSQ_ERR_ERRNO && (err == ECONNREFUSED || err == ETIMEDOUT || err == ENETUNREACH
                                     || err == EHOSTUNREACH || err == ECONNRESET))) {
        return CL_CONNECT_NETWORK;
    }
    return CL_CONNECT_MQTT;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    host_t *h = obj;
    if (rc == 0) {
        h->mqtt_connected = true;
        push(h, EV_CONNECTED, false, NULL);
    } else {
        connect_failed(h, CL_CONNECT_MQTT, mosquitto_connack_string(rc));
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted)
{
    (void)mosq;
    (void)mid;
    push(obj, EV_SUBSCRIBED, count >= 1 && granted[0] <= 2, NULL);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    host_event_t *e = push(obj, EV_MESSAGE, false, NULL);
    if (e == NULL) {
        return;
    }
    e->topic = strdup(msg->topic);
    e->payload = malloc(msg->payloadlen > 0 ? (size_t)msg->payloadlen : 1);
    if (e->payload != NULL && msg->payloadlen > 0) {
        memcpy(e->payload, msg->payload, (size_t)msg->payloadlen);
    }
    e->len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
}

static void free_event(host_event_t *e)
{
    if (e->payload != NULL) {
        mbedtls_platform_zeroize(e->payload, e->len);
    }
    free(e->payload);
    free(e->topic);
    free(e);
}

/* Sets the current client aside (destroyed at the next loop turn). `left`: the core left it, so
 * its queued events are dropped. */
static void retire(host_t *h, bool left)
{
    if (h->mosq == NULL) {
        return;
    }
    mosquitto_disconnect(h->mosq);
    for (size_t i = 0; i < sizeof h->retired / sizeof h->retired[0]; i++) {
        if (h->retired[i] == NULL) {
            h->retired[i] = h->mosq;
            h->mosq = NULL;
            break;
        }
    }
    if (h->mosq != NULL) { /* no slot: destroy now (we are not inside libmosquitto here) */
        mosquitto_destroy(h->mosq);
        h->mosq = NULL;
    }
    h->mqtt_connected = false;
    if (left) {
        h->generation++;
    }
}

void host_mqtt_cleanup(host_t *h, bool all)
{
    for (size_t i = 0; i < sizeof h->retired / sizeof h->retired[0]; i++) {
        if (h->retired[i] != NULL) {
            mosquitto_destroy(h->retired[i]);
            h->retired[i] = NULL;
        }
    }
    if (all) {
        if (h->mosq != NULL) {
            mosquitto_destroy(h->mosq);
            h->mosq = NULL;
        }
        while (h->events != NULL) {
            host_event_t *e = h->events;
            h->events = e->next;
            free_event(e);
        }
        h->events_tail = &h->events;
    }
}

int host_mqtt_connect(void *ctx, const cl_mqtt_connect_t *p)
{
    host_t *h = ctx;
    retire(h, true);
    char why[120];
    SSL_CTX *tls = host_tls_context(h->ca_file, p->host, p->cert_der, p->cert_len, p->key_der, p->key_len,
                                    why, sizeof why);
    if (tls == NULL) {
        connect_failed(h, CL_CONNECT_TLS, why);
        return 0; /* reported as an event, like any TLS failure */
    }
    struct mosquitto *mosq = mosquitto_new(p->client_id, true, h);
    if (mosq == NULL) {
        SSL_CTX_free(tls);
        return -1;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, tls); /* takes its own reference */
    SSL_CTX_free(tls);
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    h->mosq = mosq;
    h->mqtt_connected = false;
    int rc = mosquitto_connect_async(mosq, p->host, p->port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        connect_failed(h, classify(rc), mosquitto_strerror(rc));
        retire(h, false);
    }
    return 0;
}

int host_mqtt_subscribe(void *ctx, const char *topic)
{
    host_t *h = ctx;
    return h->mosq != NULL && mosquitto_subscribe(h->mosq, NULL, topic, 1) == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int host_mqtt_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    host_t *h = ctx;
    return h->mosq != NULL
                   && mosquitto_publish(h->mosq, NULL, topic, (int)len, payload, 1, false) == MOSQ_ERR_SUCCESS
               ? 0
               : -1;
}

void host_mqtt_disconnect(void *ctx)
{
    retire(ctx, true);
}

int host_mqtt_socket(host_t *h, bool *want_write)
{
    *want_write = false;
    if (h->mosq == NULL) {
        return -1;
    }
    *want_write = mosquitto_want_write(h->mosq);
    return mosquitto_socket(h->mosq);
}

/* A loop call failed: before CONNACK it is a failed connection (TLS unless it got as far as MQTT),
 * afterwards a dropped one. */
static void lost(host_t *h, int rc)
{
    if (h->mqtt_connected) {
        push(h, EV_DISCONNECTED, false, mosquitto_strerror(rc));
    } else {
        cl_connect_failure_t why = classify(rc);
        connect_failed(h, why, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    retire(h, false);
}

void host_mqtt_service(host_t *h, bool readable, bool writable)
{
    if (h->mosq != NULL) {
        int rc = MOSQ_ERR_SUCCESS;
        if (readable) {
            rc = mosquitto_loop_read(h->mosq, 1);
        }
        if (rc == MOSQ_ERR_SUCCESS && writable && h->mosq != NULL) {
            rc = mosquitto_loop_write(h->mosq, 1);
        }
        if (rc == MOSQ_ERR_SUCCESS && h->mosq != NULL) {
            rc = mosquitto_loop_misc(h->mosq);
        }
        if (rc != MOSQ_ERR_SUCCESS && h->mosq != NULL) {
            lost(h, rc);
        }
    }
    /* Hand the events over; the core may connect or disconnect from them (new events queue behind). */
    while (h->events != NULL) {
        host_event_t *e = h->events;
        h->events = e->next;
        if (h->events == NULL) {
            h->events_tail = &h->events;
        }
        if (e->generation == h->generation) {
            switch (e->type) {
            case EV_CONNECTED:
                cl_on_mqtt_connected(h->dev);
                break;
            case EV_CONNECT_FAILED:
                cl_on_mqtt_connect_failed(h->dev, (cl_connect_failure_t)e->failure, e->reason);
                break;
            case EV_SUBSCRIBED:
                cl_on_mqtt_subscribed(h->dev, e->flag);
                break;
            case EV_MESSAGE:
                cl_on_mqtt_message(h->dev, e->topic != NULL ? e->topic : "", e->payload, e->len);
                break;
            case EV_DISCONNECTED:
                cl_on_mqtt_disconnected(h->dev);
                break;
            }
        }
        free_event(e);
    }
}

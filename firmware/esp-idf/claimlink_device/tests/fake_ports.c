/* The scripted ports (fake_ports.h). */
#include "fake_ports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *dup_bytes(const void *p, size_t n)
{
    void *out = malloc(n == 0 ? 1 : n);
    memcpy(out, p, n);
    return out;
}

static int f_connect(void *ctx, const cl_mqtt_connect_t *p)
{
    fake_t *f = ctx;
    f->connects++;
    snprintf(f->connect_host, sizeof f->connect_host, "%s", p->host);
    f->connect_port = p->port;
    snprintf(f->connect_client_id, sizeof f->connect_client_id, "%s", p->client_id);
    free(f->connect_key);
    free(f->connect_cert);
    f->connect_key = dup_bytes(p->key_der, p->key_len);
    f->connect_key_len = p->key_len;
    f->connect_cert = dup_bytes(p->cert_der, p->cert_len);
    f->connect_cert_len = p->cert_len;
    return 0;
}

static int f_subscribe(void *ctx, const char *topic)
{
    fake_t *f = ctx;
    if (f->subscribes < FAKE_MAX) {
        snprintf(f->subscribed[f->subscribes], sizeof f->subscribed[0], "%s", topic);
    }
    f->subscribes++;
    return 0;
}

static int f_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    fake_t *f = ctx;
    if (f->publishes < FAKE_MAX) {
        snprintf(f->published_topic[f->publishes], sizeof f->published_topic[0], "%s", topic);
        f->published[f->publishes] = calloc(1, len + 1);
        memcpy(f->published[f->publishes], payload, len);
    }
    f->publishes++;
    return 0;
}

static void f_disconnect(void *ctx)
{
    ((fake_t *)ctx)->disconnects++;
}

static int f_store(void *ctx, const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len)
{
    fake_t *f = ctx;
    f->stores++;
    if (f->store_fails) {
        return -1;
    }
    free(f->stored_cert);
    free(f->stored_key);
    f->stored_cert = dup_bytes(cert, cert_len);
    f->stored_cert_len = cert_len;
    f->stored_key = dup_bytes(key, key_len);
    f->stored_key_len = key_len;
    f->stored_at_connects = f->connects;
    return 0;
}

static uint64_t f_mono(void *ctx)
{
    return ((fake_t *)ctx)->now_ms;
}

static uint64_t f_wall(void *ctx)
{
    return ((fake_t *)ctx)->wall;
}

static int f_random(void *ctx, uint8_t *out, size_t len)
{
    fake_t *f = ctx;
    for (size_t i = 0; i < len; i++) {
        f->rng_state ^= f->rng_state << 13;
        f->rng_state ^= f->rng_state >> 17;
        f->rng_state ^= f->rng_state << 5;
        out[i] = (uint8_t)(f->rng_state >> 24);
    }
    return 0;
}

static void f_log(void *ctx, cl_log_level_t level, const char *line)
{
    fake_t *f = ctx;
    size_t n = strlen(line);
    f->log = realloc(f->log, f->log_len + n + 2);
    memcpy(f->log + f->log_len, line, n);
    f->log_len += n;
    f->log[f->log_len++] = '\n';
    f->log[f->log_len] = '\0';
    if (f->echo_log) {
        fprintf(stderr, "%c (%llu) claimlink: %s\n", "?EWID"[level], (unsigned long long)f->now_ms, line);
    }
}

static int f_time_sync(void *ctx)
{
    ((fake_t *)ctx)->time_syncs++;
    return 0;
}

static int f_credentials(void *ctx, const cl_mqtt_connect_t *identity, const char *thing)
{
    fake_t *f = ctx;
    (void)identity;
    f->credentials++;
    snprintf(f->credentials_thing, sizeof f->credentials_thing, "%s", thing);
    return 0;
}

cl_ports_t fake_ports(fake_t *f, bool with_credentials)
{
    if (f->rng_state == 0) {
        f->rng_state = 0x12345678u;
    }
    return (cl_ports_t){.ctx = f, .mqtt_connect = f_connect, .mqtt_subscribe = f_subscribe,
                        .mqtt_publish = f_publish, .mqtt_disconnect = f_disconnect,
                        .store_identity = f_store, .monotonic_ms = f_mono, .wall_epoch = f_wall,
                        .random = f_random, .log = f_log, .time_sync_start = f_time_sync,
                        .credentials_start = with_credentials ? f_credentials : NULL};
}

void fake_free(fake_t *f)
{
    free(f->log);
    free(f->connect_key);
    free(f->connect_cert);
    free(f->stored_cert);
    free(f->stored_key);
    for (int i = 0; i < FAKE_MAX && i < f->publishes; i++) {
        free(f->published[i]);
    }
    memset(f, 0, sizeof *f);
}

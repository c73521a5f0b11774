/*
 * The POSIX host program's shared state: the device, the settings from the command line, the
 * MQTT port over libmosquitto (host_mqtt.c), the credentials-provider check (host_credentials.c)
 * and the small ports (host_ports.c).
 */
#ifndef CL_HOST_H
#define CL_HOST_H

#include "claimlink_device.h"

#include <stdbool.h>
#include <stdint.h>

/** A libmosquitto event, queued by its callbacks and handed to the core after the loop call
 *  returned (so the core never runs inside libmosquitto, and may destroy the client). */
typedef struct host_event host_event_t;

typedef struct {
    cl_device_t *dev;
    /* settings */
    const char *ca_file;
    const char *storage_dir;
    const char *credentials;  /* HOST:PORT or NULL */
    const char *role_alias;
    uint32_t time_sync_ms;
    uint64_t started_ms;
    /* time sync: pending until this monotonic time (0 = none) */
    uint64_t time_sync_at;
    bool time_synced;
    /* MQTT */
    struct mosquitto *mosq;
    struct mosquitto *retired[4]; /* disconnected clients, destroyed at the top of the next loop turn */
    uint32_t generation;          /* events of an older client are dropped */
    bool mqtt_connected;          /* CONNACK accepted */
    host_event_t *events;
    host_event_t **events_tail;
    /* credentials: the worker thread writes its result to this pipe */
    int credentials_pipe[2];
} host_t;

/** Milliseconds on CLOCK_MONOTONIC. */
uint64_t host_now_ms(void);

/** The ports for the core (host_ports.c). */
cl_ports_t host_ports(host_t *h);

/* host_mqtt.c */
int host_mqtt_connect(void *ctx, const cl_mqtt_connect_t *params);
int host_mqtt_subscribe(void *ctx, const char *topic);
int host_mqtt_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len);
void host_mqtt_disconnect(void *ctx);
/** The client's socket (or -1) and whether it wants to write. */
int host_mqtt_socket(host_t *h, bool *want_write);
/** Reads/writes/keeps alive after poll, then hands the queued events to the core. */
void host_mqtt_service(host_t *h, bool readable, bool writable);
/** Destroys retired clients; at exit, the current one too. */
void host_mqtt_cleanup(host_t *h, bool all);

/* host_credentials.c */
int host_credentials_start(void *ctx, const cl_mqtt_connect_t *identity, const char *thing_name);
/** Reads the worker's result from the pipe and hands it to the core. */
void host_credentials_service(host_t *h);

/* an SSL_CTX for mutual TLS from DER in memory, verifying the server against the CA file and host */
struct ssl_ctx_st;
struct ssl_ctx_st *host_tls_context(const char *ca_file, const char *host, const uint8_t *cert_der,
                                    size_t cert_len, const uint8_t *key_der, size_t key_len, char *why,
                                    size_t why_size);

void host_log(host_t *h, cl_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * Scripted ports for the tests: a manual clock, a deterministic RNG, a log sink that keeps every
 * line, and an MQTT "client" that records what the core asked (connects, subscriptions, publishes)
 * so that a test can answer as AWS would by calling the cl_on_* events itself.
 */
#ifndef CL_FAKE_PORTS_H
#define CL_FAKE_PORTS_H

#include "claimlink_device.h"

#include <stddef.h>
#include <stdint.h>

#define FAKE_MAX 16

typedef struct {
    uint64_t now_ms;
    uint64_t wall;          /* 0 until the test says the clock is synced */
    uint32_t rng_state;
    char *log;              /* every line, '\n'-separated */
    size_t log_len;
    bool echo_log;
    int connects;
    char connect_host[128];
    uint16_t connect_port;
    char connect_client_id[128];
    uint8_t *connect_key;   /* a copy of the last key given to connect (the test checks and frees it) */
    size_t connect_key_len;
    uint8_t *connect_cert;
    size_t connect_cert_len;
    int subscribes;
    char subscribed[FAKE_MAX][192];
    int publishes;
    char published_topic[FAKE_MAX][192];
    char *published[FAKE_MAX];
    int disconnects;
    int time_syncs;
    int stores;
    bool store_fails;
    uint8_t *stored_cert;
    size_t stored_cert_len;
    uint8_t *stored_key;
    size_t stored_key_len;
    int stored_at_connects; /* the number of connects when the identity was stored */
    int credentials;
    char credentials_thing[128];
} fake_t;

/** Ports over `f` (credentials_start only when `with_credentials`). */
cl_ports_t fake_ports(fake_t *f, bool with_credentials);
/** Frees what the fake copied. */
void fake_free(fake_t *f);

#endif

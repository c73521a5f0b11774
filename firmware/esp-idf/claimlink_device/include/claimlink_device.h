/*
 * claimlink_device: the device side of claimlink's `aws-claim` / `aws-status` protocomm endpoints and
 * the AWS IoT fleet provisioning ("by trusted user") that a device runs with the claim it received
 * (docs/protocol.md sections 5, 6, 9 and 12).
 *
 * The core is portable C (protobuf-c, cJSON, mbedTLS 2.28 or 3.x; no ESP-IDF header) and event
 * driven: it never blocks and never starts a thread. The firmware hands it
 *   - the plaintext requests of the two endpoints (cl_claim_handle, cl_status_handle), as protocomm
 *     hands them to an endpoint handler;
 *   - the Wi-Fi events (cl_wifi_event) and the end of a protocomm session (cl_session_ended);
 *   - the outcome of what the core asked of its ports (cl_on_mqtt_*, cl_on_time_synced,
 *     cl_on_credentials) and the passing of time (cl_tick, at the latest when cl_next_wake_ms says).
 * It is not thread safe: a port that calls it from several tasks serialises the calls (a mutex).
 * No port function may call back into the core from inside itself: events come later, from the
 * port's own loop or task.
 */
#ifndef CLAIMLINK_DEVICE_H
#define CLAIMLINK_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The device: one per firmware. */
typedef struct cl_device cl_device_t;

/** Log levels, as ESP-IDF's E/W/I/D. */
typedef enum { CL_LOG_ERROR = 1, CL_LOG_WARN = 2, CL_LOG_INFO = 3, CL_LOG_DEBUG = 4 } cl_log_level_t;

/** How the device obtains its permanent certificate. */
typedef enum {
    CL_KEYS_CSR = 0,    /**< CreateCertificateFromCsr with an ECC P-256 key made on the device. */
    CL_KEYS_CREATE = 1, /**< CreateKeysAndCertificate: AWS makes the key. */
} cl_keys_mode_t;

/** Wi-Fi events, the firmware's view of its station (PIPE.md's event bytes). */
typedef enum {
    CL_WIFI_APPLIED = 0,      /**< ApplyConfig accepted: joining; a claim held now is the one used. */
    CL_WIFI_GOT_IP = 1,       /**< an address: with a claim, the cloud half starts. */
    CL_WIFI_AUTH_FAILED = 2,  /**< gave up: wrong passphrase. */
    CL_WIFI_NOT_FOUND = 3,    /**< gave up: no such network. */
    CL_WIFI_DHCP_TIMEOUT = 4, /**< associated, no address in time. */
    CL_WIFI_RESET = 5,        /**< Reset / Reprov: nothing applied; a held claim stays. */
} cl_wifi_event_t;

/** Why an MQTT connection attempt failed. */
typedef enum {
    CL_CONNECT_TLS = 0,  /**< the TLS handshake failed or was refused. */
    CL_CONNECT_MQTT = 1, /**< the broker refused the CONNECT, or the connection dropped before CONNACK. */
    CL_CONNECT_NETWORK = 2, /**< no TCP connection (refused, unreachable, timed out, name not resolved):
                                 retried with backoff while the claim has time (docs/protocol.md §12). */
} cl_connect_failure_t;

/** The stages of aws-status (docs/protocol.md section 6), same numbers as CloudStage. */
typedef enum {
    CL_STAGE_IDLE = 0, CL_STAGE_CLAIM_RECEIVED, CL_STAGE_WIFI_CONNECTING, CL_STAGE_WIFI_CONNECTED,
    CL_STAGE_TIME_SYNCED, CL_STAGE_MQTT_CONNECTED_WITH_CLAIM, CL_STAGE_CERTIFICATE_ISSUED,
    CL_STAGE_THING_REGISTERED, CL_STAGE_RECONNECTED_WITH_PERMANENT, CL_STAGE_DONE, CL_STAGE_FAILED,
} cl_stage_t;

/** Failure kinds (CloudFailureKind). */
typedef enum {
    CL_FAIL_NONE = 0, CL_FAIL_WIFI_AUTH, CL_FAIL_WIFI_NOT_FOUND, CL_FAIL_DHCP_TIMEOUT, CL_FAIL_TIME_SYNC,
    CL_FAIL_CLAIM_EXPIRED, CL_FAIL_TLS_REJECTED, CL_FAIL_MQTT_REJECTED, CL_FAIL_CERTIFICATE_REJECTED,
    CL_FAIL_REGISTER_THING_REJECTED, CL_FAIL_RECONNECT_FAILED, CL_FAIL_CREDENTIALS_PROVIDER,
    CL_FAIL_INTERNAL,
} cl_failure_kind_t;

/** What the core asks the MQTT port to connect with. Valid only during the call: copy what you keep
 *  (the key is wiped as soon as the call returns). */
typedef struct {
    const char *host;
    uint16_t port;
    const char *client_id;
    const uint8_t *cert_der;
    size_t cert_len;
    const uint8_t *key_der; /**< PKCS#1 (RSA) or SEC1 (EC) DER. */
    size_t key_len;
} cl_mqtt_connect_t;

/** The ports: what the core needs from the platform. Functions returning int return 0 on success. */
typedef struct {
    void *ctx; /**< passed to every function. */
    /** Starts connecting (MQTT 3.1.1, clean session, over mutual TLS, trusting the platform's CA).
     *  Outcome: cl_on_mqtt_connected or cl_on_mqtt_connect_failed. */
    int (*mqtt_connect)(void *ctx, const cl_mqtt_connect_t *params);
    /** Subscribes at QoS 1. Outcome: cl_on_mqtt_subscribed. */
    int (*mqtt_subscribe)(void *ctx, const char *topic);
    /** Publishes at QoS 1 (the answer comes as a message on the accepted/rejected topic). */
    int (*mqtt_publish)(void *ctx, const char *topic, const uint8_t *payload, size_t len);
    /** Disconnects (no event needed afterwards; a late cl_on_mqtt_disconnected is ignored). */
    void (*mqtt_disconnect)(void *ctx);
    /** Writes the permanent identity to non-volatile storage before anything further is reported. */
    int (*store_identity)(void *ctx, const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
                          size_t key_len);
    /** Milliseconds on a monotonic clock. */
    uint64_t (*monotonic_ms)(void *ctx);
    /** Wall clock, epoch seconds; 0 while unknown (before the time sync). */
    uint64_t (*wall_epoch)(void *ctx);
    /** Cryptographically secure random bytes. */
    int (*random)(void *ctx, uint8_t *out, size_t len);
    /** One log line (no newline). Never carries key material. */
    void (*log)(void *ctx, cl_log_level_t level, const char *line);
    /** Starts the clock sync (SNTP). Outcome: cl_on_time_synced. */
    int (*time_sync_start)(void *ctx);
    /** Optional (NULL = skip): after the reconnection, proves the permanent certificate at the
     *  credentials provider. Outcome: cl_on_credentials. */
    int (*credentials_start)(void *ctx, const cl_mqtt_connect_t *identity, const char *thing_name);
} cl_ports_t;

/** Settings (Kconfig on ESP-IDF, the command line on the POSIX host). */
typedef struct {
    uint32_t max_bundle_length;  /**< the largest claim bundle accepted (8192). */
    cl_keys_mode_t keys;         /**< CSR (default) or CreateKeysAndCertificate. */
    uint32_t answer_timeout_ms;  /**< each wait for CONNACK/SUBACK/an answer (20000). */
    uint16_t default_port;       /**< MQTT port when iot_endpoint names none (8883). */
    const char *client_id;       /**< the device's stable MQTT client id (copied). */
} cl_config_t;

/** The defaults above. */
cl_config_t cl_config_default(void);

/** A device in its initial state (no claim, nothing applied); NULL when out of memory. */
cl_device_t *cl_device_new(const cl_config_t *config, const cl_ports_t *ports);
/** Wipes every claim and key held and frees the device. */
void cl_device_free(cl_device_t *dev);

/** The aws-claim endpoint handler. On 0, *out (malloc'd, the caller frees it) is the plaintext
 *  answer; -1 means the request was malformed (the endpoint handler fails: ESP_FAIL), with the state
 *  kept as it was. */
int cl_claim_handle(cl_device_t *dev, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
/** The aws-status endpoint handler, answering from memory. Same conventions. */
int cl_status_handle(cl_device_t *dev, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
/** A Wi-Fi event; ip is the IPv4 address for CL_WIFI_GOT_IP (else NULL). */
void cl_wifi_event(cl_device_t *dev, cl_wifi_event_t event, const uint8_t ip[4]);
/** The protocomm session ended: a partial claim transfer is wiped. */
void cl_session_ended(cl_device_t *dev);

/** MQTT port events. */
void cl_on_mqtt_connected(cl_device_t *dev);
void cl_on_mqtt_connect_failed(cl_device_t *dev, cl_connect_failure_t why, const char *reason);
void cl_on_mqtt_subscribed(cl_device_t *dev, bool granted);
void cl_on_mqtt_message(cl_device_t *dev, const char *topic, const uint8_t *payload, size_t len);
void cl_on_mqtt_disconnected(cl_device_t *dev);
/** The time sync ended (ok = the wall clock is now right). */
void cl_on_time_synced(cl_device_t *dev, bool ok);
/** The credentials provider answered: ok, or its HTTP status (0 = no answer) and message. */
void cl_on_credentials(cl_device_t *dev, bool ok, uint32_t http_status, const char *message);

/** Checks the deadlines (the claim's expiry, the answer timeout). Call it at least when
 *  cl_next_wake_ms says. */
void cl_tick(cl_device_t *dev);
/** Milliseconds until cl_tick has something to do (UINT32_MAX: nothing pending). */
uint32_t cl_next_wake_ms(cl_device_t *dev);

/** What aws-status would say now, for the firmware (e.g. to stop provisioning once it ended). */
cl_stage_t cl_stage(const cl_device_t *dev);
/** True once the cloud half ended (Done or Failed). */
bool cl_cloud_finished(const cl_device_t *dev);
/** True while a complete claim is held (committed, not yet used). */
bool cl_holds_claim(const cl_device_t *dev);
/** True while a claim transfer is in progress (a Begin without its commit). */
bool cl_holds_partial_claim(const cl_device_t *dev);
/** True while the cloud half runs (it holds its own copy of the claim until it ends). */
bool cl_cloud_running(const cl_device_t *dev);

#ifdef __cplusplus
}
#endif
#endif

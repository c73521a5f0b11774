/*
 * The core's internal state and the functions its files share. Not part of the API.
 */
#ifndef CL_INTERNAL_H
#define CL_INTERNAL_H

#include "claimlink_device.h"
#include "claimlink_aws.pb-c.h"

#include <mbedtls/version.h>
#include <mbedtls/pk.h>

/* mbedTLS 3 made struct fields private and added RNG arguments to a few functions: the guards live
 * here and in cl_bundle.c / cl_keys.c, everything else is one code path. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define CL_MBEDTLS3 1
#else
#define CL_MBEDTLS3 0
#endif

/** The most a failure message or a thing name may take (AWS's are shorter). */
#define CL_TEXT_MAX 512

/** The Wi-Fi station, as the firmware sees it. */
typedef enum { CL_WIFI_NONE, CL_WIFI_JOINING, CL_WIFI_CONNECTED, CL_WIFI_FAILED } cl_wifi_state_t;

/** Where the cloud half is. */
typedef enum {
    CL_CLOUD_OFF,        /* not started */
    CL_CLOUD_TIME_SYNC,  /* waiting for the clock */
    CL_CLOUD_BACKOFF,    /* waiting to try the connection with the claim again */
    CL_CLOUD_CONNECT,    /* waiting for CONNACK with the claim */
    CL_CLOUD_SUB_CERT,   /* waiting for the two SUBACKs of the certificate request */
    CL_CLOUD_WAIT_CERT,  /* waiting for accepted/rejected */
    CL_CLOUD_SUB_REG,    /* SUBACKs of RegisterThing */
    CL_CLOUD_WAIT_REG,   /* RegisterThing's answer */
    CL_CLOUD_RECONNECT,  /* waiting for CONNACK with the permanent certificate */
    CL_CLOUD_CREDENTIALS,/* waiting for the credentials provider */
    CL_CLOUD_ENDED,      /* Done or Failed */
} cl_cloud_state_t;

/** A buffer of bytes the core owns (wiped before it is freed). */
typedef struct {
    uint8_t *data;
    size_t len;
} cl_buf_t;

/** The cloud half. */
typedef struct {
    cl_cloud_state_t state;
    cl_stage_t stage;                /* the last stage reached */
    cl_buf_t claim;                  /* the claim bundle it runs with (its own copy) */
    uint64_t claim_expiry_ms;        /* on the monotonic clock */
    uint64_t claim_expiry_epoch;     /* expires_at_epoch */
    uint64_t step_deadline_ms;       /* the current wait's answer timeout */
    int subacks;                     /* SUBACKs still awaited */
    uint32_t connect_attempts;       /* connections with the claim tried so far */
    uint64_t retry_at_ms;            /* CL_CLOUD_BACKOFF: when to try again */
    char request_topic[192];         /* the request being answered */
    char *pending_payload;           /* published once both SUBACKs came */
    char *host;                      /* the MQTT endpoint, kept for the reconnection */
    uint16_t port;
    cl_buf_t key_der;                /* the permanent key (CSR: made here; create: AWS's) */
    cl_buf_t cert_der;               /* the permanent certificate */
    char *ownership_token;
    char *certificate_id;            /* from CertificateIssued on */
    char *thing_name;                /* from ThingRegistered on */
    cl_failure_kind_t failure;
    uint32_t status_code;
    char *error_code;
    char *error_message;
} cl_cloud_t;

struct cl_device {
    cl_config_t cfg;
    char *client_id;
    cl_ports_t ports;
    /* the transfer in progress (partial claim): one buffer of total_length bytes */
    cl_buf_t rx;
    uint32_t rx_total;
    bool rx_active;
    uint8_t rx_sha256[32];
    /* the claim held (committed): the bundle itself, one buffer */
    cl_buf_t claim;
    uint64_t claim_committed_ms;
    uint32_t claim_gen;         /* changes with every commit */
    uint32_t applied_claim_gen; /* the claim held at APPLIED (0: none) */
    /* Wi-Fi */
    cl_wifi_state_t wifi;
    cl_failure_kind_t wifi_failure;
    char ip4[16];
    cl_cloud_t cloud;
};

/* cl_alloc.c: memory that is wiped when freed, and the protobuf-c allocator over it */
void *cl_alloc(size_t size);
void cl_free(void *p);
char *cl_strndup(const char *s, size_t max);
void cl_buf_wipe(cl_buf_t *b);
extern ProtobufCAllocator cl_pb_allocator;
/** The bytes the core holds through cl_alloc now and at most since the last reset. */
void cl_heap_stats(size_t *live, size_t *peak);
void cl_heap_reset_peak(void);

/* cl_log.c */
void cl_log(const cl_device_t *dev, cl_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int cl_rng(void *dev, unsigned char *out, size_t len);

/* cl_bundle.c: the bundle's check and the claim's identity */
/** Checks a bundle (decodes, exactly one key, primes plausible, n = the certificate's modulus). */
bool cl_bundle_valid(const cl_device_t *dev, const uint8_t *bundle, size_t len);
/** Decodes a bundle with the wiping allocator (free with claim_bundle__free_unpacked(b, &cl_pb_allocator)). */
ClaimBundle *cl_bundle_decode(const uint8_t *bundle, size_t len);
/** The claim key as DER (PKCS#1 when rebuilt from primes), in a wiped-on-free buffer. */
int cl_bundle_key_der(const cl_device_t *dev, const ClaimBundle *b, cl_buf_t *out);

/* cl_keys.c: the permanent key and certificate */
int cl_keys_make_csr(cl_device_t *dev, cl_buf_t *key_der, char **csr_pem);
int cl_keys_pem_key_to_der(cl_device_t *dev, const char *pem, cl_buf_t *key_der);
int cl_keys_pem_cert_to_der(const char *pem, cl_buf_t *cert_der);

/* cl_claim.c */
void cl_claim_wipe_all(cl_device_t *dev);

/* cl_cloud.c */
void cl_cloud_start(cl_device_t *dev);
void cl_cloud_reset(cl_device_t *dev);
void cl_cloud_fail(cl_device_t *dev, cl_failure_kind_t kind, uint32_t status, const char *code,
                   const char *message);

/* cl_status.c */
/** What aws-status reports; the fields are those of RespGetCloudStatus. */
typedef struct {
    cl_stage_t stage;
    const char *ip4_addr;
    const char *thing_name;
    const char *certificate_id;
    cl_failure_kind_t failure;
    uint32_t status_code;
    const char *error_code;
    const char *error_message;
} cl_status_view_t;
void cl_status_view(const cl_device_t *dev, cl_status_view_t *view);
int cl_status_pack(const cl_status_view_t *view, uint8_t **out, size_t *out_len);

#endif

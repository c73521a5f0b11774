/*
 * The ESP-IDF port of claimlink_device: registers `aws-claim` and `aws-status` with
 * network_provisioning, feeds the core the provisioning manager's and the IP stack's events, and
 * gives it esp-mqtt (over esp-tls), NVS, SNTP, esp_fill_random and esp_log.
 *
 * NOT COMPILED on the machine this was written on (no ESP-IDF toolchain there): written from
 * ESP-IDF's documented APIs (see README.md, "ESP-IDF port").
 *
 * Use (see examples/claimlink_device/main/main.c):
 *   network_prov_mgr_init(...);
 *   claimlink_esp_idf_init(&cfg);               // before start: endpoints, app info, auto-stop off
 *   network_prov_mgr_start_provisioning(...);
 *   claimlink_esp_idf_register_endpoints();     // after start
 * The port stops provisioning itself stop_delay_ms after the cloud half ended.
 */
#pragma once

#include "claimlink_device.h"
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *client_id;      /**< the device's stable MQTT client id (serial / thing name) */
    const char *ca_pem;         /**< trust anchors for AWS IoT (Amazon's root CAs), NUL-terminated PEM */
    const char *sntp_server;    /**< e.g. "pool.ntp.org" */
    const char *nvs_namespace;  /**< where the permanent certificate and key go ("claimlink") */
    cl_keys_mode_t keys;        /**< CL_KEYS_CSR (default) or CL_KEYS_CREATE */
    uint32_t max_bundle_length; /**< CONFIG_CLAIMLINK_MAX_BUNDLE */
    uint32_t answer_timeout_ms; /**< CONFIG_CLAIMLINK_ANSWER_TIMEOUT_MS */
    uint32_t stop_delay_ms;     /**< how long provisioning stays up after the cloud half ended */
} claimlink_esp_idf_config_t;

/** The settings from Kconfig (client_id and ca_pem are left to the application). */
claimlink_esp_idf_config_t claimlink_esp_idf_default_config(void);

/** After network_prov_mgr_init, before network_prov_mgr_start_provisioning. */
esp_err_t claimlink_esp_idf_init(const claimlink_esp_idf_config_t *config);

/** After network_prov_mgr_start_provisioning. */
esp_err_t claimlink_esp_idf_register_endpoints(void);

#ifdef __cplusplus
}
#endif

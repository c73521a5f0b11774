/*
 * The device: its life, the Wi-Fi events (docs/protocol.md section 9, "The claim" table) and the end
 * of a protocomm session.
 */
#include "cl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cl_config_t cl_config_default(void)
{
    return (cl_config_t){.max_bundle_length = 8192, .keys = CL_KEYS_CSR, .answer_timeout_ms = 20000,
                         .default_port = 8883, .client_id = "claimlink-device"};
}

cl_device_t *cl_device_new(const cl_config_t *config, const cl_ports_t *ports)
{
    if (ports->monotonic_ms == NULL || ports->random == NULL) {
        return NULL;
    }
    cl_device_t *dev = cl_alloc(sizeof *dev);
    if (dev == NULL) {
        return NULL;
    }
    memset(dev, 0, sizeof *dev);
    dev->cfg = *config;
    dev->ports = *ports;
    dev->client_id = cl_strndup(config->client_id != NULL ? config->client_id : "claimlink-device", 128);
    if (dev->client_id == NULL) {
        cl_free(dev);
        return NULL;
    }
    dev->cfg.client_id = dev->client_id;
    return dev;
}

void cl_device_free(cl_device_t *dev)
{
    if (dev == NULL) {
        return;
    }
    cl_claim_wipe_all(dev);
    cl_cloud_reset(dev);
    cl_free(dev->client_id);
    cl_free(dev); /* wipes */
}

void cl_wifi_event(cl_device_t *dev, cl_wifi_event_t event, const uint8_t ip[4])
{
    switch (event) {
    case CL_WIFI_APPLIED:
        dev->wifi = CL_WIFI_JOINING;
        dev->wifi_failure = CL_FAIL_NONE;
        dev->ip4[0] = '\0';
        dev->applied_claim_gen = dev->claim.data != NULL ? dev->claim_gen : 0;
        cl_log(dev, CL_LOG_INFO, "Wi-Fi settings applied (%s claim)",
               dev->applied_claim_gen != 0 ? "with a" : "without a");
        break;
    case CL_WIFI_GOT_IP:
        if (ip == NULL || dev->wifi == CL_WIFI_CONNECTED) {
            break;
        }
        dev->wifi = CL_WIFI_CONNECTED;
        snprintf(dev->ip4, sizeof dev->ip4, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
        cl_log(dev, CL_LOG_INFO, "got IP %s", dev->ip4);
        /* The claim this join uses: the one held at APPLIED, if it is still held. */
        bool idle = dev->cloud.state == CL_CLOUD_OFF || dev->cloud.state == CL_CLOUD_ENDED;
        if (idle && dev->claim.data != NULL && dev->applied_claim_gen != 0
            && dev->applied_claim_gen == dev->claim_gen) {
            cl_cloud_start(dev); /* also after an earlier run ended: a fresh claim, a new join */
        } else if (idle) {
            cl_log(dev, CL_LOG_INFO, "no claim for this join: Wi-Fi only");
        }
        break;
    case CL_WIFI_AUTH_FAILED:
    case CL_WIFI_NOT_FOUND:
    case CL_WIFI_DHCP_TIMEOUT:
        /* Not a failure of provisioning: the claim stays for a corrected passphrase (section 8). */
        dev->wifi = CL_WIFI_FAILED;
        dev->wifi_failure = event == CL_WIFI_AUTH_FAILED  ? CL_FAIL_WIFI_AUTH
                            : event == CL_WIFI_NOT_FOUND ? CL_FAIL_WIFI_NOT_FOUND
                                                         : CL_FAIL_DHCP_TIMEOUT;
        cl_log(dev, CL_LOG_WARN, "Wi-Fi gave up (failure kind %d)", (int)dev->wifi_failure);
        break;
    case CL_WIFI_RESET:
        dev->wifi = CL_WIFI_NONE;
        dev->wifi_failure = CL_FAIL_NONE;
        dev->ip4[0] = '\0';
        dev->applied_claim_gen = 0;
        cl_log(dev, CL_LOG_INFO, "Wi-Fi reset (a held claim stays)");
        break;
    }
}

void cl_session_ended(cl_device_t *dev)
{
    if (dev->rx_active) {
        cl_log(dev, CL_LOG_INFO, "session ended: the partial claim is wiped");
    }
    cl_buf_wipe(&dev->rx);
    dev->rx_active = false;
    dev->rx_total = 0;
}

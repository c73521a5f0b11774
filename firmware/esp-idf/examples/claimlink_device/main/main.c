/*
 * claimlink example firmware: BLE provisioning (network_provisioning, Security 2) with the claimlink
 * component's aws-claim / aws-status endpoints; the device joins Wi-Fi and provisions itself on AWS
 * IoT with the claim the app handed over.
 *
 * NOT COMPILED on the machine this was written on (no ESP-IDF toolchain there). Before building:
 * put Amazon Root CA 1 in main/amazon_root_ca1.pem, and give every device its own Security 2 salt
 * and verifier (esp_srp_gen_salt_verifier at manufacturing, from a password printed on its label):
 * the placeholders below must not ship.
 */
#include <stdio.h>
#include <string.h>

#include "claimlink_esp_idf.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "network_provisioning/manager.h"
#include "network_provisioning/scheme_ble.h"
#include "nvs_flash.h"

static const char *TAG = "app";

extern const char amazon_root_ca1_start[] asm("_binary_amazon_root_ca1_pem_start");

/* Per-device Security 2 material (placeholders: provision real ones at manufacturing). */
static const char sec2_salt[16] = {0};
static const char sec2_verifier[384] = {0};

void app_main(void)
{
    esp_err_t err = nvs_flash_init(); /* with CONFIG_NVS_ENCRYPTION, the default partition is encrypted */
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t wifi_cfg = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&wifi_cfg));

    network_prov_mgr_config_t prov_cfg = {
        .scheme = network_prov_scheme_ble,
        .scheme_event_handler = NETWORK_PROV_SCHEME_BLE_EVENT_HANDLER_FREE_BTDM,
    };
    ESP_ERROR_CHECK(network_prov_mgr_init(prov_cfg));

    /* The device's stable id: the client id it uses with the claim and with its own certificate. */
    uint8_t mac[6];
    esp_read_mac(mac, ESP_MAC_WIFI_STA);
    static char client_id[32];
    snprintf(client_id, sizeof client_id, "claimlink-%02X%02X%02X%02X%02X%02X", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);

    claimlink_esp_idf_config_t cl_cfg = claimlink_esp_idf_default_config();
    cl_cfg.client_id = client_id;
    cl_cfg.ca_pem = amazon_root_ca1_start;
    ESP_ERROR_CHECK(claimlink_esp_idf_init(&cl_cfg)); /* endpoints, app info "aws", auto-stop off */

    static network_prov_security2_params_t sec2 = {
        .salt = sec2_salt,
        .salt_len = sizeof sec2_salt,
        .verifier = sec2_verifier,
        .verifier_len = sizeof sec2_verifier,
    };
    char service_name[16];
    snprintf(service_name, sizeof service_name, "PROV_%02X%02X%02X", mac[3], mac[4], mac[5]);
    ESP_ERROR_CHECK(network_prov_mgr_start_provisioning(NETWORK_PROV_SECURITY_2, &sec2, service_name, NULL));
    ESP_ERROR_CHECK(claimlink_esp_idf_register_endpoints());
    ESP_LOGI(TAG, "provisioning as %s; claimlink client id %s", service_name, client_id);
    /* The component stops provisioning CONFIG_CLAIMLINK_STOP_DELAY_MS after the cloud half ended. */
    network_prov_mgr_wait();
    network_prov_mgr_deinit();
}

/*
 * The ESP-IDF port (see claimlink_esp_idf.h). NOT COMPILED here: no ESP-IDF toolchain on the build
 * machine. Written from ESP-IDF's headers, read for this port: idf-extra-components
 * network_provisioning/include/network_provisioning/manager.h (endpoint_create/register,
 * set_app_info, disable_auto_stop, stop_provisioning, NETWORK_PROV_WIFI_CRED_RECV/_FAIL),
 * esp-idf components/mqtt (esp_mqtt_client_config_t: broker/credentials/session/network;
 * MQTT_EVENT_*; MQTT_ERROR_TYPE_SUBSCRIBE_FAILED set on MQTT_EVENT_SUBSCRIBED), esp_netif_sntp.h,
 * nvs.h, protocomm.h (protocomm_req_handler_t).
 *
 * Threading: the endpoint handlers (httpd or BLE task) call the core under a recursive mutex and
 * answer at once. Everything else — Wi-Fi/IP events, esp-mqtt events, the SNTP wait, the core's
 * deadlines — goes through a queue to one task, "claimlink", which calls the core under the same
 * mutex. So the core never runs inside esp-mqtt's task, and may stop and destroy a client from an
 * event (esp_mqtt_client_stop must not be called from the MQTT task).
 */
#include "claimlink_esp_idf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "mbedtls/platform_util.h"
#include "mqtt_client.h"
#include "network_provisioning/manager.h"
#include "nvs.h"

static const char *TAG = "claimlink";

enum { EV_WIFI, EV_CONNECTED, EV_CONNECT_FAILED, EV_SUBSCRIBED, EV_MESSAGE, EV_DISCONNECTED, EV_SYNC };

typedef struct {
    int type;
    uint32_t generation; /* esp-mqtt events of a client the core left are dropped */
    int arg;             /* EV_WIFI: cl_wifi_event_t; EV_CONNECT_FAILED: cl_connect_failure_t; EV_SUBSCRIBED: granted */
    uint8_t ip[4];
    char *topic;         /* EV_MESSAGE: heap, freed by the task */
    uint8_t *payload;    /* wiped when freed */
    size_t len;
} event_t;

static struct {
    claimlink_esp_idf_config_t cfg;
    cl_device_t *dev;
    SemaphoreHandle_t lock;
    QueueHandle_t queue;
    esp_mqtt_client_handle_t mqtt;
    uint32_t generation;
    bool connected;
    uint8_t *cert, *key; /* esp-mqtt keeps pointers to them until the client is destroyed */
    size_t cert_len, key_len;
    uint8_t *rx;         /* a message arriving in fragments */
    size_t rx_len, rx_total;
    char *rx_topic;
    bool time_synced;
    uint32_t session_id;
    bool have_session;
} s;

static void post(event_t *e)
{
    e->generation = s.generation;
    if (xQueueSend(s.queue, e, 0) != pdTRUE) {
        ESP_LOGE(TAG, "event queue full: event %d dropped", e->type);
        free(e->topic);
        free(e->payload);
    }
}

/* ---- MQTT port: esp-mqtt over esp-tls, DER client certificate and key ---- */

static void free_client(void)
{
    if (s.mqtt != NULL) {
        esp_mqtt_client_stop(s.mqtt); /* only ever called from the claimlink task */
        esp_mqtt_client_destroy(s.mqtt);
        s.mqtt = NULL;
    }
    if (s.key != NULL) {
        mbedtls_platform_zeroize(s.key, s.key_len);
    }
    free(s.key);
    free(s.cert);
    s.key = s.cert = NULL;
    s.connected = false;
    s.generation++;
}

static void mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    esp_mqtt_event_handle_t ev = data;
    event_t e = {0};
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        s.connected = true;
        e.type = EV_CONNECTED;
        post(&e);
        break;
    case MQTT_EVENT_ERROR:
        if (ev->error_handle->error_type == MQTT_ERROR_TYPE_CONNECTION_REFUSED) {
            e.type = EV_CONNECT_FAILED;
            e.arg = CL_CONNECT_MQTT;
            post(&e);
        } else if (ev->error_handle->error_type == MQTT_ERROR_TYPE_TCP_TRANSPORT && !s.connected) {
            /* esp-tls (esp_tls_errors.h): no TCP connection is retried by the core while the claim
             * has time; anything else is the handshake. */
            esp_err_t tls = ev->error_handle->esp_tls_last_esp_err;
            e.type = EV_CONNECT_FAILED;
            e.arg = (tls == ESP_ERR_ESP_TLS_CANNOT_RESOLVE_HOSTNAME || tls == ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST
                     || tls == ESP_ERR_ESP_TLS_CONNECTION_TIMEOUT)
                        ? CL_CONNECT_NETWORK
                        : CL_CONNECT_TLS;
            post(&e);
        }
        break;
    case MQTT_EVENT_DISCONNECTED:
        e.type = s.connected ? EV_DISCONNECTED : EV_CONNECT_FAILED;
        e.arg = CL_CONNECT_MQTT;
        s.connected = false;
        post(&e);
        break;
    case MQTT_EVENT_SUBSCRIBED:
        e.type = EV_SUBSCRIBED;
        e.arg = ev->error_handle == NULL || ev->error_handle->error_type != MQTT_ERROR_TYPE_SUBSCRIBE_FAILED;
        post(&e);
        break;
    case MQTT_EVENT_DATA:
        /* A message larger than the client's buffer comes in fragments: the first has the topic. */
        if (ev->current_data_offset == 0) {
            free(s.rx_topic);
            if (s.rx != NULL) {
                mbedtls_platform_zeroize(s.rx, s.rx_total);
            }
            free(s.rx);
            s.rx_topic = strndup(ev->topic, ev->topic_len);
            s.rx_total = ev->total_data_len;
            s.rx = malloc(s.rx_total > 0 ? s.rx_total : 1);
            s.rx_len = 0;
        }
        if (s.rx != NULL && ev->current_data_offset + ev->data_len <= (int)s.rx_total) {
            memcpy(s.rx + ev->current_data_offset, ev->data, ev->data_len);
            s.rx_len += ev->data_len;
        }
        if (s.rx != NULL && s.rx_len == s.rx_total) {
            e.type = EV_MESSAGE;
            e.topic = s.rx_topic;
            e.payload = s.rx;
            e.len = s.rx_len;
            s.rx_topic = NULL;
            s.rx = NULL;
            post(&e);
        }
        break;
    default:
        break;
    }
}

static int p_connect(void *ctx, const cl_mqtt_connect_t *p)
{
    (void)ctx;
    free_client();
    s.cert = malloc(p->cert_len);
    s.key = malloc(p->key_len);
    if (s.cert == NULL || s.key == NULL) {
        free_client();
        return -1;
    }
    memcpy(s.cert, p->cert_der, p->cert_len);
    memcpy(s.key, p->key_der, p->key_len);
    s.cert_len = p->cert_len;
    s.key_len = p->key_len;
    esp_mqtt_client_config_t cfg = {
        .broker.address.hostname = p->host,
        .broker.address.port = p->port,
        .broker.address.transport = MQTT_TRANSPORT_OVER_SSL,
        .broker.verification.certificate = s.cfg.ca_pem,
        .credentials.client_id = p->client_id,
        .credentials.authentication.certificate = (const char *)s.cert,
        .credentials.authentication.certificate_len = s.cert_len, /* a length: DER */
        .credentials.authentication.key = (const char *)s.key,
        .credentials.authentication.key_len = s.key_len,
        .session.protocol_ver = MQTT_PROTOCOL_V_3_1_1,
        .session.keepalive = 30,
        .network.disable_auto_reconnect = true, /* the core decides; a retry never outlives the claim */
    };
    s.mqtt = esp_mqtt_client_init(&cfg);
    if (s.mqtt == NULL || esp_mqtt_client_register_event(s.mqtt, ESP_EVENT_ANY_ID, mqtt_event, NULL) != ESP_OK
        || esp_mqtt_client_start(s.mqtt) != ESP_OK) {
        free_client();
        return -1;
    }
    return 0;
}

static int p_subscribe(void *ctx, const char *topic)
{
    (void)ctx;
    return s.mqtt != NULL && esp_mqtt_client_subscribe(s.mqtt, topic, 1) >= 0 ? 0 : -1;
}

static int p_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    (void)ctx;
    return s.mqtt != NULL && esp_mqtt_client_publish(s.mqtt, topic, (const char *)payload, (int)len, 1, 0) >= 0
               ? 0
               : -1;
}

static void p_disconnect(void *ctx)
{
    (void)ctx;
    free_client();
}

/* ---- storage, clocks, RNG, log, time sync ---- */

/* NVS: encrypted when the application initialised it with nvs_flash_secure_init (CONFIG_NVS_ENCRYPTION). */
static int p_store(void *ctx, const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len)
{
    (void)ctx;
    nvs_handle_t h;
    esp_err_t err = nvs_open(s.cfg.nvs_namespace, NVS_READWRITE, &h);
    if (err == ESP_OK) {
        err = nvs_set_blob(h, "cert", cert, cert_len);
        if (err == ESP_OK) {
            err = nvs_set_blob(h, "key", key, key_len);
        }
        if (err == ESP_OK) {
            err = nvs_commit(h);
        }
        nvs_close(h);
    }
    ESP_LOGI(TAG, "permanent identity %s NVS namespace %s", err == ESP_OK ? "stored in" : "NOT stored in",
             s.cfg.nvs_namespace);
    return err == ESP_OK ? 0 : -1;
}

static uint64_t p_monotonic(void *ctx)
{
    (void)ctx;
    return (uint64_t)(esp_timer_get_time() / 1000);
}

static uint64_t p_wall(void *ctx)
{
    (void)ctx;
    return s.time_synced ? (uint64_t)time(NULL) : 0;
}

static int p_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    esp_fill_random(out, len); /* the hardware RNG (RF on: Wi-Fi is up) */
    return 0;
}

static void p_log(void *ctx, cl_log_level_t level, const char *line)
{
    (void)ctx;
    ESP_LOG_LEVEL_LOCAL(level == CL_LOG_ERROR  ? ESP_LOG_ERROR
                        : level == CL_LOG_WARN ? ESP_LOG_WARN
                        : level == CL_LOG_INFO ? ESP_LOG_INFO
                                               : ESP_LOG_DEBUG,
                        TAG, "%s", line);
}

static int p_time_sync(void *ctx)
{
    (void)ctx;
    event_t e = {.type = EV_SYNC};
    post(&e); /* the claimlink task waits for SNTP */
    return 0;
}

static void sntp_wait(void)
{
    esp_sntp_config_t config = ESP_NETIF_SNTP_DEFAULT_CONFIG(s.cfg.sntp_server);
    esp_err_t err = esp_netif_sntp_init(&config);
    if (err == ESP_OK) {
        err = esp_netif_sntp_sync_wait(pdMS_TO_TICKS(s.cfg.answer_timeout_ms));
        esp_netif_sntp_deinit(); /* synced (or not): a later run initialises it again */
    }
    s.time_synced = s.time_synced || err == ESP_OK;
    xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
    cl_on_time_synced(s.dev, s.time_synced);
    xSemaphoreGiveRecursive(s.lock);
}

/* ---- protocomm endpoints ---- */

/* A request on another session means the previous one ended: its partial transfer goes. */
static void note_session(uint32_t session_id)
{
    if (s.have_session && session_id != s.session_id) {
        cl_session_ended(s.dev);
    }
    s.session_id = session_id;
    s.have_session = true;
}

static esp_err_t claim_handler(uint32_t session_id, const uint8_t *in, ssize_t in_len, uint8_t **out,
                               ssize_t *out_len, void *priv)
{
    (void)priv;
    size_t n = 0;
    xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
    note_session(session_id);
    int rc = in_len >= 0 ? cl_claim_handle(s.dev, in, (size_t)in_len, out, &n) : -1;
    xSemaphoreGiveRecursive(s.lock);
    *out_len = (ssize_t)n;
    return rc == 0 ? ESP_OK : ESP_FAIL; /* ESP_FAIL: the transport drops the request, as for any bad frame */
}

static esp_err_t status_handler(uint32_t session_id, const uint8_t *in, ssize_t in_len, uint8_t **out,
                                ssize_t *out_len, void *priv)
{
    (void)priv;
    size_t n = 0;
    xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
    note_session(session_id);
    int rc = in_len >= 0 ? cl_status_handle(s.dev, in, (size_t)in_len, out, &n) : -1;
    xSemaphoreGiveRecursive(s.lock);
    *out_len = (ssize_t)n;
    return rc == 0 ? ESP_OK : ESP_FAIL;
}

/* ---- Wi-Fi: network_provisioning's events and the station's IP ---- */

static void prov_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    event_t e = {.type = EV_WIFI, .arg = -1};
    if (base == NETWORK_PROV_EVENT && id == NETWORK_PROV_WIFI_CRED_RECV) {
        e.arg = CL_WIFI_APPLIED;
    } else if (base == NETWORK_PROV_EVENT && id == NETWORK_PROV_WIFI_CRED_FAIL) {
        network_prov_wifi_sta_fail_reason_t *reason = data;
        e.arg = *reason == NETWORK_PROV_WIFI_STA_AUTH_ERROR ? CL_WIFI_AUTH_FAILED : CL_WIFI_NOT_FOUND;
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *got = data;
        e.arg = CL_WIFI_GOT_IP;
        memcpy(e.ip, &got->ip_info.ip.addr, 4); /* network byte order: a.b.c.d in memory */
    }
    if (e.arg >= 0) {
        post(&e);
    }
}

/* ---- the claimlink task ---- */

static void dispatch(event_t *e)
{
    if (e->type == EV_SYNC) {
        sntp_wait();
        return;
    }
    xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
    bool current = e->generation == s.generation;
    switch (e->type) {
    case EV_WIFI:
        cl_wifi_event(s.dev, (cl_wifi_event_t)e->arg, e->arg == CL_WIFI_GOT_IP ? e->ip : NULL);
        break;
    case EV_CONNECTED:
        if (current) {
            cl_on_mqtt_connected(s.dev);
        }
        break;
    case EV_CONNECT_FAILED:
        if (current) {
            cl_on_mqtt_connect_failed(s.dev, (cl_connect_failure_t)e->arg, "esp-mqtt: connection failed");
        }
        break;
    case EV_SUBSCRIBED:
        if (current) {
            cl_on_mqtt_subscribed(s.dev, e->arg != 0);
        }
        break;
    case EV_MESSAGE:
        if (current) {
            cl_on_mqtt_message(s.dev, e->topic, e->payload, e->len);
        }
        break;
    case EV_DISCONNECTED:
        if (current) {
            cl_on_mqtt_disconnected(s.dev);
        }
        break;
    }
    xSemaphoreGiveRecursive(s.lock);
    if (e->payload != NULL) {
        mbedtls_platform_zeroize(e->payload, e->len);
    }
    free(e->payload);
    free(e->topic);
}

static void task(void *arg)
{
    (void)arg;
    int64_t ended_at = -1;
    for (;;) {
        xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
        uint32_t wake = cl_next_wake_ms(s.dev);
        xSemaphoreGiveRecursive(s.lock);
        if (wake > 1000) {
            wake = 1000;
        }
        event_t e;
        if (xQueueReceive(s.queue, &e, pdMS_TO_TICKS(wake)) == pdTRUE) {
            dispatch(&e);
        }
        xSemaphoreTakeRecursive(s.lock, portMAX_DELAY);
        cl_tick(s.dev);
        bool finished = cl_cloud_finished(s.dev);
        xSemaphoreGiveRecursive(s.lock);
        /* Keep provisioning up until the app had time to read the outcome, then stop it. */
        if (finished && ended_at < 0) {
            ended_at = esp_timer_get_time();
            free_client();
        }
        if (ended_at >= 0 && esp_timer_get_time() - ended_at >= (int64_t)s.cfg.stop_delay_ms * 1000) {
            ESP_LOGI(TAG, "cloud half ended %u ms ago: stopping provisioning", (unsigned)s.cfg.stop_delay_ms);
            network_prov_mgr_stop_provisioning();
            ended_at = INT64_MAX / 2; /* once */
        }
    }
}

claimlink_esp_idf_config_t claimlink_esp_idf_default_config(void)
{
    return (claimlink_esp_idf_config_t){
        .sntp_server = CONFIG_CLAIMLINK_SNTP_SERVER,
        .nvs_namespace = "claimlink",
#ifdef CONFIG_CLAIMLINK_KEYS_CREATE
        .keys = CL_KEYS_CREATE,
#else
        .keys = CL_KEYS_CSR,
#endif
        .max_bundle_length = CONFIG_CLAIMLINK_MAX_BUNDLE,
        .answer_timeout_ms = CONFIG_CLAIMLINK_ANSWER_TIMEOUT_MS,
        .stop_delay_ms = CONFIG_CLAIMLINK_STOP_DELAY_MS,
    };
}

esp_err_t claimlink_esp_idf_init(const claimlink_esp_idf_config_t *config)
{
    s.cfg = *config;
    s.lock = xSemaphoreCreateRecursiveMutex();
    s.queue = xQueueCreate(16, sizeof(event_t));
    if (s.lock == NULL || s.queue == NULL) {
        return ESP_ERR_NO_MEM;
    }
    cl_config_t cfg = cl_config_default();
    cfg.client_id = config->client_id;
    cfg.keys = config->keys;
    cfg.max_bundle_length = config->max_bundle_length;
    cfg.answer_timeout_ms = config->answer_timeout_ms;
    cl_ports_t ports = {.mqtt_connect = p_connect, .mqtt_subscribe = p_subscribe, .mqtt_publish = p_publish,
                        .mqtt_disconnect = p_disconnect, .store_identity = p_store,
                        .monotonic_ms = p_monotonic, .wall_epoch = p_wall, .random = p_random,
                        .log = p_log, .time_sync_start = p_time_sync, .credentials_start = NULL};
    s.dev = cl_device_new(&cfg, &ports);
    if (s.dev == NULL) {
        return ESP_ERR_NO_MEM;
    }
    static const char *caps[] = {"claim", "status"};
    esp_err_t err = network_prov_mgr_endpoint_create("aws-claim");
    if (err == ESP_OK) {
        err = network_prov_mgr_endpoint_create("aws-status");
    }
    if (err == ESP_OK) {
        err = network_prov_mgr_set_app_info("aws", "1", caps, 2);
    }
    if (err == ESP_OK) {
        err = network_prov_mgr_disable_auto_stop(1000);
    }
    if (err == ESP_OK) {
        err = esp_event_handler_register(NETWORK_PROV_EVENT, ESP_EVENT_ANY_ID, prov_event, NULL);
    }
    if (err == ESP_OK) {
        err = esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, prov_event, NULL);
    }
    if (err == ESP_OK && xTaskCreate(task, "claimlink", CONFIG_CLAIMLINK_TASK_STACK, NULL, 5, NULL) != pdPASS) {
        err = ESP_ERR_NO_MEM;
    }
    return err;
}

esp_err_t claimlink_esp_idf_register_endpoints(void)
{
    esp_err_t err = network_prov_mgr_endpoint_register("aws-claim", claim_handler, NULL);
    if (err == ESP_OK) {
        err = network_prov_mgr_endpoint_register("aws-status", status_handler, NULL);
    }
    return err;
}

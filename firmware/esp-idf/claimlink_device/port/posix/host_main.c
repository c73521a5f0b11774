/*
 * claimlink-device-host: the C component as the firmware of one simulated device, speaking the pipe
 * protocol of PIPE.md on stdin/stdout (frames only on stdout; the log on stderr).
 *
 * One thread, one poll loop over stdin, the MQTT client's socket and the credentials worker's pipe,
 * with the core's next deadline and the simulated time sync as the timeout: every frame is answered
 * at once (aws-status from memory), and the cloud half advances between frames.
 */
#define _GNU_SOURCE
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>
#include <mosquitto.h>

#define FRAME_MAX 65536

enum {
    F_CLAIM = 0x01, F_STATUS = 0x02, F_WIFI = 0x03, F_SESSION_ENDED = 0x04, F_SHUTDOWN = 0x05,
    F_INSPECT = 0x06,
    F_ACK = 0x80, F_ANSWER = 0x81, F_HANDLER_FAILED = 0x82,
};

static void usage(void)
{
    fprintf(stderr,
            "usage: claimlink-device-host [--ca FILE] [--default-port N] [--client-id ID] [--storage DIR]\n"
            "       [--keys csr|create] [--time-sync-ms N] [--answer-timeout-ms N] [--max-bundle N]\n"
            "       [--credentials HOST:PORT --role-alias ALIAS]\n"
            "Speaks the frames of PIPE.md on stdin/stdout; logs on stderr.\n");
}

static bool number(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-') {
        return false;
    }
    *out = v;
    return true;
}

/* Parses the command line; false on an unknown option or a bad value. */
static bool parse_args(int argc, char **argv, host_t *h, cl_config_t *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            return false;
        }
        const char *val = argv[++i];
        unsigned long n = 0;
        if (strcmp(opt, "--ca") == 0) {
            h->ca_file = val;
        } else if (strcmp(opt, "--default-port") == 0 && number(val, 65535, &n) && n > 0) {
            cfg->default_port = (uint16_t)n;
        } else if (strcmp(opt, "--client-id") == 0 && val[0] != '\0') {
            cfg->client_id = val;
        } else if (strcmp(opt, "--storage") == 0) {
            h->storage_dir = val;
        } else if (strcmp(opt, "--keys") == 0 && (strcmp(val, "csr") == 0 || strcmp(val, "create") == 0)) {
            cfg->keys = strcmp(val, "csr") == 0 ? CL_KEYS_CSR : CL_KEYS_CREATE;
        } else if (strcmp(opt, "--time-sync-ms") == 0 && number(val, 3600000, &n)) {
            h->time_sync_ms = (uint32_t)n;
        } else if (strcmp(opt, "--answer-timeout-ms") == 0 && number(val, 3600000, &n) && n > 0) {
            cfg->answer_timeout_ms = (uint32_t)n;
        } else if (strcmp(opt, "--max-bundle") == 0 && number(val, 1u << 20, &n)) {
            cfg->max_bundle_length = (uint32_t)n;
        } else if (strcmp(opt, "--credentials") == 0 && strchr(val, ':') != NULL) {
            h->credentials = val;
        } else if (strcmp(opt, "--role-alias") == 0) {
            h->role_alias = val;
        } else {
            return false;
        }
    }
    return (h->credentials == NULL) == (h->role_alias == NULL);
}

static bool read_all(int fd, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, buf + *got, len - *got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        *got += (size_t)n;
    }
    return true;
}

static bool write_frame(uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t head[5] = {type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    struct {
        const uint8_t *p;
        size_t n;
    } parts[2] = {{head, 5}, {payload, len}};
    for (int i = 0; i < 2; i++) {
        for (size_t off = 0; off < parts[i].n;) {
            ssize_t n = write(STDOUT_FILENO, parts[i].p + off, parts[i].n - off);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            off += (size_t)n;
        }
    }
    return true;
}

static bool answer_handler(host_t *h, int rc, uint8_t *out, size_t out_len, const char *endpoint)
{
    bool ok;
    if (rc == 0) {
        ok = write_frame(F_ANSWER, out, out_len);
    } else {
        char reason[64];
        int n = snprintf(reason, sizeof reason, "malformed %s request", endpoint);
        host_log(h, CL_LOG_WARN, "%s: the handler fails (ESP_FAIL)", endpoint);
        ok = write_frame(F_HANDLER_FAILED, (const uint8_t *)reason, (size_t)n);
    }
    free(out);
    return ok;
}

/* One frame from the simulator: 0 = go on, 1 = shut down, -1 = protocol error. */
static int handle_frame(host_t *h, uint8_t type, uint8_t *payload, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    switch (type) {
    case F_CLAIM: {
        int rc = cl_claim_handle(h->dev, payload, len, &out, &out_len);
        return answer_handler(h, rc, out, out_len, "aws-claim") ? 0 : -1;
    }
    case F_STATUS: {
        int rc = cl_status_handle(h->dev, payload, len, &out, &out_len);
        return answer_handler(h, rc, out, out_len, "aws-status") ? 0 : -1;
    }
    case F_WIFI:
        if (len < 1 || payload[0] > CL_WIFI_RESET || (payload[0] == CL_WIFI_GOT_IP) != (len == 5)
            || (payload[0] != CL_WIFI_GOT_IP && len != 1)) {
            host_log(h, CL_LOG_ERROR, "protocol error: a Wi-Fi event of %zu bytes (event %d)", len,
                     len > 0 ? payload[0] : -1);
            return -1;
        }
        cl_wifi_event(h->dev, (cl_wifi_event_t)payload[0], payload[0] == CL_WIFI_GOT_IP ? payload + 1 : NULL);
        return write_frame(F_ACK, NULL, 0) ? 0 : -1;
    case F_SESSION_ENDED:
        cl_session_ended(h->dev);
        return write_frame(F_ACK, NULL, 0) ? 0 : -1;
    case F_SHUTDOWN:
        return write_frame(F_ACK, NULL, 0) ? 1 : -1;
    case F_INSPECT: {
        /* A test hook (PIPE.md): what the component holds in RAM, which aws-status cannot show. */
        char state[64];
        int n = snprintf(state, sizeof state, "claim=%s cloud=%s",
                         cl_holds_partial_claim(h->dev) ? "partial"
                         : cl_holds_claim(h->dev)       ? "held"
                                                        : "none",
                         cl_cloud_running(h->dev)    ? "running"
                         : cl_cloud_finished(h->dev) ? "ended"
                                                     : "idle");
        return write_frame(F_ANSWER, (const uint8_t *)state, (size_t)n) ? 0 : -1;
    }
    default:
        host_log(h, CL_LOG_ERROR, "protocol error: unknown frame type 0x%02x", type);
        return -1;
    }
}

/* Reads and handles one frame: 0 = go on, 1 = end (EOF or SHUTDOWN), -1 = protocol error. */
static int read_frame(host_t *h, uint8_t *buf)
{
    uint8_t head[5];
    size_t got = 0;
    if (!read_all(STDIN_FILENO, head, 5, &got)) {
        if (got == 0) {
            return 1; /* EOF between frames */
        }
        host_log(h, CL_LOG_ERROR, "protocol error: a short frame header");
        return -1;
    }
    size_t len = (size_t)head[1] << 24 | (size_t)head[2] << 16 | (size_t)head[3] << 8 | head[4];
    if (len > FRAME_MAX) {
        host_log(h, CL_LOG_ERROR, "protocol error: a frame of %zu bytes", len);
        return -1;
    }
    if (!read_all(STDIN_FILENO, buf, len, &got)) {
        host_log(h, CL_LOG_ERROR, "protocol error: a short frame");
        return -1;
    }
    int rc = handle_frame(h, head[0], buf, len);
    mbedtls_platform_zeroize(buf, len); /* claim chunks carry key material */
    return rc;
}

static int run(host_t *h)
{
    static uint8_t frame[FRAME_MAX];
    for (;;) {
        host_mqtt_cleanup(h, false);
        uint64_t now = host_now_ms();
        if (h->time_sync_at != 0 && now >= h->time_sync_at) {
            h->time_sync_at = 0;
            h->time_synced = true;
            host_log(h, CL_LOG_INFO, "time synced (simulated SNTP)");
            cl_on_time_synced(h->dev, true);
        }
        cl_tick(h->dev);
        uint64_t wait = cl_next_wake_ms(h->dev);
        if (h->time_sync_at != 0) {
            uint64_t sync = h->time_sync_at > now ? h->time_sync_at - now : 0;
            wait = sync < wait ? sync : wait;
        }
        bool want_write = false;
        int sock = host_mqtt_socket(h, &want_write);
        if (sock >= 0 && wait > 1000) {
            wait = 1000; /* keep-alive: mosquitto_loop_misc */
        }
        struct pollfd fds[3] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = sock, .events = (short)(POLLIN | (want_write ? POLLOUT : 0))},
                                {.fd = h->credentials_pipe[0], .events = POLLIN}};
        int n = poll(fds, 3, wait > 60000 ? 60000 : (int)wait);
        if (n < 0 && errno != EINTR) {
            return 1;
        }
        if (fds[2].revents & POLLIN) {
            host_credentials_service(h);
        }
        if (sock >= 0) {
            host_mqtt_service(h, (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0,
                              (fds[1].revents & POLLOUT) != 0);
        } else {
            host_mqtt_service(h, false, false); /* events queued without a socket (a failed connect) */
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int rc = read_frame(h, frame);
            if (rc != 0) {
                return rc < 0 ? 1 : 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    host_t h = {.storage_dir = ".", .time_sync_ms = 20, .credentials_pipe = {-1, -1}};
    cl_config_t cfg = cl_config_default();
    if (!parse_args(argc, argv, &h, &cfg)) {
        usage();
        return 2;
    }
    h.started_ms = host_now_ms();
    h.events_tail = &h.events;
    if (pipe2(h.credentials_pipe, O_CLOEXEC) != 0) {
        return 1;
    }
    mosquitto_lib_init();
    cl_ports_t ports = host_ports(&h);
    h.dev = cl_device_new(&cfg, &ports);
    if (h.dev == NULL) {
        return 1;
    }
    host_log(&h, CL_LOG_INFO, "claimlink-device-host up as %s (max bundle %u, keys %s)", cfg.client_id,
             (unsigned)cfg.max_bundle_length, cfg.keys == CL_KEYS_CSR ? "csr" : "create");
    int rc = run(&h);
    host_mqtt_cleanup(&h, true);
    cl_device_free(h.dev); /* wipes every claim and key in RAM */
    mosquitto_lib_cleanup();
    host_log(&h, rc == 0 ? CL_LOG_INFO : CL_LOG_ERROR, "exiting (%d): claims and keys wiped", rc);
    close(h.credentials_pipe[0]);
    close(h.credentials_pipe[1]);
    return rc;
}

/*
 * libFuzzer target over the aws-claim and aws-status handlers: their decoders, the transfer's state
 * and the bundle's check (protobuf-c, the primes' validation, mbedTLS's RSA rebuild, X.509).
 *
 * The first byte picks the mode:
 *   even: a session — records of [kind u8][len u16 LE][len bytes]: kind % 5 = 0 an aws-claim
 *         request, 1 an aws-status request, 2 a Wi-Fi event (first byte; GOT_IP takes 4 more),
 *         3 the session's end, 4 a bundle sent as one Begin with its right SHA-256 and commit;
 *   odd:  the rest is a bundle, sent with its right digest and committed (reaches the bundle check
 *         without the fuzzer having to find a SHA-256), then aws-status.
 * Every answer must re-decode as the endpoint's message; the claim held is at most the bundle's
 * size. ASan and LeakSanitizer catch the rest.
 */
#include "claimlink_device.h"
#include "../src/cl_internal.h"
#include "../tests/begin_request.h"

#include <stdlib.h>
#include <string.h>


static uint64_t now_ms;
static uint32_t rng = 1;

static uint64_t mono(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static int random_bytes(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        rng = rng * 1103515245u + 12345u;
        out[i] = (uint8_t)(rng >> 16);
    }
    return 0;
}

static int fail_connect(void *ctx, const cl_mqtt_connect_t *p)
{
    (void)ctx;
    (void)p;
    return -1;
}

static int time_sync(void *ctx)
{
    (void)ctx;
    return 0;
}

static void claim(cl_device_t *dev, const uint8_t *in, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (cl_claim_handle(dev, in, len, &out, &out_len) == 0) {
        AwsClaimPayload *a = aws_claim_payload__unpack(NULL, out_len, out);
        if (a == NULL) {
            abort(); /* our own answer must decode */
        }
        aws_claim_payload__free_unpacked(a, NULL);
    }
    free(out);
}

static void status(cl_device_t *dev, const uint8_t *in, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (cl_status_handle(dev, in, len, &out, &out_len) == 0) {
        AwsStatusPayload *a = aws_status_payload__unpack(NULL, out_len, out);
        if (a == NULL || a->payload_case != AWS_STATUS_PAYLOAD__PAYLOAD_RESP_GET) {
            abort();
        }
        aws_status_payload__free_unpacked(a, NULL);
    }
    free(out);
}

static void send_bundle(cl_device_t *dev, const uint8_t *bundle, size_t len)
{
    size_t n = 0;
    uint8_t *in = claim_begin_request(bundle, len, &n);
    if (in == NULL) {
        abort();
    }
    claim(dev, in, n);
    free(in);
    if (cl_holds_claim(dev) && dev->claim.len != len) {
        abort(); /* the claim is held in one buffer of the bundle's size */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t status_request[] = {0x52, 0x00};
    if (size < 1) {
        return 0;
    }
    cl_config_t cfg = cl_config_default();
    cfg.max_bundle_length = 8192;
    cl_ports_t ports = {.monotonic_ms = mono, .random = random_bytes, .mqtt_connect = fail_connect,
                        .time_sync_start = time_sync};
    cl_device_t *dev = cl_device_new(&cfg, &ports);
    if (data[0] & 1) {
        send_bundle(dev, data + 1, size - 1);
        status(dev, status_request, sizeof status_request);
    } else {
        size_t i = 1;
        while (i + 3 <= size) {
            uint8_t kind = data[i] % 5;
            size_t len = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
            i += 3;
            if (len > size - i) {
                len = size - i;
            }
            const uint8_t *p = data + i;
            i += len;
            now_ms += 1000;
            if (kind == 0) {
                claim(dev, p, len);
            } else if (kind == 1) {
                status(dev, p, len);
            } else if (kind == 2 && len >= 1) {
                cl_wifi_event(dev, (cl_wifi_event_t)(p[0] % 6), len >= 5 ? p + 1 : NULL);
                cl_on_time_synced(dev, true); /* the connect port fails: the cloud half ends at once */
                cl_tick(dev);
            } else if (kind == 3) {
                cl_session_ended(dev);
            } else if (kind == 4) {
                send_bundle(dev, p, len);
            }
        }
        status(dev, status_request, sizeof status_request);
    }
    cl_device_free(dev);
    return 0;
}

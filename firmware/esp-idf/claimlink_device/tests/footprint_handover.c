/*
 * The footprint of one hand-over (tools/footprint runs it, also under valgrind massif): the vector
 * claim transferred as the SDK sends it at the 480-byte cap (claim.json's begin + 2 chunks), then the
 * whole cloud half (CSR) against the scripted port, up to Done.
 *
 * Heap: mbedTLS (linked statically here) allocates with calloc, which this program wraps
 * (-Wl,--wrap=calloc/free/malloc/realloc); the core allocates through cl_alloc (protobuf-c's
 * allocations included); cJSON through hooks counted here. Stack: every call into the core runs on
 * a thread whose stack was painted, and the untouched bytes give the high-water mark, libraries
 * included. Prints the figures; exits 1 if the core's own heap peak exceeds 8 KiB or the claim is
 * not one buffer of the bundle's size.
 */
#define _GNU_SOURCE
#include "unit.h"
#include "fake_ports.h"
#include "claim_fixture.h"
#include "../src/cl_internal.h"

#include "footprint_vectors.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

/* ---- heap accounting ---- */
static size_t lib_live, lib_peak, json_live, json_peak;
static bool counting;

static void count(size_t *live, size_t *peak, long delta)
{
    if (!counting) {
        return;
    }
    *live += (size_t)delta;
    *peak = *live > *peak ? *live : *peak;
}

static void remember(void *p);
bool footprint_is_lib_block(void *p);
void *__real_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

/* Every calloc/realloc of the statically linked libraries is mbedTLS's or protobuf-c's; plain
 * malloc here is cl_alloc's (counted by the core itself) and the program's. */
void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    if (p != NULL && counting) {
        remember(p);
        count(&lib_live, &lib_peak, (long)malloc_usable_size(p));
    }
    return p;
}
void *__wrap_malloc(size_t size)
{
    return __real_malloc(size);
}
void *__wrap_realloc(void *p, size_t size)
{
    return __real_realloc(p, size);
}
void __wrap_free(void *p)
{
    if (p != NULL && counting) {
        /* only calloc'd blocks are counted: the core's and cJSON's free through their own paths */
        if (footprint_is_lib_block(p)) {
            count(&lib_live, &lib_peak, -(long)malloc_usable_size(p));
        }
    }
    __real_free(p);
}

/* The blocks calloc returned while counting (a small open-addressing set). */
#define SET 8192
static void *lib_blocks[SET];
static unsigned slot(void *p)
{
    return (unsigned)(((uintptr_t)p >> 4) * 2654435761u) % SET;
}
static void remember(void *p)
{
    unsigned i = slot(p);
    while (lib_blocks[i] != NULL) {
        i = (i + 1) % SET;
    }
    lib_blocks[i] = p;
}
bool footprint_is_lib_block(void *p)
{
    for (unsigned i = slot(p), n = 0; lib_blocks[i] != NULL && n < SET; i = (i + 1) % SET, n++) {
        if (lib_blocks[i] == p) {
            lib_blocks[i] = (void *)1; /* a tombstone */
            return true;
        }
    }
    return false;
}

static void *json_malloc(size_t size)
{
    void *p = __real_malloc(size);
    if (p != NULL) {
        count(&json_live, &json_peak, (long)malloc_usable_size(p));
    }
    return p;
}
static void json_free(void *p)
{
    if (p != NULL) {
        count(&json_live, &json_peak, -(long)malloc_usable_size(p));
    }
    __real_free(p);
}

/* ---- painted stacks ---- */
#define STACK (256 * 1024)
static uint8_t *stack_mem;
typedef void (*step_fn)(void *);
typedef struct {
    step_fn fn;
    void *arg;
} step_t;

static void *trampoline(void *arg)
{
    step_t *s = arg;
    s->fn(s->arg);
    return NULL;
}

/* Runs fn(arg) on a painted stack; returns the bytes of stack it used. */
static size_t on_stack(step_fn fn, void *arg)
{
    memset(stack_mem, 0xA5, STACK);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack_mem, STACK);
    pthread_t t;
    step_t s = {fn, arg};
    pthread_create(&t, &attr, trampoline, &s);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    size_t untouched = 0;
    while (untouched < STACK && stack_mem[untouched] == 0xA5) {
        untouched++;
    }
    return STACK - untouched;
}

/* ---- the hand-over ---- */
typedef struct {
    cl_device_t *dev;
    const uint8_t *in;
    size_t len;
    const char *topic;
    int kind;
} call_t;

enum { C_CLAIM, C_STATUS, C_APPLIED, C_GOT_IP, C_SYNCED, C_CONNECTED, C_SUBSCRIBED, C_MESSAGE, C_KINDS };
static const char *const NAMES[C_KINDS] = {"aws-claim handler", "aws-status handler", "Wi-Fi applied",
                                           "Wi-Fi got IP", "time synced (connect: RSA rebuild)",
                                           "MQTT connected (CSR: P-256 key + CSR)", "SUBACK",
                                           "MQTT message (answers)"};
static size_t worst[C_KINDS];

static void call(void *arg)
{
    call_t *c = arg;
    uint8_t *out = NULL;
    size_t out_len = 0;
    static const uint8_t ip[4] = {10, 0, 0, 2};
    switch (c->kind) {
    case C_CLAIM:
        cl_claim_handle(c->dev, c->in, c->len, &out, &out_len);
        break;
    case C_STATUS:
        cl_status_handle(c->dev, c->in, c->len, &out, &out_len);
        break;
    case C_APPLIED:
        cl_wifi_event(c->dev, CL_WIFI_APPLIED, NULL);
        break;
    case C_GOT_IP:
        cl_wifi_event(c->dev, CL_WIFI_GOT_IP, ip);
        break;
    case C_SYNCED:
        cl_on_time_synced(c->dev, true);
        break;
    case C_CONNECTED:
        cl_on_mqtt_connected(c->dev);
        break;
    case C_SUBSCRIBED:
        cl_on_mqtt_subscribed(c->dev, true);
        break;
    case C_MESSAGE:
        cl_on_mqtt_message(c->dev, c->topic, c->in, c->len);
        break;
    }
    free(out);
}

static void nothing(void *arg)
{
    (void)arg;
}

static void step(cl_device_t *dev, int kind, const void *in, size_t len, const char *topic)
{
    call_t c = {dev, in, len, topic, kind};
    size_t used = on_stack(call, &c);
    if (getenv("FOOTPRINT_TRACE") != NULL) {
        size_t live, peak;
        cl_heap_stats(&live, &peak);
        fprintf(stderr, "after %s: core live %zu peak %zu, cJSON peak %zu, mbedTLS peak %zu\n", NAMES[kind], live, peak, json_peak, lib_peak);
    }
    worst[kind] = used > worst[kind] ? used : worst[kind];
}

int main(void)
{
    /* mmap'd, not heap: massif measures the heap */
    stack_mem = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t baseline = on_stack(nothing, NULL); /* glibc puts the thread's TLS at the stack's top */
    static const char *const hex[3] = {FOOTPRINT_REQUEST_0, FOOTPRINT_REQUEST_1, FOOTPRINT_REQUEST_2};
    uint8_t *requests[3];
    size_t lens[3];
    for (int i = 0; i < 3; i++) {
        requests[i] = unit_unhex(hex[i], &lens[i]);
    }
    size_t bundle_len = FOOTPRINT_BUNDLE_LEN;
    char *cert = fixture_file("claim-cert.pem");
    char accepted[4096];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "certificateId", "4f1c3a3bd0e3e4c4b1d5c7a3a6f5e0b0f7c2e1d9a8b7c6d5e4f3a2b1c0d9e8f7");
    cJSON_AddStringToObject(o, "certificatePem", cert);
    cJSON_AddStringToObject(o, "certificateOwnershipToken", "a-token-of-some-length-as-AWS-sends-them");
    cJSON_PrintPreallocated(o, accepted, sizeof accepted, 0);
    cJSON_Delete(o);
    free(cert);
    const char *registered = "{\"thingName\":\"claimlink-SN-0001\",\"deviceConfiguration\":{}}";
    static const uint8_t status_req[] = {0x52, 0x00};

    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
    fake_t f = {0};
    cl_config_t cfg = cl_config_default();
    cl_ports_t ports = fake_ports(&f, false);
    ports.log = NULL; /* the test's log sink is not the device's footprint */
    counting = true;
    cl_device_t *dev = cl_device_new(&cfg, &ports);
    for (int i = 0; i < 3; i++) {
        step(dev, C_CLAIM, requests[i], lens[i], NULL);
        step(dev, C_STATUS, status_req, sizeof status_req, NULL);
    }
    int rc = 0;
    if (!cl_holds_claim(dev) || dev->claim.len != bundle_len) {
        fprintf(stderr, "the claim is not held in one buffer of the bundle's size\n");
        rc = 1;
    }
    step(dev, C_APPLIED, NULL, 0, NULL);
    step(dev, C_GOT_IP, NULL, 0, NULL);
    step(dev, C_SYNCED, NULL, 0, NULL);
    step(dev, C_CONNECTED, NULL, 0, NULL);
    step(dev, C_SUBSCRIBED, NULL, 0, NULL);
    step(dev, C_SUBSCRIBED, NULL, 0, NULL);
    step(dev, C_STATUS, status_req, sizeof status_req, NULL);
    step(dev, C_MESSAGE, accepted, strlen(accepted), "$aws/certificates/create-from-csr/json/accepted");
    step(dev, C_SUBSCRIBED, NULL, 0, NULL);
    step(dev, C_SUBSCRIBED, NULL, 0, NULL);
    step(dev, C_MESSAGE, registered, strlen(registered),
         "$aws/provisioning-templates/claimlink-fleet/provision/json/accepted");
    step(dev, C_CONNECTED, NULL, 0, NULL);
    step(dev, C_STATUS, status_req, sizeof status_req, NULL);
    if (cl_stage(dev) != CL_STAGE_DONE) {
        fprintf(stderr, "the hand-over did not reach Done (stage %d)\n", (int)cl_stage(dev));
        rc = 1;
    }
    size_t core_live, core_peak;
    cl_heap_stats(&core_live, &core_peak);
    cl_device_free(dev);
    counting = false;
    printf("bundle: %zu bytes, held in one buffer of %zu bytes\n", bundle_len, bundle_len);
    printf("heap peak, core (cl_alloc: transfer/claim buffer, protobuf-c decodes, key DER, JSON text): %zu bytes\n", core_peak);
    printf("heap peak, cJSON (parsing the answers, building the requests): %zu bytes\n", json_peak);
    printf("heap peak, mbedTLS (calloc: RSA rebuild, X.509, P-256 key, CSR): %zu bytes\n", lib_peak);
    printf("heap peak, core + cJSON (sum of the peaks: an upper bound): %zu bytes (target 8192)\n",
           core_peak + json_peak);
    printf("heap peak, core + cJSON + mbedTLS (sum of the peaks): %zu bytes\n", core_peak + json_peak + lib_peak);
    printf("stack high-water mark per entry point (x86-64, libraries included; the thread's own %zu bytes"
           " subtracted):\n", baseline);
    for (int k = 0; k < C_KINDS; k++) {
        printf("  %-42s %6zu bytes\n", NAMES[k], worst[k] - baseline);
    }
    if (core_peak + json_peak > 8192) {
        fprintf(stderr, "the core and cJSON held %zu bytes at most: over the 8 KiB target\n", core_peak + json_peak);
        rc = 1;
    }
    for (int i = 0; i < 3; i++) {
        free(requests[i]);
    }
    fake_free(&f);
    munmap(stack_mem, STACK);
    return rc;
}

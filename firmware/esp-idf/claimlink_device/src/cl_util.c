/*
 * Memory that is wiped when it is freed (every allocation of the core, and protobuf-c's while it
 * decodes requests and bundles, which carry key material), the log, and the RNG adapter.
 */
#include "cl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

/* Each block starts with its size, so that free can wipe it whole. The header keeps the
 * alignment malloc gives. */
typedef union {
    size_t size;
    max_align_t align;
} cl_header_t;

/* What the core holds on the heap now and at most (single-threaded, like the core), for the
 * footprint measurement (tools/footprint) and the tests. */
static size_t heap_live, heap_peak;

void cl_heap_stats(size_t *live, size_t *peak)
{
    *live = heap_live;
    *peak = heap_peak;
}

void cl_heap_reset_peak(void)
{
    heap_peak = heap_live;
}

void *cl_alloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(cl_header_t)) {
        return NULL;
    }
    cl_header_t *h = malloc(sizeof(cl_header_t) + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    heap_live += sizeof(cl_header_t) + size;
    heap_peak = heap_live > heap_peak ? heap_live : heap_peak;
    return h + 1;
}

void cl_free(void *p)
{
    if (p == NULL) {
        return;
    }
    cl_header_t *h = (cl_header_t *)p - 1;
    heap_live -= sizeof(cl_header_t) + h->size;
    mbedtls_platform_zeroize(h, sizeof(cl_header_t) + h->size);
    free(h);
}

char *cl_strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *out = cl_alloc(n + 1);
    if (out != NULL) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

void cl_buf_wipe(cl_buf_t *b)
{
    cl_free(b->data); /* wipes */
    b->data = NULL;
    b->len = 0;
}

static void *pb_alloc(void *unused, size_t size)
{
    (void)unused;
    return cl_alloc(size);
}

static void pb_free(void *unused, void *p)
{
    (void)unused;
    cl_free(p);
}

ProtobufCAllocator cl_pb_allocator = {pb_alloc, pb_free, NULL};

void cl_log(const cl_device_t *dev, cl_log_level_t level, const char *fmt, ...)
{
    if (dev->ports.log == NULL) {
        return;
    }
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    dev->ports.log(dev->ports.ctx, level, line);
}

int cl_rng(void *dev, unsigned char *out, size_t len)
{
    const cl_device_t *d = dev;
    return d->ports.random(d->ports.ctx, out, len) == 0 ? 0 : -1;
}

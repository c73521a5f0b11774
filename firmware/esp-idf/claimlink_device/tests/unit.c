/* The test harness's helpers (see unit.h). */
#include "unit.h"

int unit_failures = 0;
int unit_checks = 0;

int unit_end(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
    return unit_failures == 0 ? 0 : 1;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

uint8_t *unit_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    }
    *len = n;
    return out;
}

char *unit_hex(const uint8_t *data, size_t len)
{
    char *out = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    }
    out[2 * len] = '\0';
    return out;
}

char *unit_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    text[got] = '\0';
    if (len != NULL) {
        *len = got;
    }
    return text;
}

cJSON *unit_vector(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", CLAIMLINK_VECTORS_DIR, name);
    char *text = unit_read_file(path, NULL);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (root == NULL) {
        fprintf(stderr, "%s is not JSON\n", path);
        exit(2);
    }
    return root;
}

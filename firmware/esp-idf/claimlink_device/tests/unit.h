/*
 * A minimal test harness for the ctest suite: CHECK records a failure and goes on, a test program
 * returns the number of failures (ctest: non-zero = failed), and the helpers read the vectors.
 */
#ifndef CL_UNIT_H
#define CL_UNIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

extern int unit_failures;
extern int unit_checks;

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        unit_checks++;                                                                              \
        if (!(cond)) {                                                                              \
            unit_failures++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                         \
        }                                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                        \
    do {                                                                                            \
        unit_checks++;                                                                              \
        if (!(cond)) {                                                                              \
            unit_failures++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fputc('\n', stderr);                                                                    \
        }                                                                                           \
    } while (0)

/** Ends a test program: prints the counts, returns the exit status. */
int unit_end(const char *name);

/** Decodes lowercase hex into a new malloc'd buffer. */
uint8_t *unit_unhex(const char *hex, size_t *len);
/** Encodes bytes as lowercase hex into a new malloc'd string. */
char *unit_hex(const uint8_t *data, size_t len);
/** Reads and parses a JSON file of proto/vectors/ (CLAIMLINK_VECTORS_DIR). */
cJSON *unit_vector(const char *name);
/** Reads a whole file (NUL-terminated) or NULL. */
char *unit_read_file(const char *path, size_t *len);

#endif

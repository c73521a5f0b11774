/*
 * The host's small ports: the clocks, the RNG (getrandom), the log (stderr, ESP-IDF's
 * `I (ms) tag: msg` shape), the simulated time sync, the storage (files, mode 0600, PEM) and the
 * TLS context (OpenSSL, built from DER in memory: the key never touches a file).
 */
#define _GNU_SOURCE
#include "host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

uint64_t host_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t p_monotonic(void *ctx)
{
    (void)ctx;
    return host_now_ms();
}

static uint64_t p_wall(void *ctx)
{
    host_t *h = ctx;
    return h->time_synced ? (uint64_t)time(NULL) : 0; /* unknown until the (simulated) SNTP sync */
}

static int p_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

static void log_line(host_t *h, cl_log_level_t level, const char *line)
{
    static const char letters[] = "?EWID";
    fprintf(stderr, "%c (%llu) claimlink: %s\n", letters[level <= CL_LOG_DEBUG ? level : 0],
            (unsigned long long)(host_now_ms() - h->started_ms), line);
    fflush(stderr);
}

static void p_log(void *ctx, cl_log_level_t level, const char *line)
{
    log_line(ctx, level, line);
}

void host_log(host_t *h, cl_log_level_t level, const char *fmt, ...)
{
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(h, level, line);
}

static int p_time_sync(void *ctx)
{
    host_t *h = ctx;
    h->time_sync_at = host_now_ms() + h->time_sync_ms;
    return 0;
}

/* Writes `bio`'s bytes to dir/name through a temporary file (mode 0600) and a rename. */
static int write_file(const host_t *h, const char *name, BIO *bio)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", h->storage_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    int rc = fchmod(fd, 0600);
    for (long off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, data + off, (size_t)(len - off));
        if (n < 0 && errno != EINTR) {
            rc = -1;
        }
        off += n > 0 ? n : 0;
    }
    if (rc == 0) {
        rc = fsync(fd);
    }
    close(fd);
    if (rc == 0) {
        rc = rename(tmp, path);
    }
    if (rc != 0) {
        unlink(tmp);
    }
    return rc;
}

/* device.crt (PEM certificate) and device.key (PEM PKCS#8 private key). */
static int p_store(void *ctx, const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der, size_t key_len)
{
    host_t *h = ctx;
    const unsigned char *c = cert_der, *k = key_der;
    X509 *cert = d2i_X509(NULL, &c, (long)cert_len);
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &k, (long)key_len);
    BIO *cert_bio = BIO_new(BIO_s_mem()), *key_bio = BIO_new(BIO_s_mem());
    int rc = -1;
    if (cert != NULL && key != NULL && cert_bio != NULL && key_bio != NULL
        && PEM_write_bio_X509(cert_bio, cert) == 1
        && PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        rc = write_file(h, "device.key", key_bio) == 0 && write_file(h, "device.crt", cert_bio) == 0 ? 0 : -1;
    }
    if (key_bio != NULL) {
        char *data = NULL;
        long len = BIO_get_mem_data(key_bio, &data);
        OPENSSL_cleanse(data, (size_t)len);
    }
    BIO_free(cert_bio);
    BIO_free(key_bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    host_log(h, rc == 0 ? CL_LOG_INFO : CL_LOG_ERROR, "%s device.crt and device.key in %s",
             rc == 0 ? "stored" : "could not store", h->storage_dir);
    return rc;
}

struct ssl_ctx_st *host_tls_context(const char *ca_file, const char *host, const uint8_t *cert_der,
                                    size_t cert_len, const uint8_t *key_der, size_t key_len, char *why,
                                    size_t why_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const unsigned char *k = key_der;
    EVP_PKEY *key = NULL;
    unsigned char ip[16];
    const char *err = NULL;
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        err = "cannot make a TLS context";
    } else if (ca_file == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        err = "cannot read the trusted CA (--ca)";
    } else if (SSL_CTX_use_certificate_ASN1(ctx, (int)cert_len, cert_der) != 1) {
        err = "the client certificate does not load";
    } else if ((key = d2i_AutoPrivateKey(NULL, &k, (long)key_len)) == NULL
               || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        err = "the client key does not load or does not match";
    } else {
        /* The server must present a certificate from the CA, for this host name or IP. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
        bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0)) != 1) {
            err = "cannot set the server name to verify";
        }
    }
    EVP_PKEY_free(key); /* the context holds its own reference */
    if (err != NULL) {
        snprintf(why, why_size, "%s", err);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}

cl_ports_t host_ports(host_t *h)
{
    return (cl_ports_t){.ctx = h, .mqtt_connect = host_mqtt_connect, .mqtt_subscribe = host_mqtt_subscribe,
                        .mqtt_publish = host_mqtt_publish, .mqtt_disconnect = host_mqtt_disconnect,
                        .store_identity = p_store, .monotonic_ms = p_monotonic, .wall_epoch = p_wall,
                        .random = p_random, .log = p_log, .time_sync_start = p_time_sync,
                        .credentials_start = h->credentials != NULL ? host_credentials_start : NULL};
}

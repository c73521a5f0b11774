/*
 * The credentials-provider proof (--credentials HOST:PORT --role-alias ALIAS): after the
 * reconnection with the permanent certificate, `GET /role-aliases/ALIAS/credentials` over mutual
 * TLS with that certificate, naming the thing in x-amzn-iot-thingname, as a provisioned device
 * does to call AWS services. It passes on status 200 with a JSON `credentials` object carrying
 * accessKeyId, secretAccessKey, sessionToken and expiration (strings); the credentials themselves
 * are wiped, never logged.
 *
 * The request runs on a worker thread (OpenSSL, blocking, bounded by socket timeouts) so that the
 * poll loop keeps answering aws-status; the worker writes its result to a pipe the loop polls.
 */
#define _GNU_SOURCE
#include "host.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cJSON.h>
#include <openssl/ssl.h>

#define RESPONSE_MAX 65536

typedef struct {
    bool ok;
    uint32_t status;
    char message[200];
} result_t;

typedef struct {
    char host[256];
    char port[8];
    char path[512];
    char thing[256];
    char ca_file[4096];
    uint8_t *cert;
    size_t cert_len;
    uint8_t *key;
    size_t key_len;
    int out_fd;
} job_t;

static int connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        struct timeval tv = {.tv_sec = 20};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Judges the HTTP response (status line, then the JSON body). */
static void judge(const char *response, size_t len, result_t *r)
{
    unsigned status = 0;
    if (sscanf(response, "HTTP/%*d.%*d %u", &status) != 1) {
        snprintf(r->message, sizeof r->message, "not an HTTP response");
        return;
    }
    r->status = status;
    const char *body = strstr(response, "\r\n\r\n");
    cJSON *json = body != NULL ? cJSON_ParseWithLength(body + 4, len - (size_t)(body + 4 - response)) : NULL;
    const cJSON *creds = cJSON_GetObjectItemCaseSensitive(json, "credentials");
    if (status != 200) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(json, "message");
        snprintf(r->message, sizeof r->message, "%s", cJSON_IsString(msg) ? msg->valuestring : "refused");
    } else if (!cJSON_IsObject(creds)) {
        snprintf(r->message, sizeof r->message, "no credentials in the answer");
    } else {
        static const char *const fields[] = {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"};
        r->ok = true;
        for (size_t i = 0; i < 4; i++) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(creds, fields[i]))) {
                r->ok = false;
                snprintf(r->message, sizeof r->message, "credentials without %s", fields[i]);
            }
        }
    }
    if (json != NULL) {
        cJSON *item;
        cJSON_ArrayForEach(item, (cJSON *)creds) /* wipe the secrets before cJSON frees them */
        {
            if (cJSON_IsString(item)) {
                OPENSSL_cleanse(item->valuestring, strlen(item->valuestring));
            }
        }
        cJSON_Delete(json);
    }
}

static void *worker(void *arg)
{
    job_t *job = arg;
    result_t r = {0};
    char why[120] = "";
    SSL_CTX *ctx = host_tls_context(job->ca_file, job->host, job->cert, job->cert_len, job->key, job->key_len,
                                    why, sizeof why);
    OPENSSL_cleanse(job->key, job->key_len);
    int fd = ctx != NULL ? connect_tcp(job->host, job->port) : -1;
    SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    char *response = calloc(1, RESPONSE_MAX + 1);
    unsigned char ip[16];
    if (ctx == NULL) {
        snprintf(r.message, sizeof r.message, "%s", why);
    } else if (ssl == NULL || response == NULL) {
        snprintf(r.message, sizeof r.message, "cannot connect to %.100s:%s", job->host, job->port);
    } else {
        SSL_set_fd(ssl, fd);
        if (inet_pton(AF_INET, job->host, ip) != 1 && inet_pton(AF_INET6, job->host, ip) != 1) {
            SSL_set_tlsext_host_name(ssl, job->host);
        }
        char request[1200];
        int n = snprintf(request, sizeof request,
                         "GET %s HTTP/1.0\r\nHost: %s\r\nx-amzn-iot-thingname: %s\r\nConnection: close\r\n\r\n",
                         job->path, job->host, job->thing);
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, request, n) != n) {
            snprintf(r.message, sizeof r.message, "the TLS connection to the credentials provider failed");
        } else {
            size_t len = 0;
            int got;
            while (len < RESPONSE_MAX && (got = SSL_read(ssl, response + len, (int)(RESPONSE_MAX - len))) > 0) {
                len += (size_t)got;
            }
            judge(response, len, &r);
            OPENSSL_cleanse(response, len);
        }
    }
    free(response);
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0) {
        close(fd);
    }
    SSL_CTX_free(ctx);
    if (write(job->out_fd, &r, sizeof r) != (ssize_t)sizeof r) {
        /* the loop will time the step out */
    }
    free(job->cert);
    free(job->key);
    free(job);
    return NULL;
}

int host_credentials_start(void *ctx, const cl_mqtt_connect_t *identity, const char *thing_name)
{
    host_t *h = ctx;
    job_t *job = calloc(1, sizeof *job);
    if (job == NULL) {
        return -1;
    }
    const char *colon = strrchr(h->credentials, ':');
    size_t host_len = colon != NULL ? (size_t)(colon - h->credentials) : strlen(h->credentials);
    snprintf(job->host, sizeof job->host, "%.*s", (int)host_len, h->credentials);
    snprintf(job->port, sizeof job->port, "%s", colon != NULL ? colon + 1 : "443");
    snprintf(job->path, sizeof job->path, "/role-aliases/%s/credentials", h->role_alias != NULL ? h->role_alias : "");
    snprintf(job->thing, sizeof job->thing, "%s", thing_name != NULL ? thing_name : "");
    snprintf(job->ca_file, sizeof job->ca_file, "%s", h->ca_file != NULL ? h->ca_file : "");
    job->cert = malloc(identity->cert_len);
    job->key = malloc(identity->key_len);
    if (job->cert == NULL || job->key == NULL) {
        free(job->cert);
        free(job->key);
        free(job);
        return -1;
    }
    memcpy(job->cert, identity->cert_der, identity->cert_len);
    memcpy(job->key, identity->key_der, identity->key_len);
    job->cert_len = identity->cert_len;
    job->key_len = identity->key_len;
    job->out_fd = h->credentials_pipe[1];
    host_log(h, CL_LOG_INFO, "proving the certificate at the credentials provider %s (role alias %s)",
             h->credentials, h->role_alias != NULL ? h->role_alias : "");
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, job) != 0) {
        OPENSSL_cleanse(job->key, job->key_len);
        free(job->cert);
        free(job->key);
        free(job);
        return -1;
    }
    pthread_detach(thread);
    return 0;
}

void host_credentials_service(host_t *h)
{
    result_t r;
    if (read(h->credentials_pipe[0], &r, sizeof r) == (ssize_t)sizeof r) {
        r.message[sizeof r.message - 1] = '\0';
        cl_on_credentials(h->dev, r.ok, r.status, r.message);
    }
}

/*
 * The permanent identity: an ECC P-256 key made on the device and its CSR (CreateCertificateFromCsr),
 * or AWS's key from CreateKeysAndCertificate; the certificate from AWS's PEM. Keys leave here as DER
 * in buffers that are wiped when freed.
 */
#include "cl_internal.h"

#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

/* Writes pk's private key as DER into a new wiped-on-free buffer, sized for the key: mbedTLS writes
 * at the end of the buffer, and the DER is moved to its start (no second copy). */
static int key_to_der(mbedtls_pk_context *pk, cl_buf_t *out)
{
    /* P-256 SEC1 is 121 bytes; RSA PKCS#1 is 9 numbers of at most half the modulus, and n, d whole. */
    size_t modulus = (mbedtls_pk_get_bitlen(pk) + 7) / 8;
    size_t cap = mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA ? 5 * modulus + 64 : 160;
    out->data = cl_alloc(cap);
    if (out->data == NULL) {
        return -1;
    }
    int n = mbedtls_pk_write_key_der(pk, out->data, cap);
    if (n <= 0) {
        cl_buf_wipe(out);
        return -1;
    }
    memmove(out->data, out->data + cap - (size_t)n, (size_t)n);
    mbedtls_platform_zeroize(out->data + n, cap - (size_t)n);
    out->len = (size_t)n;
    return 0;
}

/* The CSR's subject: CN = the client id when it is plain, else a fixed name (AWS ignores it). */
static void subject(const cl_device_t *dev, char *out, size_t size)
{
    const char *id = dev->client_id;
    bool plain = id[0] != '\0' && strlen(id) <= 64;
    for (const char *c = id; plain && *c != '\0'; c++) {
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                || *c == '-' || *c == '_' || *c == '.' || *c == ':';
    }
    strncpy(out, "CN=", size);
    strncat(out, plain ? id : "claimlink-device", size - 4);
}

int cl_keys_make_csr(cl_device_t *dev, cl_buf_t *key_der, char **csr_pem)
{
    mbedtls_pk_context pk;
    mbedtls_x509write_csr req;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&req);
    char name[72];
    subject(dev, name, sizeof name);
    const size_t cap = 800; /* a P-256 CSR in PEM is ~480 bytes */
    char *pem = cl_alloc(cap);
    int rc = -1;
    if (pem != NULL && mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0
        && mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), cl_rng, dev) == 0
        && mbedtls_x509write_csr_set_subject_name(&req, name) == 0) {
        mbedtls_x509write_csr_set_key(&req, &pk);
        mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
        if (mbedtls_x509write_csr_pem(&req, (unsigned char *)pem, cap, cl_rng, dev) == 0
            && key_to_der(&pk, key_der) == 0) {
            *csr_pem = pem;
            pem = NULL;
            rc = 0;
        }
    }
    cl_free(pem);
    mbedtls_x509write_csr_free(&req);
    mbedtls_pk_free(&pk);
    return rc;
}

int cl_keys_pem_key_to_der(cl_device_t *dev, const char *pem, cl_buf_t *key_der)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    size_t len = strlen(pem) + 1; /* mbedTLS wants the NUL of a PEM counted */
#if CL_MBEDTLS3
    int rc = mbedtls_pk_parse_key(&pk, (const unsigned char *)pem, len, NULL, 0, cl_rng, dev);
#else
    (void)dev;
    int rc = mbedtls_pk_parse_key(&pk, (const unsigned char *)pem, len, NULL, 0);
#endif
    if (rc == 0) {
        rc = key_to_der(&pk, key_der);
    }
    mbedtls_pk_free(&pk);
    return rc == 0 ? 0 : -1;
}

int cl_keys_pem_cert_to_der(const char *pem, cl_buf_t *cert_der)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int rc = mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, strlen(pem) + 1);
    if (rc == 0) {
        cert_der->data = cl_alloc(crt.raw.len);
        if (cert_der->data == NULL) {
            rc = -1;
        } else {
            memcpy(cert_der->data, crt.raw.p, crt.raw.len);
            cert_der->len = crt.raw.len;
        }
    }
    mbedtls_x509_crt_free(&crt);
    return rc == 0 ? 0 : -1;
}

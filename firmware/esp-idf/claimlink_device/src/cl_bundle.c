/*
 * The claim bundle (docs/protocol.md section 5.2): decoding it, checking it at commit, and the claim
 * key as DER for the MQTT connection.
 *
 * An RSA key sent as primes is rebuilt with mbedtls_rsa_import_raw + mbedtls_rsa_complete. The primes
 * and the exponent are untrusted: values below 3, even values and oversized ones (p, q > 4096 bits,
 * e > 64 bits) are refused before any arithmetic, and the rebuilt n must be the claim certificate's
 * modulus. Every buffer that held key material is wiped before it is freed.
 */
#include "cl_internal.h"

#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>

ClaimBundle *cl_bundle_decode(const uint8_t *bundle, size_t len)
{
    return claim_bundle__unpack(&cl_pb_allocator, len, bundle);
}

/* A big-endian number we may do arithmetic on: at least 3, odd, at most max_bits. */
static bool plausible(const ProtobufCBinaryData *n, size_t max_bits)
{
    size_t i = 0;
    while (i < n->len && n->data[i] == 0) {
        i++; /* leading zeros */
    }
    size_t len = n->len - i;
    if (len == 0) {
        return false; /* 0 */
    }
    if ((n->data[n->len - 1] & 1) == 0) {
        return false; /* even */
    }
    if (len == 1 && n->data[i] < 3) {
        return false; /* 1 */
    }
    size_t bits = (len - 1) * 8;
    for (uint8_t top = n->data[i]; top != 0; top >>= 1) {
        bits++;
    }
    return bits <= max_bits;
}

/* Rebuilds the RSA key of `primes` into pk (set up as RSA). */
static int rebuild_rsa(const RsaPrimes *primes, mbedtls_pk_context *pk)
{
    if (!plausible(&primes->p, 4096) || !plausible(&primes->q, 4096) || !plausible(&primes->e, 64)) {
        return -1;
    }
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0) {
        return -1;
    }
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*pk);
    if (mbedtls_rsa_import_raw(rsa, NULL, 0, primes->p.data, primes->p.len, primes->q.data,
                               primes->q.len, NULL, 0, primes->e.data, primes->e.len)
        != 0) {
        return -1;
    }
    return mbedtls_rsa_complete(rsa) == 0 ? 0 : -1;
}

/* n of the rebuilt key equals the certificate's modulus. */
static bool same_modulus(mbedtls_pk_context *key, mbedtls_pk_context *cert_pk)
{
    if (mbedtls_pk_get_type(cert_pk) != MBEDTLS_PK_RSA) {
        return false;
    }
    mbedtls_mpi n_key, n_cert;
    mbedtls_mpi_init(&n_key);
    mbedtls_mpi_init(&n_cert);
    bool same = mbedtls_rsa_export(mbedtls_pk_rsa(*key), &n_key, NULL, NULL, NULL, NULL) == 0
                && mbedtls_rsa_export(mbedtls_pk_rsa(*cert_pk), &n_cert, NULL, NULL, NULL, NULL) == 0
                && mbedtls_mpi_cmp_mpi(&n_key, &n_cert) == 0;
    mbedtls_mpi_free(&n_key);
    mbedtls_mpi_free(&n_cert);
    return same;
}

/* Parses a DER private key (PKCS#1, PKCS#8 or SEC1) into pk. */
static int parse_key_der(const cl_device_t *dev, const ProtobufCBinaryData *der, mbedtls_pk_context *pk)
{
#if CL_MBEDTLS3
    return mbedtls_pk_parse_key(pk, der->data, der->len, NULL, 0, cl_rng, (void *)dev);
#else
    (void)dev;
    return mbedtls_pk_parse_key(pk, der->data, der->len, NULL, 0);
#endif
}

static bool key_matches_cert(const cl_device_t *dev, mbedtls_pk_context *key, mbedtls_pk_context *cert_pk)
{
#if CL_MBEDTLS3
    return mbedtls_pk_check_pair(cert_pk, key, cl_rng, (void *)dev) == 0;
#else
    (void)dev;
    return mbedtls_pk_check_pair(cert_pk, key) == 0;
#endif
}

/* Loads the bundle's key into pk and checks it belongs to the certificate. */
static bool load_key(const cl_device_t *dev, const ClaimBundle *b, mbedtls_pk_context *pk)
{
    bool has_der = b->private_key_der.len > 0;
    bool has_primes = b->rsa_key != NULL;
    if (has_der == has_primes) {
        return false; /* neither or both */
    }
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    bool ok = mbedtls_x509_crt_parse_der(&crt, b->certificate_der.data, b->certificate_der.len) == 0;
    if (ok && has_primes) {
        ok = rebuild_rsa(b->rsa_key, pk) == 0 && same_modulus(pk, &crt.pk);
    } else if (ok) {
        ok = parse_key_der(dev, &b->private_key_der, pk) == 0 && key_matches_cert(dev, pk, &crt.pk);
    }
    mbedtls_x509_crt_free(&crt);
    return ok;
}

bool cl_bundle_valid(const cl_device_t *dev, const uint8_t *bundle, size_t len)
{
    ClaimBundle *b = cl_bundle_decode(bundle, len);
    if (b == NULL) {
        return false;
    }
    bool ok = b->certificate_der.len > 0 && b->iot_endpoint != NULL && b->iot_endpoint[0] != '\0';
    if (ok) {
        mbedtls_pk_context pk;
        mbedtls_pk_init(&pk);
        ok = load_key(dev, b, &pk);
        mbedtls_pk_free(&pk); /* mbedTLS zeroizes the key's numbers */
    }
    claim_bundle__free_unpacked(b, &cl_pb_allocator);
    return ok;
}

int cl_bundle_key_der(const cl_device_t *dev, const ClaimBundle *b, cl_buf_t *out)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = -1;
    /* PKCS#1 of an RSA key is 9 numbers of at most the primes' length, plus a little ASN.1. */
    size_t cap = 4096;
    if (b->rsa_key != NULL) {
        size_t prime = b->rsa_key->p.len > b->rsa_key->q.len ? b->rsa_key->p.len : b->rsa_key->q.len;
        cap = 9 * prime + b->rsa_key->e.len + 64;
    } else {
        cap = b->private_key_der.len + 64;
    }
    /* mbedTLS writes at the end of the buffer: the DER is moved to its start (no second copy). */
    out->data = cl_alloc(cap);
    if (out->data != NULL && load_key(dev, b, &pk)) {
        int n = mbedtls_pk_write_key_der(&pk, out->data, cap);
        if (n > 0) {
            memmove(out->data, out->data + cap - (size_t)n, (size_t)n);
            mbedtls_platform_zeroize(out->data + n, cap - (size_t)n);
            out->len = (size_t)n;
            rc = 0;
        }
    }
    if (rc != 0) {
        cl_buf_wipe(out);
    }
    mbedtls_pk_free(&pk);
    return rc;
}

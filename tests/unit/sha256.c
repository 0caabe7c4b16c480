/*
 * sha256.c — SHA-256 through OpenSSL's libcrypto, the only file of the tests that uses it.
 */
#include "sha256.h"

#include <openssl/evp.h>
#include <stdio.h>

#include "helpers.h"

void test_sha256_hex(const void *data, size_t n, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data, n, digest, &length, EVP_sha256(), NULL) != 1 || length != 32) fail_msg("SHA-256 failed");
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

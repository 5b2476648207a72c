/* See seal.h. */
#include "seal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_TRANSPORT 4

struct wg_sealer {
  EVP_CIPHER_CTX *ctx;
  int keyed; /* `key` is loaded in ctx (since the last wg_sealer_forget) */
  /* A batch seals message after message under one session key: each then
   * needs only its nonce set. */
  uint8_t key[WG_KEY_LEN];
};

wg_sealer *wg_sealer_new(void) {
  wg_sealer *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->ctx = EVP_CIPHER_CTX_new();
  /* The cipher once; each message then sets only its key and nonce. */
  if (!s->ctx || EVP_EncryptInit_ex(s->ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1) {
    wg_sealer_free(s);
    return NULL;
  }
  return s;
}

void wg_sealer_free(wg_sealer *s) {
  if (!s) return;
  if (s->ctx) EVP_CIPHER_CTX_free(s->ctx);
  free(s);
}

void wg_sealer_forget(wg_sealer *s) {
  static const uint8_t zero_key[WG_KEY_LEN] = {0};
  static const uint8_t zero_nonce[12] = {0};
  /* A batch that sealed nothing (handshake messages only, or data that needed no reply) has nothing to forget. */
  if (!s || !s->keyed) return;
  EVP_EncryptInit_ex(s->ctx, NULL, NULL, zero_key, zero_nonce);
  OPENSSL_cleanse(s->key, sizeof s->key);
  s->keyed = 0;
}

uint32_t wg_sealed_len(uint32_t len) {
  return WG_TRANSPORT_HEADER + ((len + WG_PADDING - 1) & ~(uint32_t)(WG_PADDING - 1)) + WG_TAG_LEN;
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

int wg_seal(wg_sealer *s, uint8_t *out, const uint8_t *packet, uint32_t len,
            const uint8_t key[WG_KEY_LEN], uint32_t receiver, uint32_t counter_lo, uint32_t counter_hi) {
  uint32_t padded = wg_sealed_len(len) - WG_TRANSPORT_HEADER - WG_TAG_LEN;
  put_le32(out, MESSAGE_TRANSPORT);
  put_le32(out + 4, receiver);
  put_le32(out + 8, counter_lo);
  put_le32(out + 12, counter_hi);
  /* Nonce: 32 zero bits, then the 64-bit little-endian counter (§5.4.6). */
  uint8_t nonce[12] = {0};
  memcpy(nonce + 4, out + 8, 8);
  uint8_t *body = out + WG_TRANSPORT_HEADER;
  /* The packet and its zero padding are laid out in place and encrypted in one update. */
  if (len > 0) memcpy(body, packet, len);
  memset(body + len, 0, padded - len);
  int n = 0, fin = 0;
  const uint8_t *new_key = NULL;
  if (!s->keyed || CRYPTO_memcmp(s->key, key, WG_KEY_LEN) != 0) {
    memcpy(s->key, key, WG_KEY_LEN);
    new_key = key;
  }
  s->keyed = 1;
  if (EVP_EncryptInit_ex2(s->ctx, NULL, new_key, nonce, NULL) != 1) goto fail;
  if (padded > 0 && EVP_EncryptUpdate(s->ctx, body, &n, body, (int)padded) != 1) goto fail;
  if (EVP_EncryptFinal_ex(s->ctx, body + n, &fin) != 1) goto fail;
  if ((uint32_t)(n + fin) != padded) goto fail;
  /* The tag straight through the provider's parameters (what EVP_CTRL_AEAD_GET_TAG translates to). */
  OSSL_PARAM tag[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, body + padded, WG_TAG_LEN),
                       OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(s->ctx, tag) != 1) goto fail;
  return 0;
fail:
  /* What the context holds is unknown now: cleansed at once, and the next message loads its key. */
  wg_sealer_forget(s);
  return -1;
}

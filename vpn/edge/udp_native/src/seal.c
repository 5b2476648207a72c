/* See seal.h. */
#include "seal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_TRANSPORT 4

struct wg_sealer {
  EVP_CIPHER_CTX *ctx;
  int keyed; /* a session key is loaded (since the last wg_sealer_forget) */
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
  /* Encrypted straight from the packet; the zero padding is a second, short update. */
  static const uint8_t zeros[WG_PADDING] = {0};
  int n = 0, pad = 0, fin = 0;
  s->keyed = 1;
  if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, key, nonce) != 1) return -1;
  if (len > 0 && EVP_EncryptUpdate(s->ctx, body, &n, packet, (int)len) != 1) return -1;
  if (padded > len && EVP_EncryptUpdate(s->ctx, body + n, &pad, zeros, (int)(padded - len)) != 1) return -1;
  if (EVP_EncryptFinal_ex(s->ctx, body + n + pad, &fin) != 1) return -1;
  if ((uint32_t)(n + pad + fin) != padded) return -1;
  if (EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, WG_TAG_LEN, body + padded) != 1) return -1;
  return 0;
}

/* The Internet checksum's one's complement sum (RFC 1071) in C: the JS loop
 * (netstack/wire/checksum.ts) costs about 0.7 us per full-sized segment, once
 * per segment built and once per segment verified. Summed in host order
 * over 32-bit words into 64 bits, folded, then byte-swapped to network order
 * (RFC 1071 §2(B): the sum is byte-order independent up to that swap). */
#include <node_api.h>
#include <stdint.h>
#include <string.h>

static uint32_t fold64(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  uint32_t t = (uint32_t)s;
  t = (t & 0xffffu) + (t >> 16);
  t = (t & 0xffffu) + (t >> 16);
  return t;
}

/* One's complement sum of p[0, n), folded to 16 bits, in network byte order. */
static uint32_t ones_sum(const uint8_t *p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    acc += w;
  }
  if (i + 2 <= n) {
    uint16_t h;
    memcpy(&h, p + i, 2);
    acc += h;
    i += 2;
  }
  /* An odd last byte is the high byte of a zero-padded word (RFC 1071 §4.1). */
  if (i < n) {
    uint8_t pad[2] = {p[i], 0};
    uint16_t h;
    memcpy(&h, pad, 2);
    acc += h;
  }
  uint32_t s = fold64(acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = ((s & 0xff) << 8) | (s >> 8);
#endif
  return s;
}

/* sum(buf: Uint8Array, start, end) → the folded sum of buf[start, end); -1 for bad arguments. */
static napi_value js_sum(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  int32_t start, end;
  int32_t r = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 3 &&
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) == napi_ok && type == napi_uint8_array &&
      napi_get_value_int32(env, argv[1], &start) == napi_ok && napi_get_value_int32(env, argv[2], &end) == napi_ok &&
      start >= 0 && start <= end && (size_t)end <= length) {
    r = (int32_t)ones_sum((const uint8_t *)data + start, (size_t)(end - start));
  }
  napi_create_int32(env, r, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sum", NULL, js_sum, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

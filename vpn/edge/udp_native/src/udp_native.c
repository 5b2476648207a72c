/* Node-API binding of batch_io: one uv_poll_t per socket on Node's own
 * event loop (no thread), one JavaScript call per received batch.
 *
 * Memory: the receive slots and the entry tables are ArrayBuffers created
 * here and handed to JavaScript; the kernel writes them only inside the poll
 * callback, right before the JS batch callback, so JavaScript may read them
 * until that callback returns and must copy anything it keeps. Queued sends
 * are copies owned by batch_io, so the caller may reuse its Buffer at once.
 *
 * Lifetime: as native/napi_poll.h; close() from inside the batch callback is
 * safe: the drain loop checks `closing` after every call into JavaScript. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../native/napi_poll.h"
#include "batch_io.h"
#include "seal.h"

/* recvmmsg rounds per readable event before yielding to the rest of the loop. */
#define DRAIN_ROUNDS 16

typedef struct {
  np_handle h; /* first: what np_close frees */
  bio_socket bio;
  napi_ref on_batch;
  wg_sealer *sealer; /* NULL when Node's OpenSSL cannot seal: sealSend then answers -ENOTSUP */
} native_socket;

#define CHECK NP_CHECK

static void after_flush(native_socket *ns, int r) {
  np_set_events(&ns->h, r == -EAGAIN ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  native_socket *ns = (native_socket *)p->data;
  if (ns->h.closing) return;
  if (status < 0) {
    ns->bio.c.rx_errors++;
    ns->bio.last_errno = -status;
    return;
  }
  if (events & UV_WRITABLE) after_flush(ns, bio_flush(&ns->bio));
  if (!(events & UV_READABLE)) return;
  napi_env env = ns->h.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  for (int round = 0; round < DRAIN_ROUNDS && !ns->h.closing; round++) {
    int n = bio_recv_batch(&ns->bio);
    if (n <= 0) break;
    napi_value count;
    napi_create_int32(env, n, &count);
    np_call(&ns->h, ns->on_batch, 1, &count);
  }
  napi_close_handle_scope(env, scope);
}

static void release(np_handle *h) {
  native_socket *ns = (native_socket *)h;
  bio_close(&ns->bio);
  wg_sealer_free(ns->sealer);
  ns->sealer = NULL;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EINVAL ? "EINVAL" : err == EAFNOSUPPORT ? "EAFNOSUPPORT" : "EIO";
  napi_throw_error(env, code, msg);
  return NULL;
}

/* open(address, port, gso, gro, onBatch) → { handle, port, family, gso, gro, recv, offsets, lengths, addrs } */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char address[64];
  size_t alen;
  int32_t port;
  bool gso, gro;
  CHECK(napi_get_value_string_latin1(env, argv[0], address, sizeof address, &alen));
  CHECK(napi_get_value_int32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &gso));
  CHECK(napi_get_value_bool(env, argv[3], &gro));
  native_socket *ns = calloc(1, sizeof *ns);
  if (!ns) return throw_errno(env, "udp_native open", ENOMEM);
  ns->h.env = env;
  ns->h.on_poll = on_poll;
  ns->h.release = release;
  int r = bio_open(&ns->bio, address, port, gso, gro);
  if (r < 0) {
    free(ns);
    return throw_errno(env, "udp_native bind", -r);
  }
  ns->sealer = wg_sealer_new();
  napi_value result, handle, abs[4];
  void *mem[4];
  size_t sizes[4] = {(size_t)BIO_RECV_SLOTS * BIO_SLOT_SIZE, BIO_MAX_ENTRIES * 4, BIO_MAX_ENTRIES * 4, BIO_MAX_ENTRIES * BIO_ADDR_ENTRY};
  int ok = (ns->on_batch = np_keep(&ns->h, argv[4])) != NULL;
  for (int i = 0; ok && i < 4; i++) ok = (abs[i] = np_arraybuffer(&ns->h, sizes[i], &mem[i])) != NULL;
  if (!ok) {
    np_abandon(&ns->h);
    bio_close(&ns->bio);
    wg_sealer_free(ns->sealer);
    free(ns);
    return throw_errno(env, "udp_native buffers", ENOMEM);
  }
  ns->bio.recv_buf = mem[0];
  ns->bio.entry_offset = mem[1];
  ns->bio.entry_len = mem[2];
  ns->bio.entry_addr = mem[3];
  handle = np_start(&ns->h, ns->bio.fd, "SightlineBatchUdp", UV_READABLE);
  if (!handle) return NULL;
  CHECK(napi_create_object(env, &result));
  np_set(env, result, "handle", handle);
  np_set(env, result, "port", np_num(env, bio_local_port(&ns->bio)));
  np_set(env, result, "family", np_num(env, ns->bio.family == AF_INET ? 4 : 6));
  np_set(env, result, "gso", np_num(env, ns->bio.gso));
  np_set(env, result, "gro", np_num(env, ns->bio.gro));
  np_set(env, result, "seal", np_num(env, ns->sealer != NULL));
  const char *names[4] = {"recv", "offsets", "lengths", "addrs"};
  for (int i = 0; i < 4; i++) np_set(env, result, names[i], abs[i]);
  return result;
}

static native_socket *unwrap(napi_env env, napi_value v) {
  return (native_socket *)np_unwrap(env, v);
}

/* The call's `n` arguments into argv (missing ones undefined) and the socket of argv[0]; NULL when closed or not one. */
static native_socket *socket_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  native_socket *ns = unwrap(env, argv[0]);
  return ns && !ns->h.closing ? ns : NULL;
}

/* A Uint8Array argument's bytes; 0 or -EINVAL. */
static int bytes_arg(napi_env env, napi_value v, void **data, size_t *length) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) != napi_ok || type != napi_uint8_array) return -EINVAL;
  return 0;
}

/* The destination arguments (address text, port); 0 or -EINVAL. */
static int destination_args(napi_env env, napi_value address, napi_value port, char text[64], int32_t *port_out) {
  size_t alen;
  if (napi_get_value_string_latin1(env, address, text, 64, &alen) != napi_ok) return -EINVAL;
  if (napi_get_value_int32(env, port, port_out) != napi_ok) return -EINVAL;
  return 0;
}

/* After a datagram was queued: a full batch goes out at once; the wrapper flushes the rest at the
 * end of the macrotask. Returns what the JS call returns: datagrams still queued. */
static napi_value queued(napi_env env, native_socket *ns) {
  if (ns->bio.q_count >= BIO_SEND_BATCH && !(ns->h.poll_events & UV_WRITABLE)) after_flush(ns, bio_flush(&ns->bio));
  return np_num(env, ns->bio.q_count);
}

/* send(handle, data: Uint8Array, address, port) → datagrams still queued, or -errno when dropped. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  native_socket *ns = socket_call(env, info, 4, argv);
  if (!ns) return np_num(env, -EBADF);
  void *data;
  size_t length;
  char address[64];
  int32_t port;
  if (bytes_arg(env, argv[1], &data, &length) != 0 || destination_args(env, argv[2], argv[3], address, &port) != 0) return np_num(env, -EINVAL);
  int r = bio_enqueue(&ns->bio, data, (uint32_t)length, address, port);
  if (r < 0) return np_num(env, r);
  return queued(env, ns);
}

/* sealSend(handle, packet: Uint8Array, key: Uint8Array(32), receiver, counterLo, counterHi, address, port)
 * → datagrams still queued, or -errno when dropped: the transport message for
 * `packet` (seal.h), sealed into the queue, so neither a sealed copy in
 * JavaScript nor a second copy into the queue is made. */
static napi_value js_seal_send(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  native_socket *ns = socket_call(env, info, 8, argv);
  if (!ns) return np_num(env, -EBADF);
  if (!ns->sealer) return np_num(env, -ENOTSUP);
  void *packet, *key;
  size_t length, key_len;
  uint32_t receiver, lo, hi;
  char address[64];
  int32_t port;
  if (bytes_arg(env, argv[1], &packet, &length) != 0 || bytes_arg(env, argv[2], &key, &key_len) != 0 || key_len != WG_KEY_LEN) return np_num(env, -EINVAL);
  if (napi_get_value_uint32(env, argv[3], &receiver) != napi_ok || napi_get_value_uint32(env, argv[4], &lo) != napi_ok || napi_get_value_uint32(env, argv[5], &hi) != napi_ok) return np_num(env, -EINVAL);
  if (destination_args(env, argv[6], argv[7], address, &port) != 0) return np_num(env, -EINVAL);
  if (length > BIO_GSO_MAX_BYTES) return np_num(env, -EMSGSIZE);
  int err = 0;
  uint8_t *out = bio_reserve(&ns->bio, wg_sealed_len((uint32_t)length), address, port, &err);
  if (!out) return np_num(env, err);
  if (wg_seal(ns->sealer, out, packet, (uint32_t)length, key, receiver, lo, hi) != 0) {
    bio_unreserve(&ns->bio);
    ns->bio.c.tx_errors++;
    return np_num(env, -EIO);
  }
  return queued(env, ns);
}

/* flush(handle) → datagrams still queued (waiting for the socket to become writable). */
static napi_value js_flush(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  native_socket *ns = socket_call(env, info, 1, argv);
  if (!ns) return np_num(env, 0);
  wg_sealer_forget(ns->sealer); /* the end of a batch: the last session key leaves the cipher context */
  if (ns->bio.q_count > 0 && !(ns->h.poll_events & UV_WRITABLE)) after_flush(ns, bio_flush(&ns->bio));
  return np_num(env, ns->bio.q_count);
}

/* close(handle, onClosed?) — idempotent; onClosed runs once the fd is closed. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_socket *ns = unwrap(env, argv[0]);
  if (!ns || ns->h.closing) return NULL;
  if (ns->bio.q_count > 0) bio_flush(&ns->bio); /* best effort: what the kernel takes now */
  np_close(&ns->h, argv[1]);
  return NULL;
}

/* counters(handle) → plain object of numbers. */
static napi_value js_counters(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_socket *ns = unwrap(env, argv[0]);
  CHECK(napi_create_object(env, &o));
  if (!ns) return o;
  const bio_counters *c = &ns->bio.c;
#define C(field) np_set(env, o, #field, np_num(env, c->field))
  C(rx_datagrams); C(rx_batches); C(rx_syscalls); C(rx_gro_messages); C(rx_errors); C(rx_dropped_overflow);
  C(tx_datagrams); C(tx_syscalls); C(tx_gso_messages); C(tx_gso_fallbacks); C(tx_eagain); C(tx_errors); C(tx_dropped_queue_full);
#undef C
  np_set(env, o, "tx_queued", np_num(env, ns->bio.q_count));
  np_set(env, o, "last_errno", np_num(env, ns->bio.last_errno));
  np_set(env, o, "gso", np_num(env, ns->bio.gso));
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"sealSend", NULL, js_seal_send, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, js_flush, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

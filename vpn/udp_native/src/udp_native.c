/* Node-API binding of batch_io: one uv_poll_t per socket on Node's own
 * event loop (no thread), one JavaScript call per received batch.
 *
 * Memory: the receive slots and the entry tables are ArrayBuffers created
 * here and handed to JavaScript; the kernel writes them only inside the poll
 * callback, right before the JS batch callback, so JavaScript may read them
 * until that callback returns and must copy anything it keeps. Queued sends
 * are copies owned by batch_io, so the caller may reuse its Buffer at once.
 *
 * Lifetime: close() stops polling and uv_close()s the handle; the fd is
 * closed and the struct freed only in the close callback (and once the
 * External is finalized), so close() from inside the batch callback is safe:
 * the drain loop checks `closing` after every call into JavaScript. */
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "batch_io.h"

/* recvmmsg rounds per readable event before yielding to the rest of the loop. */
#define DRAIN_ROUNDS 16

typedef struct {
  bio_socket bio;
  napi_env env;
  uv_poll_t poll;
  napi_ref on_batch, on_closed, resource;
  napi_ref buffers[4]; /* recv, offsets, lengths, addrs: kept alive while polling */
  napi_async_context async;
  int poll_events;
  int closing, handle_closed, finalized;
} native_socket;

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "EINTERNAL", "udp_native: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static void free_if_done(native_socket *ns) {
  if (ns->handle_closed && ns->finalized) free(ns);
}

static void call_js(native_socket *ns, napi_ref fn_ref, int argc, napi_value *argv) {
  napi_env env = ns->env;
  napi_value fn, resource, result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_reference_value(env, ns->resource, &resource);
  /* make_callback runs queued microtasks and nextTicks afterwards, as for any Node I/O callback. */
  if (napi_make_callback(env, ns->async, resource, fn, (size_t)argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* an uncaught exception, like one thrown from a dgram 'message' listener */
  }
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_poll(native_socket *ns, int events) {
  if (ns->closing || events == ns->poll_events) return;
  ns->poll_events = events;
  uv_poll_start(&ns->poll, events, on_poll); /* libuv stores the callback on every start */
}

static void after_flush(native_socket *ns, int r) {
  set_poll(ns, r == -EAGAIN ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  native_socket *ns = (native_socket *)h->data;
  if (ns->closing) return;
  if (status < 0) {
    ns->bio.c.rx_errors++;
    ns->bio.last_errno = -status;
    return;
  }
  if (events & UV_WRITABLE) after_flush(ns, bio_flush(&ns->bio));
  if (!(events & UV_READABLE)) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(ns->env, &scope) != napi_ok) return;
  for (int round = 0; round < DRAIN_ROUNDS && !ns->closing; round++) {
    int n = bio_recv_batch(&ns->bio);
    if (n <= 0) break;
    napi_value count;
    napi_create_int32(ns->env, n, &count);
    call_js(ns, ns->on_batch, 1, &count);
  }
  napi_close_handle_scope(ns->env, scope);
}

static void on_handle_closed(uv_handle_t *h) {
  native_socket *ns = (native_socket *)h->data;
  bio_close(&ns->bio);
  napi_env env = ns->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    if (ns->on_closed) call_js(ns, ns->on_closed, 0, NULL);
    napi_close_handle_scope(env, scope);
  }
  if (ns->on_closed) napi_delete_reference(env, ns->on_closed);
  napi_delete_reference(env, ns->on_batch);
  napi_delete_reference(env, ns->resource);
  for (int i = 0; i < 4; i++) napi_delete_reference(env, ns->buffers[i]);
  napi_async_destroy(env, ns->async);
  ns->handle_closed = 1;
  free_if_done(ns);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  native_socket *ns = (native_socket *)data;
  ns->finalized = 1;
  free_if_done(ns);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EINVAL ? "EINVAL" : err == EAFNOSUPPORT ? "EAFNOSUPPORT" : "EIO";
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value make_buffer(napi_env env, native_socket *ns, int i, size_t bytes, void **data) {
  napi_value ab;
  if (napi_create_arraybuffer(env, bytes, data, &ab) != napi_ok) return NULL;
  napi_create_reference(env, ab, 1, &ns->buffers[i]);
  return ab;
}

static void set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
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
  ns->env = env;
  int r = bio_open(&ns->bio, address, port, gso, gro);
  if (r < 0) {
    free(ns);
    return throw_errno(env, "udp_native bind", -r);
  }
  uv_loop_t *loop;
  napi_value result, handle, resource, name, abs[4];
  void *mem[4];
  size_t sizes[4] = {(size_t)BIO_RECV_SLOTS * BIO_SLOT_SIZE, BIO_MAX_ENTRIES * 4, BIO_MAX_ENTRIES * 4, BIO_MAX_ENTRIES * BIO_ADDR_ENTRY};
  for (int i = 0; i < 4; i++) {
    abs[i] = make_buffer(env, ns, i, sizes[i], &mem[i]);
    if (!abs[i]) {
      for (int j = 0; j < i; j++) napi_delete_reference(env, ns->buffers[j]);
      bio_close(&ns->bio);
      free(ns);
      return throw_errno(env, "udp_native buffers", ENOMEM);
    }
  }
  ns->bio.recv_buf = mem[0];
  ns->bio.entry_offset = mem[1];
  ns->bio.entry_len = mem[2];
  ns->bio.entry_addr = mem[3];
  CHECK(napi_create_reference(env, argv[4], 1, &ns->on_batch));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &ns->resource));
  CHECK(napi_create_string_utf8(env, "SightlineBatchUdp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &ns->async));
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &ns->poll, ns->bio.fd);
  ns->poll.data = ns;
  ns->poll_events = UV_READABLE;
  uv_poll_start(&ns->poll, UV_READABLE, on_poll);
  CHECK(napi_create_external(env, ns, finalize, NULL, &handle));
  CHECK(napi_create_object(env, &result));
  set_prop(env, result, "handle", handle);
  set_prop(env, result, "port", num(env, bio_local_port(&ns->bio)));
  set_prop(env, result, "family", num(env, ns->bio.family == AF_INET ? 4 : 6));
  set_prop(env, result, "gso", num(env, ns->bio.gso));
  set_prop(env, result, "gro", num(env, ns->bio.gro));
  const char *names[4] = {"recv", "offsets", "lengths", "addrs"};
  for (int i = 0; i < 4; i++) set_prop(env, result, names[i], abs[i]);
  return result;
}

static native_socket *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (native_socket *)p;
}

/* send(handle, data: Uint8Array, address, port) → datagrams still queued, or -errno when dropped. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_socket *ns = unwrap(env, argv[0]);
  if (!ns || ns->closing) return num(env, -EBADF);
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  char address[64];
  size_t alen;
  int32_t port;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) return num(env, -EINVAL);
  if (napi_get_value_string_latin1(env, argv[2], address, sizeof address, &alen) != napi_ok) return num(env, -EINVAL);
  if (napi_get_value_int32(env, argv[3], &port) != napi_ok) return num(env, -EINVAL);
  int r = bio_enqueue(&ns->bio, data, (uint32_t)length, address, port);
  if (r < 0) return num(env, r);
  /* A full batch goes out at once; the wrapper flushes the rest at the end of the macrotask. */
  if (ns->bio.q_count >= BIO_SEND_BATCH && !(ns->poll_events & UV_WRITABLE)) after_flush(ns, bio_flush(&ns->bio));
  return num(env, ns->bio.q_count);
}

/* flush(handle) → datagrams still queued (waiting for the socket to become writable). */
static napi_value js_flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_socket *ns = unwrap(env, argv[0]);
  if (!ns || ns->closing) return num(env, 0);
  if (ns->bio.q_count > 0 && !(ns->poll_events & UV_WRITABLE)) after_flush(ns, bio_flush(&ns->bio));
  return num(env, ns->bio.q_count);
}

/* close(handle, onClosed?) — idempotent; onClosed runs once the fd is closed. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_socket *ns = unwrap(env, argv[0]);
  if (!ns || ns->closing) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_function) CHECK(napi_create_reference(env, argv[1], 1, &ns->on_closed));
  if (ns->bio.q_count > 0) bio_flush(&ns->bio); /* best effort: what the kernel takes now */
  ns->closing = 1;
  uv_poll_stop(&ns->poll);
  uv_close((uv_handle_t *)&ns->poll, on_handle_closed);
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
#define C(field) set_prop(env, o, #field, num(env, c->field))
  C(rx_datagrams); C(rx_batches); C(rx_syscalls); C(rx_gro_messages); C(rx_errors); C(rx_dropped_overflow);
  C(tx_datagrams); C(tx_syscalls); C(tx_gso_messages); C(tx_gso_fallbacks); C(tx_eagain); C(tx_errors); C(tx_dropped_queue_full);
#undef C
  set_prop(env, o, "tx_queued", num(env, ns->bio.q_count));
  set_prop(env, o, "last_errno", num(env, ns->bio.last_errno));
  set_prop(env, o, "gso", num(env, ns->bio.gso));
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, js_flush, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

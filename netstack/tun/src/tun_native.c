/* Node-API binding of tun_io: one uv_poll_t per TUN fd on Node's own event
 * loop (no thread), one JavaScript call per batch of read packets, one call
 * from JavaScript per batch of packets to write.
 *
 * Memory: the receive area and the offset/length tables are ArrayBuffers
 * created here and handed to JavaScript; the kernel writes them only inside
 * the poll callback, right before the JS batch callback, so JavaScript may
 * read them until that callback returns and must copy anything it keeps.
 * Written packets are either in the kernel when write() returns or copied
 * into the bounded queue, so the caller may reuse its Buffers at once.
 *
 * Lifetime: close() stops polling and uv_close()s the handle; the fd is
 * closed (which removes a TUN the kernel created for us) and the struct
 * freed only in the close callback and once the External is finalized, so
 * close() from inside the batch callback is safe: the drain loop checks
 * `closing` after every call into JavaScript. */
#include <errno.h>
#include <net/if.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tun_io.h"

/* Batches per readable event before yielding to the rest of the loop. */
#define DRAIN_ROUNDS 16

typedef struct {
  tun_dev dev;
  napi_env env;
  uv_poll_t poll;
  napi_ref on_batch, on_fatal, on_closed, resource;
  napi_ref buffers[3]; /* recv, offsets, lengths: kept alive while polling */
  napi_async_context async;
  int poll_events;
  int paused, failed, closing, handle_closed, finalized;
} native_tun;

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, "EINTERNAL", "tun_native: " #call " failed"); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static void free_if_done(native_tun *nt) {
  if (nt->handle_closed && nt->finalized) free(nt);
}

static void call_js(native_tun *nt, napi_ref fn_ref, int argc, napi_value *argv) {
  napi_env env = nt->env;
  napi_value fn, resource, result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_reference_value(env, nt->resource, &resource);
  /* make_callback runs queued microtasks and nextTicks afterwards, as for any Node I/O callback. */
  if (napi_make_callback(env, nt->async, resource, fn, (size_t)argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* the wrapper catches its callbacks' errors; this is a bug in it */
  }
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Polls for what is wanted now: reading unless paused or failed, writing while packets wait. */
static void update_poll(native_tun *nt) {
  if (nt->closing) return;
  int events = (!nt->paused && !nt->failed ? UV_READABLE : 0) | (nt->dev.q_count > 0 && !nt->failed ? UV_WRITABLE : 0);
  if (events == nt->poll_events) return;
  nt->poll_events = events;
  if (events == 0) uv_poll_stop(&nt->poll);
  else uv_poll_start(&nt->poll, events, on_poll);
}

static void fail(native_tun *nt, int err) {
  nt->failed = 1;
  update_poll(nt);
  napi_value code;
  napi_create_int32(nt->env, err, &code);
  call_js(nt, nt->on_fatal, 1, &code);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  native_tun *nt = (native_tun *)h->data;
  if (nt->closing || nt->failed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(nt->env, &scope) != napi_ok) return;
  if (status < 0) {
    /* libuv reports EPOLLERR (the interface was deleted) as UV_EBADF and has stopped polling. */
    nt->poll_events = 0;
    nt->dev.c.rx_errors++;
    nt->dev.last_errno = -status;
    fail(nt, -status);
  } else {
    if (events & UV_WRITABLE) {
      tun_flush(&nt->dev);
      update_poll(nt);
    }
    for (int round = 0; (events & UV_READABLE) && round < DRAIN_ROUNDS && !nt->closing && !nt->paused; round++) {
      int n = tun_read_batch(&nt->dev);
      if (n < 0) {
        fail(nt, -n);
        break;
      }
      if (n == 0) break;
      napi_value count;
      napi_create_int32(nt->env, n, &count);
      call_js(nt, nt->on_batch, 1, &count);
      if (n < nt->dev.batch_cap) break; /* drained: the next read would say EAGAIN */
    }
  }
  napi_close_handle_scope(nt->env, scope);
}

static void on_handle_closed(uv_handle_t *h) {
  native_tun *nt = (native_tun *)h->data;
  tun_close(&nt->dev);
  napi_env env = nt->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    if (nt->on_closed) call_js(nt, nt->on_closed, 0, NULL);
    napi_close_handle_scope(env, scope);
  }
  if (nt->on_closed) napi_delete_reference(env, nt->on_closed);
  napi_delete_reference(env, nt->on_batch);
  napi_delete_reference(env, nt->on_fatal);
  napi_delete_reference(env, nt->resource);
  for (int i = 0; i < 3; i++) napi_delete_reference(env, nt->buffers[i]);
  napi_async_destroy(env, nt->async);
  nt->handle_closed = 1;
  free_if_done(nt);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  native_tun *nt = (native_tun *)data;
  nt->finalized = 1;
  free_if_done(nt);
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static void set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

/* An Error with `errno` and `syscall`, which the wrapper turns into advice. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char text[200];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_value msg, error, sys;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  set_prop(env, error, "errno", num(env, err));
  set_prop(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static const char *step_name(tun_step s) {
  return s == TUN_STEP_NAME ? "name" : s == TUN_STEP_OPEN ? "open /dev/net/tun" : "TUNSETIFF";
}

/* Allocates the struct and the JS-owned receive memory; NULL with nt freed on failure. */
static native_tun *alloc_tun(napi_env env, int32_t batch_cap, napi_value abs[3]) {
  native_tun *nt = calloc(1, sizeof *nt);
  if (!nt) return NULL;
  nt->env = env;
  nt->dev.fd = -1;
  nt->dev.batch_cap = batch_cap < 1 ? 1 : batch_cap > TUN_RECV_BATCH ? TUN_RECV_BATCH : batch_cap;
  size_t sizes[3] = {TUN_RECV_AREA, TUN_RECV_BATCH * 4, TUN_RECV_BATCH * 4};
  void *mem[3];
  for (int i = 0; i < 3; i++) {
    if (napi_create_arraybuffer(env, sizes[i], &mem[i], &abs[i]) != napi_ok ||
        napi_create_reference(env, abs[i], 1, &nt->buffers[i]) != napi_ok) {
      for (int j = 0; j < i; j++) napi_delete_reference(env, nt->buffers[j]);
      free(nt);
      return NULL;
    }
  }
  nt->dev.recv_buf = mem[0];
  nt->dev.entry_offset = mem[1];
  nt->dev.entry_len = mem[2];
  return nt;
}

static void release_tun(napi_env env, native_tun *nt) {
  for (int i = 0; i < 3; i++) napi_delete_reference(env, nt->buffers[i]);
  tun_close(&nt->dev);
  free(nt);
}

/* Starts polling an open fd and builds { handle, name, created, recv, offsets, lengths }. */
static napi_value start(napi_env env, native_tun *nt, napi_value *argv, napi_value abs[3], const char *name, int created) {
  uv_loop_t *loop;
  napi_value result, handle, resource, async_name, text;
  CHECK(napi_create_reference(env, argv[2], 1, &nt->on_batch));
  CHECK(napi_create_reference(env, argv[3], 1, &nt->on_fatal));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &nt->resource));
  CHECK(napi_create_string_utf8(env, "SightlineTun", NAPI_AUTO_LENGTH, &async_name));
  CHECK(napi_async_init(env, resource, async_name, &nt->async));
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &nt->poll, nt->dev.fd);
  nt->poll.data = nt;
  update_poll(nt);
  CHECK(napi_create_external(env, nt, finalize, NULL, &handle));
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &text));
  set_prop(env, result, "handle", handle);
  set_prop(env, result, "name", text);
  set_prop(env, result, "created", num(env, created));
  const char *names[3] = {"recv", "offsets", "lengths"};
  for (int i = 0; i < 3; i++) set_prop(env, result, names[i], abs[i]);
  return result;
}

/* open(name, batchCap, onBatch(count), onFatal(errno)) → see start(); throws Error{errno, syscall}. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], abs[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ + 1], actual[IFNAMSIZ];
  size_t len;
  int32_t batch_cap;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  CHECK(napi_get_value_int32(env, argv[1], &batch_cap));
  if (len >= IFNAMSIZ) return throw_errno(env, step_name(TUN_STEP_NAME), EINVAL);
  native_tun *nt = alloc_tun(env, batch_cap, abs);
  if (!nt) return throw_errno(env, "tun_native buffers", ENOMEM);
  int created = 0;
  tun_step failed;
  int r = tun_open(&nt->dev, name, actual, &created, &failed);
  if (r < 0) {
    release_tun(env, nt);
    return throw_errno(env, step_name(failed), -r);
  }
  return start(env, nt, argv, abs, actual, created);
}

/* adopt(fd, batchCap, onBatch, onFatal) → as open(), for a packet fd opened elsewhere; name "". */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], abs[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, batch_cap;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &batch_cap));
  native_tun *nt = alloc_tun(env, batch_cap, abs);
  if (!nt) return throw_errno(env, "tun_native buffers", ENOMEM);
  int r = tun_adopt(&nt->dev, fd);
  if (r < 0) {
    nt->dev.fd = -1; /* not ours to close when it could not be adopted */
    release_tun(env, nt);
    return throw_errno(env, "fcntl", -r);
  }
  return start(env, nt, argv, abs, "", 0);
}

static native_tun *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (native_tun *)p;
}

/* write(handle, packets: Uint8Array[], count) → packets written or queued; the rest were dropped (counted). */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  uint32_t count;
  CHECK(napi_get_value_uint32(env, argv[2], &count));
  if (!nt || nt->closing || nt->failed) return num(env, 0);
  int accepted = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value el, ab;
    napi_typedarray_type type;
    size_t length, offset;
    void *data;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok ||
        napi_get_typedarray_info(env, el, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) {
      nt->dev.c.tx_errors_invalid++;
      continue;
    }
    accepted += tun_write(&nt->dev, data, length > TUN_MAX_PACKET ? TUN_MAX_PACKET + 1 : (uint32_t)length);
  }
  update_poll(nt);
  return num(env, accepted);
}

static napi_value set_paused(napi_env env, napi_callback_info info, int paused) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  if (nt) {
    nt->paused = paused;
    update_poll(nt);
  }
  return NULL;
}

/* pause(handle): stop reading (the kernel queues up to txqueuelen packets, then drops). */
static napi_value js_pause(napi_env env, napi_callback_info info) { return set_paused(env, info, 1); }
static napi_value js_resume(napi_env env, napi_callback_info info) { return set_paused(env, info, 0); }

/* close(handle, onClosed?) — idempotent; onClosed runs once the fd is closed. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  if (!nt || nt->closing) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_function) CHECK(napi_create_reference(env, argv[1], 1, &nt->on_closed));
  if (nt->dev.q_count > 0 && !nt->failed) tun_flush(&nt->dev); /* best effort: what the kernel takes now */
  nt->closing = 1;
  uv_poll_stop(&nt->poll);
  uv_close((uv_handle_t *)&nt->poll, on_handle_closed);
  return NULL;
}

/* counters(handle) → plain object of numbers. */
static napi_value js_counters(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  CHECK(napi_create_object(env, &o));
  if (!nt) return o;
  const tun_counters *c = &nt->dev.c;
#define C(field) set_prop(env, o, #field, num(env, c->field))
  C(rx_packets); C(rx_bytes); C(rx_batches); C(rx_errors);
  C(tx_packets); C(tx_bytes); C(tx_eagain); C(tx_dropped_queue_full); C(tx_errors_invalid); C(tx_errors_down); C(tx_errors);
#undef C
  set_prop(env, o, "tx_queued", num(env, nt->dev.q_count));
  set_prop(env, o, "last_errno", num(env, nt->dev.last_errno));
  return o;
}

/* packetPair(sndbuf) → [fd, fd]: see tun_packet_pair. */
static napi_value js_packet_pair(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  int32_t sndbuf = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) napi_get_value_int32(env, argv[0], &sndbuf);
  int fds[2];
  int r = tun_packet_pair(fds, sndbuf);
  if (r < 0) return throw_errno(env, "socketpair", -r);
  CHECK(napi_create_array_with_length(env, 2, &arr));
  for (uint32_t i = 0; i < 2; i++) napi_set_element(env, arr, i, num(env, fds[i]));
  return arr;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_default, NULL},
      {"pause", NULL, js_pause, NULL, NULL, NULL, napi_default, NULL},
      {"resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
      {"packetPair", NULL, js_packet_pair, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

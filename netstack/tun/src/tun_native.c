/* Node-API binding of tun_io: one uv_poll_t per TUN fd on Node's own event
 * loop (no thread, see native/napi_poll.h), one JavaScript call per batch of
 * read packets, one call from JavaScript per batch of packets to write.
 *
 * Memory: the receive area and the offset/length tables are ArrayBuffers
 * created here and handed to JavaScript; the kernel writes them only inside
 * the poll callback, right before the JS batch callback, so JavaScript may
 * read them until that callback returns and must copy anything it keeps.
 * Written packets are either in the kernel when write() returns or copied
 * into the bounded queue, so the caller may reuse its Buffers at once.
 *
 * Lifetime: as napi_poll.h; closing the fd removes a TUN the kernel created
 * for us. close() from inside the batch callback is safe: the drain loop
 * checks `closing` after every call into JavaScript. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../native/napi_poll.h"
#include "tun_io.h"

/* Batches per readable event before yielding to the rest of the loop. */
#define DRAIN_ROUNDS 16

typedef struct {
  np_handle h; /* first: what np_close frees */
  tun_dev dev;
  napi_ref on_batch, on_fatal;
  int paused, failed;
} native_tun;

#define CHECK NP_CHECK

/* Reading unless paused or failed, writing while packets wait. */
static int wanted_events(const native_tun *nt) {
  if (nt->failed) return 0;
  return (nt->paused ? 0 : UV_READABLE) | (nt->dev.q_count > 0 ? UV_WRITABLE : 0);
}

static void fail(native_tun *nt, int err) {
  nt->failed = 1;
  np_set_events(&nt->h, 0);
  napi_value code;
  napi_create_int32(nt->h.env, err, &code);
  np_call(&nt->h, nt->on_fatal, 1, &code);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  native_tun *nt = (native_tun *)p->data;
  if (nt->h.closing || nt->failed) return;
  napi_env env = nt->h.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) {
    /* libuv reports EPOLLERR (the interface was deleted) as UV_EBADF and has stopped polling. */
    nt->h.poll_events = 0;
    nt->dev.c.rx_errors++;
    nt->dev.last_errno = -status;
    fail(nt, -status);
  } else {
    if (events & UV_WRITABLE) {
      tun_flush(&nt->dev);
      np_set_events(&nt->h, wanted_events(nt));
    }
    for (int round = 0; (events & UV_READABLE) && round < DRAIN_ROUNDS && !nt->h.closing && !nt->paused; round++) {
      int n = tun_read_batch(&nt->dev);
      if (n < 0) {
        fail(nt, -n);
        break;
      }
      if (n == 0) break;
      napi_value count;
      napi_create_int32(env, n, &count);
      np_call(&nt->h, nt->on_batch, 1, &count);
      if (n < nt->dev.batch_cap) break; /* drained (or the area filled up: level-triggered polling comes back) */
    }
  }
  napi_close_handle_scope(env, scope);
}

static void release(np_handle *h) {
  tun_close(&((native_tun *)h)->dev);
}

/* An Error with `errno` and `syscall`, which the wrapper turns into advice. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char text[200];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_value msg, error, sys;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  np_set(env, error, "errno", np_num(env, err));
  np_set(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static const char *step_name(tun_step s) {
  return s == TUN_STEP_NAME ? "name" : s == TUN_STEP_OPEN ? "open /dev/net/tun" : "TUNSETIFF";
}

/* The struct, its callbacks (argv[2], argv[3]) and the JS-owned receive memory; NULL when out of memory. */
static native_tun *alloc_tun(napi_env env, int32_t batch_cap, napi_value *argv, napi_value abs[3]) {
  native_tun *nt = calloc(1, sizeof *nt);
  if (!nt) return NULL;
  nt->h.env = env;
  nt->h.on_poll = on_poll;
  nt->h.release = release;
  nt->dev.fd = -1;
  nt->dev.batch_cap = batch_cap < 1 ? 1 : batch_cap > TUN_RECV_BATCH ? TUN_RECV_BATCH : batch_cap;
  size_t sizes[3] = {TUN_RECV_AREA, TUN_RECV_BATCH * 4, TUN_RECV_BATCH * 4};
  void *mem[3];
  int ok = (nt->on_batch = np_keep(&nt->h, argv[2])) && (nt->on_fatal = np_keep(&nt->h, argv[3]));
  for (int i = 0; ok && i < 3; i++) ok = (abs[i] = np_arraybuffer(&nt->h, sizes[i], &mem[i])) != NULL;
  if (!ok) {
    np_abandon(&nt->h);
    free(nt);
    return NULL;
  }
  nt->dev.recv_buf = mem[0];
  nt->dev.entry_offset = mem[1];
  nt->dev.entry_len = mem[2];
  return nt;
}

static napi_value release_and_throw(napi_env env, native_tun *nt, const char *syscall, int err) {
  np_abandon(&nt->h);
  tun_close(&nt->dev);
  free(nt);
  return throw_errno(env, syscall, err);
}

/* Starts polling the open fd: { handle, name, created, recv, offsets, lengths }. */
static napi_value start(napi_env env, native_tun *nt, napi_value abs[3], const char *name, int created) {
  napi_value result, text, handle = np_start(&nt->h, nt->dev.fd, "SightlineTun", wanted_events(nt));
  if (!handle) return NULL;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &text));
  np_set(env, result, "handle", handle);
  np_set(env, result, "name", text);
  np_set(env, result, "created", np_num(env, created));
  const char *names[3] = {"recv", "offsets", "lengths"};
  for (int i = 0; i < 3; i++) np_set(env, result, names[i], abs[i]);
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
  native_tun *nt = alloc_tun(env, batch_cap, argv, abs);
  if (!nt) return throw_errno(env, "tun_native buffers", ENOMEM);
  int created = 0;
  tun_step failed;
  int r = tun_open(&nt->dev, name, actual, &created, &failed);
  if (r < 0) return release_and_throw(env, nt, step_name(failed), -r);
  return start(env, nt, abs, actual, created);
}

/* adopt(fd, batchCap, onBatch, onFatal) → as open(), for a packet fd opened elsewhere; name "". */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], abs[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, batch_cap;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &batch_cap));
  native_tun *nt = alloc_tun(env, batch_cap, argv, abs);
  if (!nt) return throw_errno(env, "tun_native buffers", ENOMEM);
  int r = tun_adopt(&nt->dev, fd);
  if (r < 0) return release_and_throw(env, nt, "fcntl", -r); /* tun_adopt left dev.fd at -1: not ours to close */
  return start(env, nt, abs, "", 0);
}

static native_tun *unwrap(napi_env env, napi_value v) {
  return (native_tun *)np_unwrap(env, v);
}

/* write(handle, packets: Uint8Array[], count) → packets written or queued; the rest were dropped (counted). */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  uint32_t count;
  CHECK(napi_get_value_uint32(env, argv[2], &count));
  if (!nt || nt->h.closing || nt->failed) return np_num(env, 0);
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
  np_set_events(&nt->h, wanted_events(nt));
  return np_num(env, accepted);
}

static napi_value set_paused(napi_env env, napi_callback_info info, int paused) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  if (nt) {
    nt->paused = paused;
    np_set_events(&nt->h, wanted_events(nt));
  }
  return NULL;
}

/* pause(handle): stop reading (the kernel queues up to txqueuelen packets, then drops). */
static napi_value js_pause(napi_env env, napi_callback_info info) { return set_paused(env, info, 1); }
static napi_value js_resume(napi_env env, napi_callback_info info) { return set_paused(env, info, 0); }

/* close(handle, onClosed?) — idempotent; onClosed runs once the fd is closed. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  native_tun *nt = unwrap(env, argv[0]);
  if (!nt || nt->h.closing) return NULL;
  if (nt->dev.q_count > 0 && !nt->failed) tun_flush(&nt->dev); /* best effort: what the kernel takes now */
  np_close(&nt->h, argv[1]);
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
#define C(field) np_set(env, o, #field, np_num(env, c->field))
  C(rx_packets); C(rx_bytes); C(rx_batches); C(rx_errors);
  C(tx_packets); C(tx_bytes); C(tx_eagain); C(tx_dropped_queue_full); C(tx_errors_invalid); C(tx_errors_down); C(tx_errors);
#undef C
  np_set(env, o, "tx_queued", np_num(env, nt->dev.q_count));
  np_set(env, o, "last_errno", np_num(env, nt->dev.last_errno));
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
  for (uint32_t i = 0; i < 2; i++) napi_set_element(env, arr, i, np_num(env, fds[i]));
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

/* The Node-API and libuv plumbing our addons share (vpn/edge/udp_native,
 * netstack/tun): one uv_poll_t on Node's own event loop for one fd, calls
 * into JavaScript as Node's own I/O callbacks make them, and the close
 * handshake that makes close() from inside such a call safe.
 *
 * Lifetime: np_close() stops polling and uv_close()s the handle; in the close
 * callback `release` closes the fd, onClosed runs and the kept references are
 * dropped. The memory is freed only when both that happened and the External
 * handed to JavaScript was finalized, so neither side can see freed memory.
 * An addon's struct starts with an np_handle, which is what gets freed. */
#ifndef SIGHTLINE_NAPI_POLL_H
#define SIGHTLINE_NAPI_POLL_H

#include <node_api.h>
#include <uv.h>

/* Callbacks and receive buffers an addon keeps alive while polling. */
#define NP_MAX_REFS 8

#define NP_CHECK(call)                                           \
  do {                                                           \
    if ((call) != napi_ok) {                                     \
      napi_throw_error(env, "EINTERNAL", "addon: " #call " failed"); \
      return NULL;                                               \
    }                                                            \
  } while (0)

typedef struct np_handle np_handle;
struct np_handle {
  napi_env env;
  uv_poll_t poll;
  uv_poll_cb on_poll;
  void (*release)(np_handle *); /* closes the fd and frees what the addon owns */
  napi_ref resource, on_closed;
  napi_ref refs[NP_MAX_REFS];
  int nrefs;
  napi_async_context async;
  int poll_events; /* what is polled now; 0 when stopped */
  int closing, handle_closed, finalized;
};

/* Keeps `v` alive until the handle is closed (or np_abandon). NULL when out of slots. */
napi_ref np_keep(np_handle *h, napi_value v);
/* A new ArrayBuffer of `bytes` kept alive like np_keep; NULL on failure. */
napi_value np_arraybuffer(np_handle *h, size_t bytes, void **data);
/* Drops what np_keep kept, for an open that failed before np_start. */
void np_abandon(np_handle *h);
/* Starts polling `fd` for `events` and returns the External that JavaScript
 * passes back as the handle; NULL with an exception pending on failure. */
napi_value np_start(np_handle *h, int fd, const char *resource_name, int events);
/* The handle behind an External from np_start, or NULL. */
np_handle *np_unwrap(napi_env env, napi_value v);
/* Polls for `events` from now on (0 stops); nothing once closing. */
void np_set_events(np_handle *h, int events);
/* Calls fn(argv) as an I/O callback (microtasks and nextTicks run after it);
 * an exception becomes an uncaught exception, as from a 'data' listener. */
void np_call(np_handle *h, napi_ref fn, int argc, napi_value *argv);
/* Idempotent; `on_closed` (a function or undefined) runs once the fd is closed. */
void np_close(np_handle *h, napi_value on_closed);

napi_value np_num(napi_env env, double v);
void np_set(napi_env env, napi_value obj, const char *name, napi_value v);

#endif

/* See napi_poll.h. */
#include "napi_poll.h"

#include <stdlib.h>

napi_ref np_keep(np_handle *h, napi_value v) {
  napi_ref r;
  if (h->nrefs == NP_MAX_REFS || napi_create_reference(h->env, v, 1, &r) != napi_ok) return NULL;
  h->refs[h->nrefs++] = r;
  return r;
}

napi_value np_arraybuffer(np_handle *h, size_t bytes, void **data) {
  napi_value ab;
  if (napi_create_arraybuffer(h->env, bytes, data, &ab) != napi_ok || !np_keep(h, ab)) return NULL;
  return ab;
}

void np_abandon(np_handle *h) {
  for (int i = 0; i < h->nrefs; i++) napi_delete_reference(h->env, h->refs[i]);
  h->nrefs = 0;
}

static void free_if_done(np_handle *h) {
  if (h->handle_closed && h->finalized) free(h);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  np_handle *h = (np_handle *)data;
  h->finalized = 1;
  free_if_done(h);
}

napi_value np_start(np_handle *h, int fd, const char *resource_name, int events) {
  napi_env env = h->env;
  uv_loop_t *loop;
  napi_value resource, name, external;
  NP_CHECK(napi_create_object(env, &resource));
  NP_CHECK(napi_create_reference(env, resource, 1, &h->resource));
  NP_CHECK(napi_create_string_utf8(env, resource_name, NAPI_AUTO_LENGTH, &name));
  NP_CHECK(napi_async_init(env, resource, name, &h->async));
  NP_CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &h->poll, fd);
  h->poll.data = h;
  np_set_events(h, events);
  NP_CHECK(napi_create_external(env, h, finalize, NULL, &external));
  return external;
}

np_handle *np_unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (np_handle *)p;
}

void np_set_events(np_handle *h, int events) {
  if (h->closing || events == h->poll_events) return;
  h->poll_events = events;
  if (events == 0) uv_poll_stop(&h->poll);
  else uv_poll_start(&h->poll, events, h->on_poll); /* libuv stores the callback on every start */
}

void np_call(np_handle *h, napi_ref fn_ref, int argc, napi_value *argv) {
  napi_env env = h->env;
  napi_value fn, resource, result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_reference_value(env, h->resource, &resource);
  if (napi_make_callback(env, h->async, resource, fn, (size_t)argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static void on_handle_closed(uv_handle_t *uvh) {
  np_handle *h = (np_handle *)uvh->data;
  h->release(h);
  napi_env env = h->env;
  napi_handle_scope scope;
  if (h->on_closed && napi_open_handle_scope(env, &scope) == napi_ok) {
    np_call(h, h->on_closed, 0, NULL);
    napi_close_handle_scope(env, scope);
  }
  if (h->on_closed) napi_delete_reference(env, h->on_closed);
  np_abandon(h);
  napi_delete_reference(env, h->resource);
  napi_async_destroy(env, h->async);
  h->handle_closed = 1;
  free_if_done(h);
}

void np_close(np_handle *h, napi_value on_closed) {
  if (h->closing) return;
  napi_valuetype t = napi_undefined;
  if (on_closed) napi_typeof(h->env, on_closed, &t);
  if (t == napi_function) napi_create_reference(h->env, on_closed, 1, &h->on_closed);
  h->closing = 1;
  uv_poll_stop(&h->poll);
  uv_close((uv_handle_t *)&h->poll, on_handle_closed);
}

napi_value np_num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

void np_set(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

/* The floor of a Node-API addon: the least any native module can do per round trip between two
 * Node processes whose JavaScript awaits each message, so that ipckit's async rows can be read
 * against what Node itself costs per wake, with no ipckit code in it. Built by the bench
 * (gcc -shared against the running Node's own headers) and loaded by both processes.
 *
 *   watch(fd)      starts a uv_poll on this thread's loop for fd (a message socket); one at a time
 *   receive()      a Promise of the length of the next message (0 at end of stream): it only
 *                  stores the deferred; libuv reports fd readable, the poll callback takes the
 *                  message with one recv and resolves the promise inside a callback scope (which
 *                  runs the microtasks, as Node's own callbacks do)
 *   send(fd)       one send of 64 bytes, synchronously; answers what send answered
 *   unwatch()      stops and closes the poll
 *   receiveSync(fd)     one blocking recv (a poll first where the fd is non-blocking); answers
 *                       the length, 0 at end of stream
 *   sendSync(fd, size)  one blocking send of size bytes (at most 64 KiB)
 *   msgReceive(qid)     one blocking msgrcv of any type into a static buffer; answers the length
 *   msgSend(qid, size)  one blocking msgsnd of type 1, size bytes
 * The sync four are the floor of a stream of messages (bench/peers/napi-floor-echo.js
 * produce-seq / produce-msg on one side, a `for await` over an iterator that calls them on the
 * other): one native call and one system call per message, nothing else; a stream's waits
 * are blocking calls, which no async API may make, so the floor is lower than any.
 *
 * Compared with ipckit, it skips everything a real API needs: no try before waiting (a
 * message already there waits for the next loop turn), no argument checks, no AbortSignal,
 * no Buffer for the payload (the bytes are dropped), the poll is never narrowed while a
 * receive is pending, one wait at a time per process. What it keeps is what no addon can
 * skip: a libuv wake, a call into JavaScript, a promise and its reactions, two system calls.
 *
 * Example (bench/peers/napi-floor-echo.js):
 *   const floor = require(pathOfThisAddon)
 *   floor.watch(3)
 *   for (;;) { if ((await floor.receive()) === 0) break; floor.send(3) }
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>

#include <node_api.h>
#include <uv.h>

static uv_poll_t *poll_handle;
static int poll_fd = -1;
static int poll_started;
static napi_env poll_env;
static napi_deferred pending;
static napi_ref resource_ref;
static napi_async_context async_context;
static char payload[64] = "0123456789012345678901234567890123456789012345678901234567890123";
static struct {
  long mtype;
  char mtext[65536];
} message = {1, {0}};
static char big[65536];

static napi_value throw_error(napi_env env, const char *what) {
  napi_throw_error(env, NULL, what);
  return NULL;
}

static void on_closed(uv_handle_t *handle) { free(handle); }

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)handle;
  (void)events;
  if (pending == NULL) {
    uv_poll_stop(poll_handle);
    poll_started = 0;
    return;
  }
  char buf[65536];
  ssize_t n = status < 0 ? -1 : recv(poll_fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  napi_env env = poll_env;
  napi_handle_scope handles;
  napi_open_handle_scope(env, &handles);
  napi_value resource, value;
  napi_get_reference_value(env, resource_ref, &resource);
  napi_callback_scope scope;
  napi_open_callback_scope(env, resource, async_context, &scope);
  napi_deferred deferred = pending;
  pending = NULL;
  napi_create_int32(env, n < 0 ? -errno : (int)n, &value);
  if (n < 0) {
    napi_reject_deferred(env, deferred, value);
  } else {
    napi_resolve_deferred(env, deferred, value);
  }
  napi_close_callback_scope(env, scope);
  napi_close_handle_scope(env, handles);
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_error(env, "watch(fd)");
  if (poll_handle != NULL) return throw_error(env, "already watching");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_error(env, "no loop");
  poll_handle = malloc(sizeof *poll_handle);
  if (poll_handle == NULL || uv_poll_init(loop, poll_handle, fd) != 0) {
    free(poll_handle);
    poll_handle = NULL;
    return throw_error(env, "uv_poll_init failed");
  }
  poll_fd = fd;
  poll_env = env;
  if (resource_ref == NULL) {
    napi_value resource, name;
    napi_create_object(env, &resource);
    napi_create_reference(env, resource, 1, &resource_ref);
    napi_create_string_utf8(env, "napi_floor", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, resource, name, &async_context);
  }
  return NULL;
}

static napi_value receive(napi_env env, napi_callback_info info) {
  (void)info;
  if (poll_handle == NULL || pending != NULL) return throw_error(env, "receive: not watching, or one pending");
  napi_value promise;
  napi_create_promise(env, &pending, &promise);
  if (!poll_started) {
    uv_poll_start(poll_handle, UV_READABLE, on_readable);
    poll_started = 1;
  }
  return promise;
}

static napi_value send_message(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_error(env, "send(fd)");
  ssize_t n = send(fd, payload, sizeof payload, MSG_DONTWAIT);
  napi_create_int32(env, n < 0 ? -errno : (int)n, &result);
  return result;
}

/* The integer arguments of a call: argv[0] and, when want == 2, argv[1]; false after a throw. */
static int int_args(napi_env env, napi_callback_info info, int want, int32_t *a, int32_t *b) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < (size_t)want || napi_get_value_int32(env, argv[0], a) != napi_ok ||
      (want == 2 && napi_get_value_int32(env, argv[1], b) != napi_ok)) {
    napi_throw_type_error(env, NULL, "integer arguments expected");
    return 0;
  }
  return 1;
}

static napi_value answer(napi_env env, ssize_t n) {
  napi_value result;
  napi_create_int32(env, n < 0 ? -errno : (int)n, &result);
  return result;
}

/* Waits until fd is ready for events (the socket may be non-blocking). */
static void wait_ready(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  poll(&p, 1, -1);
}

static napi_value receive_sync(napi_env env, napi_callback_info info) {
  int32_t fd, unused;
  if (!int_args(env, info, 1, &fd, &unused)) return NULL;
  for (;;) {
    ssize_t n = recv(fd, big, sizeof big, 0);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return answer(env, n);
    if (errno != EINTR) wait_ready(fd, POLLIN);
  }
}

static napi_value send_sync(napi_env env, napi_callback_info info) {
  int32_t fd, size;
  if (!int_args(env, info, 2, &fd, &size)) return NULL;
  if (size < 0 || size > (int32_t)sizeof big) size = sizeof big;
  for (;;) {
    ssize_t n = send(fd, big, (size_t)size, 0);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return answer(env, n);
    if (errno != EINTR) wait_ready(fd, POLLOUT);
  }
}

static napi_value msg_receive(napi_env env, napi_callback_info info) {
  int32_t qid, unused;
  if (!int_args(env, info, 1, &qid, &unused)) return NULL;
  ssize_t n;
  do n = msgrcv(qid, &message, sizeof message.mtext, 0, 0);
  while (n < 0 && errno == EINTR);
  return answer(env, n);
}

static napi_value msg_send(napi_env env, napi_callback_info info) {
  int32_t qid, size;
  if (!int_args(env, info, 2, &qid, &size)) return NULL;
  if (size < 0 || size > (int32_t)sizeof message.mtext) size = sizeof message.mtext;
  message.mtype = 1;
  int r;
  do r = msgsnd(qid, &message, (size_t)size, 0);
  while (r < 0 && errno == EINTR);
  return answer(env, r < 0 ? -1 : size);
}

static napi_value unwatch(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (poll_handle != NULL) {
    uv_poll_stop(poll_handle);
    uv_close((uv_handle_t *)poll_handle, on_closed);
    poll_handle = NULL;
    poll_started = 0;
    poll_fd = -1;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"watch", NULL, watch, NULL, NULL, NULL, napi_default, NULL},
      {"receive", NULL, receive, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_message, NULL, NULL, NULL, napi_default, NULL},
      {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"receiveSync", NULL, receive_sync, NULL, NULL, NULL, napi_default, NULL},
      {"sendSync", NULL, send_sync, NULL, NULL, NULL, napi_default, NULL},
      {"msgReceive", NULL, msg_receive, NULL, NULL, NULL, napi_default, NULL},
      {"msgSend", NULL, msg_send, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

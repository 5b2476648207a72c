/* Batched UDP I/O on one non-blocking socket: recvmmsg (+ UDP GRO) into
 * fixed slots, a bounded send queue flushed with sendmmsg (+ UDP GSO).
 * No Node-API here, so the syscall logic reads on its own; udp_native.c
 * binds it to the event loop and to JavaScript. */
#ifndef SIGHTLINE_BATCH_IO_H
#define SIGHTLINE_BATCH_IO_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* Datagrams per recvmmsg: one JS callback per batch. */
#define BIO_RECV_SLOTS 64
/* Largest UDP payload (IPv4: 65535 - 20 - 8), so a slot never truncates and
 * a GRO-coalesced message (at most 64 KiB) always fits. */
#define BIO_SLOT_SIZE 65536
/* UDP GRO delivers up to UDP_MAX_SEGMENTS (128 on current kernels) segments
 * per message; each becomes one entry for JavaScript. */
#define BIO_MAX_SEGMENTS 128
#define BIO_MAX_ENTRIES (BIO_RECV_SLOTS * BIO_MAX_SEGMENTS)
/* Entry in the address table: 16-byte IPv6 (IPv4 as ::ffff:a.b.c.d) + port, big-endian. */
#define BIO_ADDR_ENTRY 18
/* Messages per sendmmsg call. */
#define BIO_SEND_BATCH 64
/* Send queue bound (datagrams); beyond it new datagrams are dropped and counted. */
#define BIO_QUEUE_CAP 4096
/* A GSO super-datagram stays below the 64 KiB IP total length. */
#define BIO_GSO_MAX_BYTES 65000
/* Queued datagrams up to this size (a full-sized sealed message and more) live in
 * buffers of exactly this size, taken from and given back to a small free list:
 * malloc of ~1.5 KB is past glibc's per-thread cache, and a bulk transfer queues
 * tens of thousands of them per second. */
#define BIO_POOL_BUF 2048
/* Free buffers kept (512 KiB); past that they are freed. */
#define BIO_POOL_KEEP 256

typedef struct {
  double rx_datagrams, rx_batches, rx_syscalls, rx_gro_messages, rx_errors, rx_dropped_overflow;
  double tx_datagrams, tx_syscalls, tx_gso_messages, tx_gso_fallbacks, tx_eagain, tx_errors, tx_dropped_queue_full;
} bio_counters;

typedef struct {
  uint8_t *data; /* owned by the queue: BIO_POOL_BUF bytes when len <= BIO_POOL_BUF, else len */
  uint32_t len;
  struct sockaddr_in6 to; /* always IPv6 form; converted for AF_INET sockets */
} bio_entry;

/* UDP_MAX_SEGMENTS on older kernels: the portable GSO bound. */
#define GSO_MAX_SEGMENTS 64

/* sendmmsg arguments, rebuilt per call (too large for the stack). */
typedef struct {
  struct mmsghdr msgs[BIO_SEND_BATCH];
  struct sockaddr_storage names[BIO_SEND_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[BIO_SEND_BATCH];
  uint32_t segs[BIO_SEND_BATCH];
  struct iovec iov[BIO_SEND_BATCH * GSO_MAX_SEGMENTS];
} send_scratch;

typedef struct {
  int fd;
  int family; /* AF_INET or AF_INET6 */
  int gso;    /* 1 while UDP_SEGMENT is in use */
  int gro;    /* 1 when UDP_GRO was enabled on the socket */
  int last_errno;

  /* Receive side: memory owned by JavaScript (ArrayBuffers kept alive by refs). */
  uint8_t *recv_buf;     /* BIO_RECV_SLOTS * BIO_SLOT_SIZE */
  int32_t *entry_offset; /* BIO_MAX_ENTRIES */
  int32_t *entry_len;    /* BIO_MAX_ENTRIES */
  uint8_t *entry_addr;   /* BIO_MAX_ENTRIES * BIO_ADDR_ENTRY */

  /* Send side: ring of queued datagrams. */
  bio_entry queue[BIO_QUEUE_CAP];
  uint32_t q_head, q_count;
  /* The last destination parsed, reused while it repeats. */
  char last_address[64];
  int last_port, last_to_valid;
  struct sockaddr_in6 last_to;
  send_scratch scratch;
  /* Free BIO_POOL_BUF-byte buffers, the last given back on top (warm in cache). */
  uint8_t *pool[BIO_POOL_KEEP];
  uint32_t pool_count;

  bio_counters c;
} bio_socket;

/* Creates, configures and binds the socket. Returns 0 or -errno. */
int bio_open(bio_socket *s, const char *address, int port, int want_gso, int want_gro);
/* Bound port, or -errno. */
int bio_local_port(const bio_socket *s);
/* One recvmmsg: fills the entry tables. Returns entries (>= 0; 0 on EAGAIN) or -errno. */
int bio_recv_batch(bio_socket *s);
/* Queues a copy of data for `address`:`port`. Returns 0, -EINVAL for a bad address, -ENOBUFS when full. */
int bio_enqueue(bio_socket *s, const uint8_t *data, uint32_t len, const char *address, int port);
/* Queues `len` bytes for `address`:`port` and returns them for the caller to fill before the
 * next flush; NULL with *err set as bio_enqueue's result when it cannot. */
uint8_t *bio_reserve(bio_socket *s, uint32_t len, const char *address, int port, int *err);
/* Takes back the datagram bio_reserve queued last (its content could not be written). */
void bio_unreserve(bio_socket *s);
/* Sends queued datagrams until the queue is empty (0) or the socket would block (-EAGAIN). */
int bio_flush(bio_socket *s);
/* Frees queued datagrams and pooled buffers, and closes the fd. */
void bio_close(bio_socket *s);

#endif

/* Packet I/O on one non-blocking TUN fd (IFF_TUN | IFF_NO_PI): batched reads
 * into caller-owned memory, one write(2) per packet with a bounded queue for
 * EAGAIN. No Node-API here, so the syscall logic reads on its own;
 * tun_native.c binds it to the event loop and to JavaScript.
 *
 * The kernel's TUN takes exactly one packet per write() and returns one per
 * read(): writev() would glue its iovecs into a single packet, and there is
 * no recvmmsg/sendmmsg for a character device. Batching here therefore saves
 * JavaScript<->C crossings and allocations, not syscalls. */
#ifndef SIGHTLINE_TUN_IO_H
#define SIGHTLINE_TUN_IO_H

#include <stdint.h>

/* The largest IP packet (IPv4 total length / IPv6 payload length without a
 * jumbogram). A read always has this much room, so nothing is ever cut. */
#define TUN_MAX_PACKET 65535
/* Packets per JavaScript call at most (one onBatch call per batch). */
#define TUN_RECV_BATCH 64
/* Receive area: packets are packed one after another; a read is attempted
 * only while TUN_MAX_PACKET bytes are left, so 64 packets of a 1500-byte MTU
 * always fit and a 9000-byte MTU still gives batches of about 20. */
#define TUN_RECV_AREA (256 * 1024)
/* Write queue bound (packets) for a fd that said EAGAIN; beyond it new packets
 * are dropped and counted. */
#define TUN_QUEUE_CAP 1024

typedef struct {
  double rx_packets, rx_bytes, rx_batches, rx_errors;
  double tx_packets, tx_bytes, tx_eagain, tx_dropped_queue_full, tx_errors_invalid, tx_errors_down, tx_errors;
} tun_counters;

typedef struct {
  uint8_t *data; /* malloc'd copy owned by the queue */
  uint32_t len;
} tun_entry;

typedef struct {
  int fd;
  int last_errno;
  int batch_cap; /* packets per batch, 1..TUN_RECV_BATCH */

  /* Receive side: memory owned by JavaScript (ArrayBuffers kept alive by refs). */
  uint8_t *recv_buf;     /* TUN_RECV_AREA */
  int32_t *entry_offset; /* TUN_RECV_BATCH */
  int32_t *entry_len;    /* TUN_RECV_BATCH */

  /* Send side: ring of packets waiting for the fd to become writable. */
  tun_entry queue[TUN_QUEUE_CAP];
  uint32_t q_head, q_count;

  tun_counters c;
} tun_dev;

/* Step of tun_open that failed, for the error message. */
typedef enum { TUN_STEP_NAME, TUN_STEP_OPEN, TUN_STEP_SETIFF } tun_step;

/* Opens /dev/net/tun and creates or attaches the single-queue TUN `name`.
 * Returns 0 or -errno with *failed set; *created is 1 when no interface of
 * that name existed before (closing the fd then removes it). */
int tun_open(tun_dev *t, const char *name, char *actual_name, int *created, tun_step *failed);
/* Adopts an already-open packet fd (a TUN fd from elsewhere, or a
 * SOCK_SEQPACKET socket in tests); makes it non-blocking. 0 or -errno. */
int tun_adopt(tun_dev *t, int fd);
/* Reads until EAGAIN, batch_cap packets or a full area: fills the entry
 * tables. Returns packets (>= 0), or -errno for a fatal error (the device
 * was removed: EBADFD/EIO; end of file: -EPIPE). */
int tun_read_batch(tun_dev *t);
/* Writes one packet, or queues a copy when the fd would block or packets are
 * already waiting (order is kept). Returns 1 when written or queued, 0 when
 * dropped (counted by reason). */
int tun_write(tun_dev *t, const uint8_t *data, uint32_t len);
/* Writes queued packets until the queue is empty (0) or the fd would block (-EAGAIN). */
int tun_flush(tun_dev *t);
/* Frees queued packets and closes the fd. */
void tun_close(tun_dev *t);
/* A connected SOCK_SEQPACKET pair (non-blocking, close-on-exec): it keeps
 * packet boundaries like a TUN and says EAGAIN when full, so tests drive the
 * batching and queueing without root. 0 or -errno. */
int tun_packet_pair(int fds[2], int sndbuf);

#endif

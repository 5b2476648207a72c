/* TUN packet I/O (see tun_io.h). Linux only. */
#include "tun_io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int tun_open(tun_dev *t, const char *name, char *actual_name, int *created, tun_step *failed) {
  t->fd = -1;
  size_t n = strlen(name);
  if (n == 0 || n >= IFNAMSIZ) {
    *failed = TUN_STEP_NAME;
    return -EINVAL;
  }
  *failed = TUN_STEP_OPEN;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  /* Informational only (another process may race us): whether close() will
   * remove the interface again, as it does for one the kernel made for us. */
  *created = if_nametoindex(name) == 0;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  /* Single queue (no IFF_MULTI_QUEUE): one fd, one reader; no packet-info
   * prefix (IFF_NO_PI), so a read is exactly an IP packet. */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, n);
  *failed = TUN_STEP_SETIFF;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  memcpy(actual_name, ifr.ifr_name, IFNAMSIZ);
  actual_name[IFNAMSIZ - 1] = 0;
  t->fd = fd;
  return 0;
}

int tun_adopt(tun_dev *t, int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  t->fd = fd;
  return 0;
}

int tun_read_batch(tun_dev *t) {
  int count = 0;
  int32_t off = 0;
  while (count < t->batch_cap && TUN_RECV_AREA - off >= TUN_MAX_PACKET) {
    ssize_t n = read(t->fd, t->recv_buf + off, TUN_MAX_PACKET);
    if (n > 0) {
      t->entry_offset[count] = off;
      t->entry_len[count] = (int32_t)n;
      off += (int32_t)n;
      count++;
      t->c.rx_bytes += (double)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    /* Fatal: the interface was deleted (EBADFD), the fd failed, or the far
     * end of a packet pair closed (0). Deliver what was read; the next call
     * meets the same error at once. */
    if (count > 0) break;
    int err = n == 0 ? EPIPE : errno;
    t->c.rx_errors++;
    t->last_errno = err;
    return -err;
  }
  t->c.rx_packets += count;
  if (count > 0) t->c.rx_batches++;
  return count;
}

static int enqueue(tun_dev *t, const uint8_t *data, uint32_t len) {
  if (t->q_count == TUN_QUEUE_CAP) {
    t->c.tx_dropped_queue_full++;
    return 0;
  }
  uint8_t *copy = malloc(len > 0 ? len : 1);
  if (!copy) {
    t->c.tx_dropped_queue_full++;
    return 0;
  }
  memcpy(copy, data, len);
  tun_entry *e = &t->queue[(t->q_head + t->q_count) % TUN_QUEUE_CAP];
  e->data = copy;
  e->len = len;
  t->q_count++;
  return 1;
}

/* One write(2); 1 written, 0 would block, -1 refused (counted by reason). */
static int write_one(tun_dev *t, const uint8_t *data, uint32_t len) {
  ssize_t n;
  do n = write(t->fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    t->c.tx_packets++;
    t->c.tx_bytes += len;
    return 1;
  }
  int err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK) {
    t->c.tx_eagain++;
    return 0;
  }
  t->last_errno = err;
  /* EINVAL: not an IPv4/IPv6 packet or too short for its header; EIO: the
   * interface is down; EBADFD: it was deleted. */
  if (err == EINVAL || err == EMSGSIZE) t->c.tx_errors_invalid++;
  else if (err == EIO || err == EBADFD) t->c.tx_errors_down++;
  else t->c.tx_errors++;
  return -1;
}

int tun_write(tun_dev *t, const uint8_t *data, uint32_t len) {
  if (len == 0 || len > TUN_MAX_PACKET) {
    t->c.tx_errors_invalid++;
    t->last_errno = EINVAL;
    return 0;
  }
  if (t->q_count > 0) return enqueue(t, data, len); /* keep order behind what waits */
  int r = write_one(t, data, len);
  if (r == 0) return enqueue(t, data, len);
  return r > 0;
}

static void pop(tun_dev *t) {
  tun_entry *e = &t->queue[t->q_head];
  free(e->data);
  e->data = NULL;
  t->q_head = (t->q_head + 1) % TUN_QUEUE_CAP;
  t->q_count--;
}

int tun_flush(tun_dev *t) {
  while (t->q_count > 0) {
    tun_entry *e = &t->queue[t->q_head];
    if (write_one(t, e->data, e->len) == 0) return -EAGAIN;
    pop(t); /* written, or refused and counted */
  }
  return 0;
}

void tun_close(tun_dev *t) {
  while (t->q_count > 0) pop(t);
  if (t->fd >= 0) close(t->fd);
  t->fd = -1;
}

int tun_packet_pair(int fds[2], int sndbuf) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return -errno;
  if (sndbuf > 0) {
    for (int i = 0; i < 2; i++) setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  return 0;
}

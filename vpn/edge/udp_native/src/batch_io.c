/* Batched UDP socket I/O (see batch_io.h). Linux only: recvmmsg/sendmmsg,
 * UDP_GRO (4.18+, receive coalescing) and UDP_SEGMENT (4.18+, GSO). */
#include "batch_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* Large kernel buffers absorb bursts between two event-loop turns (the same
 * 8 MiB the dgram edge asked for); SO_*BUFFORCE ignores rmem_max when root. */
#define SOCKET_BUFFER_BYTES (8 << 20)

static void set_buffer(int fd, int force_opt, int opt) {
  int v = SOCKET_BUFFER_BYTES;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) != 0) setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

/* Text address (IPv4, IPv6, IPv6%zone) into IPv6 form; IPv4 becomes ::ffff:a.b.c.d. */
static int parse_address(const char *text, int port, struct sockaddr_in6 *out) {
  memset(out, 0, sizeof *out);
  out->sin6_family = AF_INET6;
  out->sin6_port = htons((uint16_t)port);
  struct in_addr v4;
  if (inet_pton(AF_INET, text, &v4) == 1) {
    out->sin6_addr.s6_addr[10] = 0xff;
    out->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
    return 0;
  }
  char host[64];
  const char *zone = strchr(text, '%');
  size_t n = zone ? (size_t)(zone - text) : strlen(text);
  if (n >= sizeof host) return -EINVAL;
  memcpy(host, text, n);
  host[n] = 0;
  if (inet_pton(AF_INET6, host, &out->sin6_addr) != 1) return -EINVAL;
  if (zone) {
    unsigned idx = if_nametoindex(zone + 1);
    out->sin6_scope_id = idx ? idx : (uint32_t)strtoul(zone + 1, NULL, 10);
  }
  return 0;
}

static int is_v4_mapped(const struct in6_addr *a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a->s6_addr, prefix, 12) == 0;
}

/* Destination for the socket's family; returns the name length or 0 when unreachable from it. */
static socklen_t to_sockaddr(const bio_socket *s, const struct sockaddr_in6 *to, struct sockaddr_storage *out) {
  if (s->family == AF_INET6) {
    memcpy(out, to, sizeof *to);
    return sizeof *to;
  }
  if (!is_v4_mapped(&to->sin6_addr)) return 0;
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  memset(v4, 0, sizeof *v4);
  v4->sin_family = AF_INET;
  v4->sin_port = to->sin6_port;
  memcpy(&v4->sin_addr, &to->sin6_addr.s6_addr[12], 4);
  return sizeof *v4;
}

int bio_open(bio_socket *s, const char *address, int port, int want_gso, int want_gro) {
  struct sockaddr_in6 bind6;
  const char *text = address && *address ? address : "::";
  if (parse_address(text, port, &bind6) != 0) return -EINVAL;
  struct in_addr probe;
  s->family = inet_pton(AF_INET, text, &probe) == 1 ? AF_INET : AF_INET6;
  s->fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) return -errno;
  if (s->family == AF_INET6) {
    int off = 0; /* dual-stack: IPv4 peers arrive as ::ffff:a.b.c.d */
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  set_buffer(s->fd, SO_RCVBUFFORCE, SO_RCVBUF);
  set_buffer(s->fd, SO_SNDBUFFORCE, SO_SNDBUF);
  int one = 1;
  s->gro = want_gro && setsockopt(s->fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  int seg = 0;
  socklen_t seglen = sizeof seg;
  s->gso = want_gso && getsockopt(s->fd, SOL_UDP, UDP_SEGMENT, &seg, &seglen) == 0;
  struct sockaddr_storage name;
  socklen_t namelen = to_sockaddr(s, &bind6, &name);
  if (bind(s->fd, (struct sockaddr *)&name, namelen) != 0) {
    int err = errno;
    close(s->fd);
    s->fd = -1;
    return -err;
  }
  return 0;
}

int bio_local_port(const bio_socket *s) {
  struct sockaddr_storage name;
  socklen_t len = sizeof name;
  if (getsockname(s->fd, (struct sockaddr *)&name, &len) != 0) return -errno;
  return ntohs(name.ss_family == AF_INET ? ((struct sockaddr_in *)&name)->sin_port : ((struct sockaddr_in6 *)&name)->sin6_port);
}

static void encode_source(const struct sockaddr_storage *from, uint8_t *out) {
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)from;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &v4->sin_addr, 4);
    memcpy(out + 16, &v4->sin_port, 2);
  } else {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)from;
    memcpy(out, &v6->sin6_addr, 16);
    memcpy(out + 16, &v6->sin6_port, 2);
  }
}

/* Segment size from a UDP_GRO control message, or 0 for a plain datagram. */
static int gro_size(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return 0;
}

int bio_recv_batch(bio_socket *s) {
  struct mmsghdr msgs[BIO_RECV_SLOTS];
  struct iovec iov[BIO_RECV_SLOTS];
  struct sockaddr_storage from[BIO_RECV_SLOTS];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[BIO_RECV_SLOTS];
  for (int i = 0; i < BIO_RECV_SLOTS; i++) {
    iov[i].iov_base = s->recv_buf + (size_t)i * BIO_SLOT_SIZE;
    iov[i].iov_len = BIO_SLOT_SIZE;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (s->gro) {
      msgs[i].msg_hdr.msg_control = ctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
  }
  int n;
  do n = recvmmsg(s->fd, msgs, BIO_RECV_SLOTS, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    s->c.rx_errors++;
    s->last_errno = errno;
    return -errno;
  }
  s->c.rx_syscalls++;
  int entries = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *h = &msgs[i].msg_hdr;
    if (h->msg_flags & MSG_TRUNC) { /* cannot happen with 64 KiB slots; never deliver a cut datagram */
      s->c.rx_errors++;
      continue;
    }
    int32_t len = (int32_t)msgs[i].msg_len;
    int32_t seg = s->gro ? gro_size(h) : 0;
    if (seg <= 0 || seg >= len) seg = len > 0 ? len : 1;
    else s->c.rx_gro_messages++;
    int32_t base = i * BIO_SLOT_SIZE;
    uint8_t addr[BIO_ADDR_ENTRY];
    encode_source(&from[i], addr);
    int32_t off = 0;
    do { /* a zero-length datagram is one entry too */
      if (entries == BIO_MAX_ENTRIES) {
        s->c.rx_dropped_overflow++;
        break;
      }
      int32_t l = len - off < seg ? len - off : seg;
      s->entry_offset[entries] = base + off;
      s->entry_len[entries] = l;
      memcpy(s->entry_addr + (size_t)entries * BIO_ADDR_ENTRY, addr, BIO_ADDR_ENTRY);
      entries++;
      off += l;
    } while (off < len);
  }
  s->c.rx_datagrams += entries;
  if (entries > 0) s->c.rx_batches++;
  return entries;
}

/* A bulk transfer sends to one peer again and again: its address is parsed once. */
static int destination(bio_socket *s, const char *address, int port, struct sockaddr_in6 *to) {
  if (s->last_to_valid && s->last_port == port && strcmp(s->last_address, address) == 0) {
    *to = s->last_to;
    return 0;
  }
  if (parse_address(address, port, to) != 0) return -EINVAL;
  size_t n = strlen(address);
  /* A zone names an interface, whose index may change: such a destination is parsed every time. */
  s->last_to_valid = n < sizeof s->last_address && strchr(address, '%') == NULL;
  if (s->last_to_valid) {
    memcpy(s->last_address, address, n + 1);
    s->last_port = port;
    s->last_to = *to;
  }
  return 0;
}

uint8_t *bio_reserve(bio_socket *s, uint32_t len, const char *address, int port, int *err) {
  if (s->q_count == BIO_QUEUE_CAP) {
    s->c.tx_dropped_queue_full++;
    *err = -ENOBUFS;
    return NULL;
  }
  bio_entry *e = &s->queue[(s->q_head + s->q_count) % BIO_QUEUE_CAP];
  if (destination(s, address, port, &e->to) != 0) {
    s->c.tx_errors++;
    s->last_errno = EINVAL;
    *err = -EINVAL;
    return NULL;
  }
  if (len <= BIO_POOL_BUF) e->data = s->pool_count > 0 ? s->pool[--s->pool_count] : malloc(BIO_POOL_BUF);
  else e->data = malloc(len);
  if (!e->data) {
    s->c.tx_dropped_queue_full++;
    *err = -ENOBUFS;
    return NULL;
  }
  e->len = len;
  s->q_count++;
  return e->data;
}

/* A queued datagram's buffer goes back to the free list when it is of the pooled size and there is room. */
static void release(bio_socket *s, bio_entry *e) {
  if (e->len <= BIO_POOL_BUF && s->pool_count < BIO_POOL_KEEP) s->pool[s->pool_count++] = e->data;
  else free(e->data);
  e->data = NULL;
}

void bio_unreserve(bio_socket *s) {
  release(s, &s->queue[(s->q_head + s->q_count - 1) % BIO_QUEUE_CAP]);
  s->q_count--;
}

int bio_enqueue(bio_socket *s, const uint8_t *data, uint32_t len, const char *address, int port) {
  int err = 0;
  uint8_t *to = bio_reserve(s, len, address, port, &err);
  if (!to) return err;
  memcpy(to, data, len);
  return 0;
}

static void pop(bio_socket *s, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    release(s, &s->queue[s->q_head]);
    s->q_head = (s->q_head + 1) % BIO_QUEUE_CAP;
  }
  s->q_count -= n;
}

static int same_destination(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b) {
  return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
         memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
}

/* Queued datagrams from queue index `first` that one GSO message may carry:
 * same destination, same size except a shorter last one (UDP_SEGMENT rule). */
static uint32_t gso_run(const bio_socket *s, uint32_t first, uint32_t avail) {
  const bio_entry *e0 = &s->queue[first % BIO_QUEUE_CAP];
  if (!s->gso || e0->len == 0) return 1;
  uint32_t n = 1, total = e0->len;
  while (n < avail && n < GSO_MAX_SEGMENTS) {
    const bio_entry *e = &s->queue[(first + n) % BIO_QUEUE_CAP];
    if (e->len == 0 || e->len > e0->len || total + e->len > BIO_GSO_MAX_BYTES || !same_destination(&e->to, &e0->to)) break;
    total += e->len;
    n++;
    if (e->len < e0->len) break;
  }
  return n;
}


/* Fills up to BIO_SEND_BATCH messages from the head of the queue; returns how many. */
static int build_batch(bio_socket *s, send_scratch *x) {
  uint32_t at = 0, niov = 0;
  int k = 0;
  while (k < BIO_SEND_BATCH && at < s->q_count) {
    uint32_t idx = s->q_head + at;
    uint32_t run = gso_run(s, idx, s->q_count - at);
    const bio_entry *e0 = &s->queue[idx % BIO_QUEUE_CAP];
    struct msghdr *h = &x->msgs[k].msg_hdr;
    memset(h, 0, sizeof *h);
    socklen_t nl = to_sockaddr(s, &e0->to, &x->names[k]);
    h->msg_name = &x->names[k];
    h->msg_namelen = nl ? nl : sizeof(struct sockaddr_in6); /* an IPv6 name on an IPv4 socket fails with a counted error */
    if (!nl) memcpy(&x->names[k], &e0->to, sizeof e0->to);
    h->msg_iov = &x->iov[niov];
    h->msg_iovlen = run;
    for (uint32_t j = 0; j < run; j++) {
      const bio_entry *e = &s->queue[(idx + j) % BIO_QUEUE_CAP];
      x->iov[niov].iov_base = e->data;
      x->iov[niov].iov_len = e->len;
      niov++;
    }
    if (run > 1) {
      h->msg_control = x->ctl[k].buf;
      h->msg_controllen = sizeof x->ctl[k].buf;
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)e0->len;
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
    x->segs[k] = run;
    at += run;
    k++;
  }
  return k;
}

int bio_flush(bio_socket *s) {
  send_scratch *x = &s->scratch;
  while (s->q_count > 0) {
    int k = build_batch(s, x);
    int n;
    do n = sendmmsg(s->fd, x->msgs, (unsigned)k, 0);
    while (n < 0 && errno == EINTR);
    s->c.tx_syscalls++;
    if (n < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        s->c.tx_eagain++;
        return -EAGAIN;
      }
      if (x->segs[0] > 1 && (err == EIO || err == EINVAL || err == EMSGSIZE || err == EOPNOTSUPP)) {
        /* The route's device cannot segment (EIO: no checksum offload) or the
         * size exceeds its MTU: send datagram by datagram from now on. */
        s->gso = 0;
        s->c.tx_gso_fallbacks++;
        continue;
      }
      /* This message cannot be sent (unreachable family, EPERM from a firewall, ...): drop it, keep the rest. */
      s->c.tx_errors += x->segs[0];
      s->last_errno = err;
      pop(s, x->segs[0]);
      continue;
    }
    for (int i = 0; i < n; i++) {
      s->c.tx_datagrams += x->segs[i];
      if (x->segs[i] > 1) s->c.tx_gso_messages++;
      pop(s, x->segs[i]);
    }
  }
  return 0;
}

void bio_close(bio_socket *s) {
  pop(s, s->q_count);
  while (s->pool_count > 0) free(s->pool[--s->pool_count]);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

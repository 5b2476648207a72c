#!/usr/bin/env python3
# Hostile tunnel-client traffic for the end-to-end tests: datagrams and
# connections that ordinary tools refuse to send (port 0, a TCP SYN to a
# multicast group), from inside a client namespace. Prints one JSON line:
#   {"result": "reply" | "connected" | "error" | "nothing" | "sent", "code": "ENETUNREACH", ...}
# Usage: hostile_client.py udp|tcp|syn HOST PORT [IFNAME] [WAIT_SECONDS]
import errno
import json
import os
import socket
import struct
import sys


def family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def sockaddr(host, port, ifname):
    if ':' in host:
        # Link-local and multicast IPv6 destinations need the interface as scope.
        return (host, port, 0, socket.if_nametoindex(ifname) if ifname else 0)
    return (host, port)


def os_error(e):
    return {'result': 'error', 'code': errno.errorcode.get(e.errno, str(e.errno))}


def udp(host, port, ifname, wait):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    # Without IP_RECVERR Linux reports only "hard" ICMP errors (port unreachable,
    # administratively prohibited) on a UDP socket, not net or host unreachable.
    if ':' in host:
        s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
    else:
        s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
    s.settimeout(wait)
    try:
        s.connect(sockaddr(host, port, ifname))
        s.send(b'hostile')
        data = s.recv(2048)
        return {'result': 'reply', 'data': data.decode('latin1')}
    except socket.timeout:
        return {'result': 'nothing'}
    except OSError as e:
        return os_error(e)


def tcp(host, port, ifname, wait):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(wait)
    try:
        s.connect(sockaddr(host, port, ifname))
        s.close()
        return {'result': 'connected'}
    except socket.timeout:
        return {'result': 'nothing'}
    except OSError as e:
        return os_error(e)


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def syn(host, port, ifname):
    """One bare TCP SYN through a raw socket: the kernel refuses connect() to a multicast group."""
    sport = 40000 + os.getpid() % 20000
    seq = int.from_bytes(os.urandom(4), 'big')
    header = struct.pack('!HHIIBBHHH', sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    if ':' in host:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        # The kernel fills the TCP checksum at offset 16 (RFC 3542 IPV6_CHECKSUM).
        s.setsockopt(socket.IPPROTO_IPV6, 7, 16)
        s.sendto(header, sockaddr(host, 0, ifname))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        if ifname:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect((host, 9))
        src = probe.getsockname()[0]
        pseudo = socket.inet_aton(src) + socket.inet_aton(host) + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(header))
        header = header[:16] + struct.pack('!H', checksum(pseudo + header)) + header[18:]
        s.sendto(header, (host, 0))
    return {'result': 'sent'}


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ifname = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != '-' else None
    wait = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
    if mode == 'udp':
        out = udp(host, port, ifname, wait)
    elif mode == 'tcp':
        out = tcp(host, port, ifname, wait)
    elif mode == 'syn':
        out = syn(host, port, ifname)
    else:
        raise SystemExit('mode must be udp, tcp or syn')
    print(json.dumps(out))


main()

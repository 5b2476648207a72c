#!/usr/bin/env python3
# Sends hand-built IP packets into a tunnel interface and captures what comes
# back, for end-to-end tests of destinations a client's own kernel never
# sends through a tunnel (127.0.0.1, ::1, ::ffff:127.0.0.1: it delivers them
# locally) and to read ICMP type and code exactly. tcpdump is not installed;
# an AF_PACKET socket on the tunnel device is all this needs (root).
#
#   raw_ip.py IFNAME WAIT_MS HEX_PACKET...
#
# Sends each packet (a whole IPv4/IPv6 packet, hex, no link header: the
# wireguard-go TUN device carries bare IP), then prints one JSON list of the
# packets that arrived on IFNAME within WAIT_MS, as hex.
import json
import socket
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4


def main() -> None:
    ifname, wait_ms, packets = sys.argv[1], int(sys.argv[2]), [bytes.fromhex(h) for h in sys.argv[3:]]
    capture = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    capture.bind((ifname, 0))
    send = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
    for p in packets:
        send.sendto(p, (ifname, ETH_P_IP if p[0] >> 4 == 4 else ETH_P_IPV6))
    got = []
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        capture.settimeout(left)
        try:
            data, addr = capture.recvfrom(65535)
        except socket.timeout:
            break
        if addr[2] != PACKET_OUTGOING:
            got.append(data.hex())
    print(json.dumps(got))


main()

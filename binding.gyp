{
  # Native addons built by `npm install` / `npm ci` (node-gyp runs for a root
  # binding.gyp). Plain Node-API C, no dependency beyond Node's own headers;
  # native/napi_poll.c is the event-loop plumbing both share.
  "targets": [
    {
      # Batched UDP socket for the WireGuard edge: recvmmsg/sendmmsg, UDP GRO/GSO, and
      # transport messages sealed into its send queue with the OpenSSL Node links (seal.h).
      "target_name": "udp_native",
      "sources": [
        "vpn/edge/udp_native/src/udp_native.c",
        "vpn/edge/udp_native/src/batch_io.c",
        "vpn/edge/udp_native/src/seal.c",
        "native/napi_poll.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["vpn/edge/udp_native/src/udp_native.c", "vpn/edge/udp_native/src/batch_io.c", "vpn/edge/udp_native/src/seal.c", "native/napi_poll.c"] }]
      ]
    },
    {
      # The Internet checksum's sum over a range (netstack/wire/checksum.ts falls back to JS without it).
      "target_name": "wire_native",
      "sources": ["netstack/wire/native/checksum.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      # TUN device for routed mode: IFF_TUN | IFF_NO_PI, batched reads on the event loop.
      "target_name": "tun_native",
      "sources": [
        "netstack/tun/src/tun_native.c",
        "netstack/tun/src/tun_io.c",
        "native/napi_poll.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["netstack/tun/src/tun_native.c", "netstack/tun/src/tun_io.c", "native/napi_poll.c"] }]
      ]
    }
  ]
}

#!/usr/bin/env python3
"""Asks a DNS server for a name's A record; exits 0 when it answers with one.

e2e/cluster/up uses it to prove, from the host, that CoreDNS answers on the
kube-dns Service address (which also proves kube-proxy's rules work).

    dnscheck.py SERVER NAME
"""

from __future__ import annotations

import random
import socket
import struct
import sys


def query(server: str, name: str, timeout: float = 2.0) -> list[str]:
    qid = random.randrange(1 << 16)
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # recursion desired, 1 question
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = header + qname + struct.pack("!HH", 1, 1)  # A, IN
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        data, _ = sock.recvfrom(4096)
    rid, flags, _, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != qid or flags & 0x000F:
        raise RuntimeError(f"bad answer: id {rid} rcode {flags & 0xF}")
    offset = 12 + len(qname) + 4
    addresses = []
    for _ in range(ancount):
        offset += 2 if data[offset] & 0xC0 == 0xC0 else len(qname)  # name: pointer or inline
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += rdlength
    return addresses


if __name__ == "__main__":
    try:
        found = query(sys.argv[1], sys.argv[2])
    except (OSError, RuntimeError) as err:
        print(f"no answer: {err}", file=sys.stderr)
        sys.exit(1)
    print(" ".join(found))
    sys.exit(0 if found else 1)

#!/usr/bin/env python3
"""A TURN client that keeps one allocation across its commands, read a line
at a time from stdin, each answered with one line on stdout ("ok ..." or
"error ..."): alloc, perm, send (a Send indication, then waits for the peer's
echo as a Data indication), refresh. Long-term credentials (RFC 8489 §9.2,
MD5 key), a 438 answered with the new nonce, as a client does after its
server restarted.
Usage: turnprobe.py SERVER_IP PORT USER PASS PEER_IP PEER_PORT"""
import hashlib
import hmac
import os
import socket
import struct
import sys

COOKIE = 0x2112A442
ALLOCATE, REFRESH, PERMISSION, SEND, DATA = 0x003, 0x004, 0x008, 0x016, 0x017
A_USERNAME, A_MI, A_ERROR, A_LIFETIME, A_PEER, A_DATA = 0x06, 0x08, 0x09, 0x0D, 0x12, 0x13
A_REALM, A_NONCE, A_RELAYED, A_TRANSPORT = 0x14, 0x15, 0x16, 0x19


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def xor_addr(ip, port):
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + struct.pack(
        "!I", struct.unpack("!I", socket.inet_aton(ip))[0] ^ COOKIE)


def parse(buf):
    t, n, cookie = struct.unpack("!HHI", buf[:8])
    attrs, off = {}, 20
    while off + 4 <= 20 + n:
        at, al = struct.unpack("!HH", buf[off:off + 4])
        attrs.setdefault(at, buf[off + 4:off + 4 + al])
        off += 4 + al + (-al % 4)
    return t, buf[8:20], attrs


class Probe:
    def __init__(self, server, user, password, peer):
        self.server, self.user, self.password, self.peer = server, user, password, peer
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(2)
        self.realm = self.nonce = None

    def msg(self, method, cls, attrs, auth):
        tid = os.urandom(12)
        body = b"".join(attrs)
        if auth:
            body += attr(A_USERNAME, self.user.encode()) + attr(A_REALM, self.realm) + \
                attr(A_NONCE, self.nonce)
            key = hashlib.md5(b"%s:%s:%s" % (self.user.encode(), self.realm,
                                             self.password.encode())).digest()
            head = struct.pack("!HHI", method | cls, len(body) + 24, COOKIE) + tid
            body += attr(A_MI, hmac.new(key, head + body, hashlib.sha1).digest())
        return struct.pack("!HHI", method | cls, len(body), COOKIE) + tid + body, tid

    def request(self, method, attrs):
        for _ in range(4):
            m, tid = self.msg(method, 0, attrs, self.nonce is not None)
            self.s.sendto(m, self.server)
            while True:
                t, rtid, a = parse(self.s.recv(2048))
                if rtid == tid:
                    break
            if t & 0x110 == 0x100:
                return a
            err = a.get(A_ERROR, b"\0\0\0\0")
            code = err[2] * 100 + err[3]
            if code in (401, 438) and A_NONCE in a:
                self.realm, self.nonce = a.get(A_REALM, self.realm), a[A_NONCE]
                continue
            raise RuntimeError("error %d" % code)
        raise RuntimeError("no success after 4 tries")

    def run(self, cmd):
        if cmd == "alloc":
            self.request(ALLOCATE, [attr(A_TRANSPORT, struct.pack("!I", 17 << 24))])
        elif cmd == "perm":
            self.request(PERMISSION, [attr(A_PEER, xor_addr(*self.peer))])
        elif cmd == "refresh":
            a = self.request(REFRESH, [attr(A_LIFETIME, struct.pack("!I", 600))])
            return "lifetime %d" % struct.unpack("!I", a[A_LIFETIME])[0]
        elif cmd == "send":
            data = os.urandom(32)
            m, _ = self.msg(SEND, 0x10, [attr(A_PEER, xor_addr(*self.peer)),
                                          attr(A_DATA, data)], False)
            self.s.sendto(m, self.server)
            while True:	# the peer echoes it: a Data indication
                t, _, a = parse(self.s.recv(2048))
                if t == DATA | 0x10 and a.get(A_DATA) == data:
                    return "echoed"
        else:
            raise RuntimeError("unknown command " + cmd)
        return ""


def main():
    srv, port, user, password, peer_ip, peer_port = sys.argv[1:7]
    p = Probe((srv, int(port)), user, password, (peer_ip, int(peer_port)))
    for line in sys.stdin:
        try:
            print("ok", p.run(line.strip()), flush=True)
        except (OSError, RuntimeError, KeyError, struct.error) as e:
            print("error", e, flush=True)


main()

#!/usr/bin/env python3
"""A TURN client that keeps one allocation across its commands, read a line
at a time from stdin, each answered with one line on stdout ("ok ..." or
"error ..."): alloc, perm, send (a Send indication, then waits for the peer's
echo as a Data indication), refresh. Long-term credentials (RFC 8489 §9.2,
MD5 key), a 438 answered with the new nonce, as a client does after its
server restarted. Over UDP, or over TCP with "tcp" last (STUN messages
framed by their own length, RFC 8656 §4).
Usage: turnprobe.py SERVER_IP PORT USER PASS PEER_IP PEER_PORT [tcp]"""
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
    def __init__(self, server, user, password, peer, tcp):
        self.server, self.user, self.password, self.peer = server, user, password, peer
        self.tcp, self.rbuf = tcp, b""
        if tcp:
            self.s = socket.create_connection(server, timeout=2)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(2)
        self.realm = self.nonce = None

    def sendmsg(self, m):
        if self.tcp:
            self.s.sendall(m)
        else:
            self.s.sendto(m, self.server)

    def recvmsg(self):
        if not self.tcp:
            return self.s.recv(2048)
        while len(self.rbuf) < 4 or len(self.rbuf) < 20 + struct.unpack("!H", self.rbuf[2:4])[0]:
            got = self.s.recv(4096)
            if not got:
                raise OSError("connection closed")
            self.rbuf += got
        n = 20 + struct.unpack("!H", self.rbuf[2:4])[0]
        m, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return m

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
            self.sendmsg(m)
            while True:
                t, rtid, a = parse(self.recvmsg())
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
            self.sendmsg(m)
            while True:	# the peer echoes it: a Data indication
                t, _, a = parse(self.recvmsg())
                if t == DATA | 0x10 and a.get(A_DATA) == data:
                    return "echoed"
        else:
            raise RuntimeError("unknown command " + cmd)
        return ""


def main():
    srv, port, user, password, peer_ip, peer_port = sys.argv[1:7]
    p = Probe((srv, int(port)), user, password, (peer_ip, int(peer_port)),
              sys.argv[7:8] == ["tcp"])
    for line in sys.stdin:
        try:
            print("ok", p.run(line.strip()), flush=True)
        except (OSError, RuntimeError, KeyError, struct.error) as e:
            print("error", e, flush=True)


main()

"""Run a command in a network namespace of its own, with only ``lo``, up (Linux).

    python -I -S netns.py -- ARGV...   unshare the network, bring lo up, exec ARGV
    python -I -S netns.py --check      exit 0 when that works here, else say why

flakehunt starts a child pytest this way when its runs bind fixed ports
(:mod:`flakehunt.isolation`): each run gets its own 127.0.0.1, so two runs binding
the same port never meet. As root it unshares the network alone; otherwise it also
unshares a user namespace that maps the user to itself (the tests see the same uid).
The process execs the command: same pid, same process group, and the namespace goes
away with the last process in it. Standard library only (run without site-packages).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # struct ifreq: the name, the flags, padding


def unshare_network() -> None:
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWNET | CLONE_NEWUSER
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(IFREQ, b"lo", 0))
        lo_flags = struct.unpack(IFREQ, got)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", lo_flags | IFF_UP))


def check() -> int:
    try:
        unshare_network()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
    except OSError as exc:
        print(exc.strerror or exc, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        return check()
    if argv[:1] != ["--"] or len(argv) < 2:
        print("usage: netns.py -- ARGV... | --check", file=sys.stderr)
        return 2
    try:
        unshare_network()
    except OSError as exc:
        print(f"flakehunt: no network namespace for this run: {exc}", file=sys.stderr)
        return 70
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

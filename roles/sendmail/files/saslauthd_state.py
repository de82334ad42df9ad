#!/usr/bin/env python3
"""Is saslauthd there to check passwords? Prints `up` or `down`; always exits 0.

sendmail runs this as a `program` map (as its DefaultUser) when a client starts TLS on the submission
port. With saslauthd gone, Cyrus SASL reports every AUTH as a bad password and sendmail answers 535,
which makes mail clients ask their users for a new password. When this prints `down`, sendmail answers
454 4.7.0 (try again later) instead, so clients retry and nobody doubts a good password.

1. Connect to saslauthd's socket: a listener answers, so `up`; refused or missing, so `down`.
2. When the socket's folder is closed to this user (Debian: root:sasl 0710), look for a running
   `saslauthd` process in /proc instead.
3. When neither can tell (no access and /proc hides other users' processes), say `up`: a wrong `down`
   would turn away every client, a wrong `up` only gives sendmail's usual 535.

Standard library only: this runs on the VPS.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

DEFAULT_MUX = "/var/run/saslauthd/mux"


def socket_state(path: str, timeout: float = 2.0) -> str | None:
    """`up`, `down`, or None when this user may not look."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        return "up"
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return None
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTDIR):
            return "down"
        return None  # a timeout or anything odd: saslauthd may just be busy
    finally:
        sock.close()


def process_state(proc: str = "/proc", name: str = "saslauthd") -> str | None:
    """`up` when a process called `name` runs, `down` when none does, None when /proc hides them."""
    if not os.path.exists(os.path.join(proc, "1", "comm")):
        return None  # hidepid: other users' processes are invisible, so absence proves nothing
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, "comm")) as fh:
                if fh.read().strip() == name:
                    return "up"
        except OSError:
            continue
    return "down"


def state(mux: str = DEFAULT_MUX, proc: str = "/proc") -> str:
    return socket_state(mux) or process_state(proc) or "up"


def main(argv: list[str]) -> int:
    # sendmail calls: saslauthd-state [MUX] KEY (the map key is appended; it is not used)
    mux = argv[0] if len(argv) > 1 else DEFAULT_MUX
    try:
        print(state(mux))
    except Exception:  # noqa: BLE001 - a failing map would tempfail the connection; say "up"
        print("up")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

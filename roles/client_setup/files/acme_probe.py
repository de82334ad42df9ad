#!/usr/bin/env python3
"""Does the web server on port 80 serve ACME's HTTP-01 challenge files for each name, as the CA will fetch them?

Writes a probe file where certbot's webroot mode writes its challenges (mode 0644, as certbot does), reads it back
through the web server per name (Host header; no proxy, no redirect followed), removes it. Exit 0 when every
name answered 200 with the file, 1 (each failure on stdout) otherwise. Standard library only: it runs on the VPS.

A name that fails is asked again until --settle seconds have passed: nginx's reload returns before its workers have
the new configuration (the old workers answer until they are replaced), so the first answer right after a reload
may still come from the old site. A name that is really wrong fails after the deadline, with its last answer.

    acme_probe.py WEBROOT NAME... [--port 80] [--settle 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer of its own: the CA must get the file from this URL


def _ask(opener: urllib.request.OpenerDirector, url: str, name: str, token: str, timeout: float) -> str | None:
    """None when the name got the probe file back, else what it got instead."""
    try:
        with opener.open(urllib.request.Request(url, headers={"Host": name}), timeout=timeout) as reply:
            body = reply.read(200).decode(errors="replace")
            return None if body == token else f"{name}: HTTP {reply.status} with another body"
    except urllib.error.HTTPError as exc:
        return f"{name}: HTTP {exc.code}"
    except OSError as exc:
        return f"{name}: {exc}"


def probe(webroot: str, names: list[str], port: int = 80, timeout: float = 10, settle: float = 0) -> list[str]:
    """The names that did not get the probe file back, each with what they got instead; failing names are asked
    again every 0.2 s until `settle` seconds have passed."""
    folder = os.path.join(webroot, ".well-known", "acme-challenge")
    token = "sendmail-fleet-probe-" + secrets.token_hex(8)
    path = os.path.join(folder, token)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(token)
    os.chmod(path, 0o644)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{token}"
    deadline = time.monotonic() + settle
    waiting = list(dict.fromkeys(names))
    failed: dict[str, str] = {}
    try:
        while True:
            for name in waiting:
                answer = _ask(opener, url, name, token, timeout)
                if answer is None:
                    failed.pop(name, None)
                else:
                    failed[name] = answer
            waiting = [name for name in waiting if name in failed]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    finally:
        os.unlink(path)
    return [failed[name] for name in dict.fromkeys(names) if name in failed]


def main(argv: list[str]) -> int:
    cli = argparse.ArgumentParser(prog="acme_probe.py", description=__doc__.split("\n\n")[0])
    cli.add_argument("webroot")
    cli.add_argument("names", nargs="+")
    cli.add_argument("--port", type=int, default=80)
    cli.add_argument("--settle", type=float, default=10.0, help="seconds to keep asking a failing name")
    args = cli.parse_args(argv)
    failed = probe(args.webroot, args.names, args.port, settle=args.settle)
    for line in failed:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

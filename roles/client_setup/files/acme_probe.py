#!/usr/bin/env python3
"""Does the web server on port 80 serve ACME's HTTP-01 challenge files for each name, as the CA will fetch them?

Writes a probe file where certbot's webroot mode writes its challenges (mode 0644, as certbot does), reads it back
through the web server once per name (Host header; no proxy, no redirect followed), removes it. Exit 0 when every
name answered 200 with the file, 1 (each failure on stdout) otherwise. Standard library only: it runs on the VPS.

    acme_probe.py WEBROOT NAME... [--port 80]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer of its own: the CA must get the file from this URL


def probe(webroot: str, names: list[str], port: int = 80, timeout: float = 10) -> list[str]:
    """The names that did not get the probe file back, each with what they got instead."""
    folder = os.path.join(webroot, ".well-known", "acme-challenge")
    token = "sendmail-fleet-probe-" + secrets.token_hex(8)
    path = os.path.join(folder, token)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(token)
    os.chmod(path, 0o644)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    failed = []
    try:
        for name in names:
            url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{token}"
            try:
                with opener.open(urllib.request.Request(url, headers={"Host": name}), timeout=timeout) as reply:
                    body = reply.read(200).decode(errors="replace")
                    if body != token:
                        failed.append(f"{name}: HTTP {reply.status} with another body")
            except urllib.error.HTTPError as exc:
                failed.append(f"{name}: HTTP {exc.code}")
            except OSError as exc:
                failed.append(f"{name}: {exc}")
    finally:
        os.unlink(path)
    return failed


def main(argv: list[str]) -> int:
    cli = argparse.ArgumentParser(prog="acme_probe.py", description=__doc__.split("\n\n")[0])
    cli.add_argument("webroot")
    cli.add_argument("names", nargs="+")
    cli.add_argument("--port", type=int, default=80)
    args = cli.parse_args(argv)
    failed = probe(args.webroot, args.names, args.port)
    for line in failed:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

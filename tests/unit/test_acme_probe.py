"""The ACME probe (roles/client_setup/files/acme_probe.py): a web server that serves the challenge folder for a
name passes; one that answers 403, a redirect or another file for a name fails, naming it; the probe file is gone
afterwards either way. Over real HTTP on loopback."""

from __future__ import annotations

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sendmail_fleet.host import load

probe = load("acme_probe")


class Site(SimpleHTTPRequestHandler):
    """Serves the webroot for good.test; 403 for denied.test (a folder nginx cannot read), a redirect to HTTPS
    for moved.test (the name's challenges not routed to the webroot), another page for other.test; 404 for the
    first `reloading` requests for reloaded.test (nginx's old workers, still on the old root, after a reload)."""

    reloading = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        host = self.headers.get("Host", "")
        if host == "reloaded.test" and Site.reloading > 0:
            Site.reloading -= 1
            self.send_error(404)
        elif host == "denied.test":
            self.send_error(403)
        elif host == "moved.test":
            self.send_response(301)
            self.send_header("Location", f"https://moved.test{self.path}")
            self.end_headers()
        elif host == "other.test":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"the customer's page")
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webroot(tmp_path: Path):
    (tmp_path / ".well-known" / "acme-challenge").mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Site, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, server.server_address[1]
    server.shutdown()


def left_behind(root: Path) -> list[str]:
    return os.listdir(root / ".well-known" / "acme-challenge")


def test_a_name_whose_challenges_are_served_from_the_webroot_passes_and_nothing_is_left(webroot):
    root, port = webroot
    assert probe.probe(str(root), ["good.test", "mail.good.test"], port) == []
    assert left_behind(root) == []


@pytest.mark.parametrize(("name", "why"), [("denied.test", "HTTP 403"), ("moved.test", "HTTP 301"),
                                           ("other.test", "HTTP 200 with another body")])
def test_a_name_that_does_not_get_the_file_back_fails_and_is_named(webroot, name, why):
    root, port = webroot
    assert probe.probe(str(root), ["good.test", name], port) == [f"{name}: {why}"]
    assert left_behind(root) == []


def test_the_command_exits_1_printing_each_failed_name(webroot, capsys):
    root, port = webroot
    assert probe.main([str(root), "good.test", "denied.test", "--port", str(port), "--settle", "0"]) == 1
    assert capsys.readouterr().out == "denied.test: HTTP 403\n"
    assert probe.main([str(root), "good.test", "--port", str(port)]) == 0


def test_nothing_listening_fails_the_name(tmp_path):
    (tmp_path / ".well-known" / "acme-challenge").mkdir(parents=True)
    failed = probe.probe(str(tmp_path), ["good.test"], port=1)
    assert len(failed) == 1 and failed[0].startswith("good.test: ") and "refused" in failed[0].lower()
    assert left_behind(tmp_path) == []


def test_a_name_still_served_by_the_old_workers_after_a_reload_passes_once_the_new_ones_answer(webroot):
    root, port = webroot
    Site.reloading = 3
    assert probe.probe(str(root), ["good.test", "reloaded.test"], port, settle=10) == []
    assert Site.reloading == 0
    assert left_behind(root) == []


def test_without_time_to_settle_the_old_workers_answer_is_the_result(webroot):
    root, port = webroot
    Site.reloading = 3
    assert probe.probe(str(root), ["reloaded.test"], port) == ["reloaded.test: HTTP 404"]
    Site.reloading = 0


def test_a_name_that_stays_wrong_fails_after_the_deadline_with_its_last_answer(webroot):
    root, port = webroot
    assert probe.probe(str(root), ["denied.test", "good.test", "denied.test"], port, settle=0.5) == [
        "denied.test: HTTP 403"]
    assert left_behind(root) == []

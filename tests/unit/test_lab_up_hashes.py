"""`maillab up` makes the accounts' password hashes (CPU-bound: about 0.4 s each at the role's default rounds, a few ms
at the lab's) while the engine and the images are set up, not after them: the inventory written last gets the hashes
made meanwhile."""

from __future__ import annotations

import threading

import pytest

from sendmail_fleet import lab
from sendmail_fleet.progress import Progress
from sendmail_fleet.topology import build


class Stop(Exception):
    pass


def test_the_hashes_are_made_while_the_engine_is_set_up_and_reach_the_inventory(monkeypatch, tmp_path):
    started = threading.Event()
    seen: list[object] = []

    def hashes(paths, topo, workers=None):
        started.set()
        return lambda account, node: "$6$made-meanwhile"

    def engine(state, progress):
        # Waits for the hashes to start: were they made only after the engine, this would time out.
        assert started.wait(timeout=10), "the hashes did not start while the engine was being set up"
        return type("Client", (), {"containers": type("C", (), {"list": staticmethod(lambda **kw: [])})()})()

    def fake_up(client, topo, paths, progress, made):
        seen.append(made.result()(None, None))
        raise Stop

    monkeypatch.setattr(lab, "password_hashes", hashes)
    monkeypatch.setattr(lab, "ensure_engine", engine)
    monkeypatch.setattr(lab, "_up", fake_up)
    monkeypatch.setattr(lab, "down", lambda *a, **kw: 0)
    with pytest.raises(Stop):
        lab.up(build(2), lab.Paths(tmp_path / ".lab"), Progress(quiet=True))
    assert seen == ["$6$made-meanwhile"]

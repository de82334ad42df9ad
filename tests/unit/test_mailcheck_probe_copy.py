"""The checks run in threads, and the first to reach a client copies the probe into it. A second check on the same
client must not run the probe before that copy has landed: the fresh-machine demo of 2026-12-05 reported
"relay, no auth: saw 0 (python3: can't open file '/usr/local/bin/maillab-probe')" for one host out of 240 checks."""

from __future__ import annotations

import threading

from sendmail_fleet.mailcheck import MailLab
from sendmail_fleet.topology import build


class SlowCopyContainer:
    """A client whose put_archive holds until the test lets it go; it records what each exec found there."""

    name = "maillab-client1"

    def __init__(self) -> None:
        self.copy_started, self.release = threading.Event(), threading.Event()
        self.copies = 0
        self.landed = False

    def put_archive(self, path: str, data: bytes) -> bool:
        self.copy_started.set()
        assert self.release.wait(10), "the test never let the copy finish"
        self.copies += 1
        self.landed = True
        return True


def test_a_second_check_on_a_client_waits_for_the_probe_copy_and_the_probe_is_copied_once():
    lab = MailLab(build(2), client=object())  # type: ignore[arg-type]
    box = SlowCopyContainer()
    seen_by_second: list[bool] = []

    first = threading.Thread(target=lab._ensure_probe, args=(box,))
    first.start()
    assert box.copy_started.wait(10)
    second = threading.Thread(target=lambda: (lab._ensure_probe(box), seen_by_second.append(box.landed)))
    second.start()
    # The second call must still be waiting: the copy has not landed. (Before the fix it returned at once.)
    second.join(timeout=0.5)
    assert second.is_alive(), "the second check went on before the probe was in the client"
    box.release.set()
    first.join(10)
    second.join(10)
    assert seen_by_second == [True]
    assert box.copies == 1


def test_a_failed_copy_is_tried_again_by_the_next_check():
    class Broken(SlowCopyContainer):
        def put_archive(self, path: str, data: bytes) -> bool:
            self.copies += 1
            if self.copies == 1:
                raise OSError("container is restarting")
            self.landed = True
            return True

    lab = MailLab(build(2), client=object())  # type: ignore[arg-type]
    box = Broken()
    try:
        lab._ensure_probe(box)
    except OSError:
        pass
    lab._ensure_probe(box)
    assert box.landed and box.copies == 2

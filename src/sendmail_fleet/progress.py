"""Progress lines for long work: elapsed time, then what is happening."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.start = time.monotonic()
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        t0 = time.monotonic()
        self.say(f"{message} ...")
        yield
        self.say(f"{message}: done in {time.monotonic() - t0:.1f}s")

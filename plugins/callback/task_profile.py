"""`task_profile`: when each task started and when each host finished it, written as JSON at the end of a run.

Enable it beside any stdout callback (it prints nothing):
  ANSIBLE_CALLBACKS_ENABLED=sendmail_fleet.mail.task_profile SENDMAIL_FLEET_PROFILE=profile.json ansible-playbook ...
The benchmarks (benchmarks/provision.py) read the file with sendmail_fleet.profile.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: task_profile
type: aggregate
short_description: Per task and per host timing, as JSON
description:
  - Records when each task (and handler) started and when each host returned from it, with the task's role,
    action, result status and whether it changed something. Writes one JSON file when the run ends.
requirements:
  - enable in the callbacks_enabled setting
options:
  output:
    description: The JSON file to write.
    type: path
    default: task-profile.json
    env:
      - name: SENDMAIL_FLEET_PROFILE
    ini:
      - section: callback_task_profile
        key: output
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sendmail_fleet.mail.task_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()
        self._started = time.time()
        self._play = ""
        self._entries: list[dict[str, Any]] = []
        self._tasks: dict[str, dict[str, Any]] = {}  # task uuid -> its latest entry
        self._host_start: dict[tuple[str, str], float] = {}

    def _now(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool, handler: bool = False) -> None:
        # A task runs once per batch (serial) and a handler may run more than once: each start is its own entry.
        role = task._role.get_name(include_role_fqcn=False) if task._role else ""
        entry = {"play": self._play, "name": task.get_name(), "role": role, "action": task.action,
                 "handler": handler, "start": self._now(), "results": []}
        self._tasks[task._uuid] = entry
        self._entries.append(entry)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False, handler=True)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._host_start[(task._uuid, host.get_name())] = self._now()

    def _record(self, result: Any, status: str) -> None:
        task = self._tasks.get(result._task._uuid)
        if task is None:
            return
        host = result._host.get_name()
        start = self._host_start.pop((result._task._uuid, host), task["start"])
        task["results"].append({"host": host, "status": status, "changed": bool(result._result.get("changed")),
                                "start": start, "end": self._now()})

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        data = {"started": self._started, "wall": self._now(), "tasks": self._entries}
        Path(self.get_option("output")).write_text(json.dumps(data, indent=1))

"""`progress`: what a run is doing, as one JSON object a line, for `maillab`'s progress view.

Enable it beside any stdout callback (it prints nothing):
  ANSIBLE_CALLBACKS_ENABLED=sendmail_fleet.mail.progress SENDMAIL_FLEET_EVENTS=run.jsonl ansible-playbook ...
`maillab provision` and `maillab demo` read the file as it grows (sendmail_fleet.progress.RunView): one line per
phase, a live per-host line on a terminal, and the failing host, task and message at the end.

Events (key "e"): play {name}; task {name, role, handler}; start {host, task}; result {host, task, role, status
(ok, changed, failed, skipped, unreachable), msg (failures only)}; stats {hosts: {host: counts}}. Every event
has "t", seconds since the run started. Results come censored as Ansible gives them to callbacks: a no_log
task's message is Ansible's "output hidden" text, never its data.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: The run's progress as JSON lines (plays, tasks, per-host starts and results, the recap)
description:
  - Appends one JSON object per event to a file and flushes it, so another program can follow the run live.
  - A failure's message is cut to 600 characters; no other result data is written.
requirements:
  - enable in the callbacks_enabled setting
options:
  output:
    description: The file to append the events to.
    type: path
    default: progress.jsonl
    env:
      - name: SENDMAIL_FLEET_EVENTS
    ini:
      - section: callback_progress
        key: output
"""

MSG_LIMIT = 600


def failure_message(result: dict[str, Any]) -> str:
    """What a person needs from a failed result: its msg, else the end of stderr/stdout, cut to MSG_LIMIT."""
    if result.get("censored"):
        return str(result["censored"])
    text = str(result.get("msg") or "").strip()
    # A command's own words: its stderr, else its stdout (not both: a helper's JSON answer repeats its error).
    out = str(result.get("stderr") or "").strip() or str(result.get("stdout") or "").strip()
    if out and out not in text:
        text = f"{text}\n{out}" if text else out
    if not text and isinstance(result.get("results"), list):  # a loop: the first failed item's message
        failed = [r for r in result["results"] if isinstance(r, dict) and r.get("failed")]
        text = failure_message(failed[0]) if failed else ""
    return text[-MSG_LIMIT:] if len(text) > MSG_LIMIT else text


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sendmail_fleet.mail.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()
        self._out: Any = None

    def _emit(self, event: str, **data: Any) -> None:
        if self._out is None:
            self._out = open(self.get_option("output"), "a", encoding="utf-8")  # noqa: SIM115 (open for the run)
        self._out.write(json.dumps({"e": event, "t": round(time.monotonic() - self._t0, 3), **data}) + "\n")
        self._out.flush()

    @staticmethod
    def _role(task: Any) -> str:
        return task._role.get_name(include_role_fqcn=False) if task._role else ""

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit("play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool, handler: bool = False) -> None:
        self._emit("task", name=task.get_name(), role=self._role(task), handler=handler)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False, handler=True)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._emit("start", host=host.get_name(), task=task.get_name())

    def _result(self, result: Any, status: str, msg: str = "") -> None:
        data = {"host": result._host.get_name(), "task": result._task.get_name(), "role": self._role(result._task),
                "status": status}
        if msg:
            data["msg"] = msg
        self._emit("result", **data)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        # An ignored failure is no failure of the run: it counts as ok, as Ansible's recap counts it.
        self._result(result, "ok" if ignore_errors else "failed", "" if ignore_errors else failure_message(result._result))

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result(result, "unreachable", failure_message(result._result))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._emit("stats", hosts=hosts)
        if self._out is not None:
            self._out.close()
            self._out = None

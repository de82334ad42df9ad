"""Strategy mitogen_linear_unpinned: Mitogen's linear strategy without its CPU pinning.

Mitogen pins its connection multiplexer to CPU 0 and, on a machine with fewer than four CPUs, the Ansible process
and every worker it forks to the CPUs after it: on two cores, all of Ansible's own work shares one. Measured here
(2 cores, 11 hosts, 50 tasks that skip): 10.4 s pinned, 6.7 s unpinned, 5.9 s on ansible-core's linear strategy;
benchmarks/provision.py compares the two on the lab. This strategy leaves placement to the kernel (Mitogen's
no-op policy) and is otherwise Mitogen's mitogen_linear. It needs Mitogen installed (the project's `fast` extra).

Before the first task it also loads, in the controller's main process, the Jinja plugins the roles' tasks use: the
collection's filters, Ansible's own filters and tests, and the template lookup. Ansible runs each task on each host
in a worker forked from that process and loads a Jinja plugin where it is first named, so every worker that
templated one of the collection's filters imported all its filter files again (Ansible imports every filter file of
a collection whenever any one of its filters is named): 132 times in a three-host `site.yml`. Loaded before the
forks, each worker finds them loaded. Nothing else changes: a plugin that cannot be loaded here is left to the task
that names it, which reports it as always.

It also lets the workers of one run share the Jinja code compiled from the roles' template text. ansible-core 2.19
compiles a template string anew each time it renders one, and each worker is a new fork: in a settled `site.yml` on
one host, the workers compiled template text 1,060 times, 366 distinct texts. Here Jinja's
own FileSystemBytecodeCache keeps each compiled text in a folder of this run (inside Ansible's local temporary
folder, which Ansible removes when the run ends), keyed by the text and every setting that shapes its code; a worker
that finds one loads it instead of compiling. What a template renders does not change: the same code, made once.
A settled `site.yml` on four hosts: controller CPU 32.0 -> 30.2 s (benchmarks/results/second_run_shared_templates.md).

And it keeps what Mitogen learns about each module from one run to the next. Before a module first runs, Mitogen reads
it and every module_utils file it imports, compiling each one, to know what to send to the hosts: about 1 s of CPU
per run in a settled `site.yml` (15 modules), in one thread that the first task of each module waits for, whatever
the number of hosts. The answer (names and paths) is kept in a file in the user's cache folder with the size and
modification time of every file and folder it was read from; a later run takes it where none of them changed, and
scans again where any did.

And a task whose `when` is false on a host skips without a worker. ansible-core forks a worker for every task on
every host and decides the `when` in it: a third of the tasks of a settled `site.yml` skip (46 of 143 on one host), at
about 25 ms of CPU each for the fork alone. Here the controller's main process takes the worker's own steps up to
that decision (the same variables, play context and conditional) and, where it is false, sends the result a worker
would have sent through the same queue, so the strategy's processing, the callbacks, `register` and the counts are
unchanged. Anything else goes to a worker as before: a true `when`, a loop, delegate_to, a throttle, a conditional that
fails or warns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_mitogen.affinity

# Before the multiplexer starts (on the first run of a strategy) and before any worker asks for its CPU.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

import ansible_mitogen.loaders  # noqa: E402
import ansible_mitogen.module_finder  # noqa: E402
import ansible_mitogen.strategy  # noqa: E402
from ansible import constants as C  # noqa: E402
from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.loader import filter_loader, lookup_loader, test_loader  # noqa: E402
from ansible.utils.display import Display  # noqa: E402
from jinja2.bccache import FileSystemBytecodeCache  # noqa: E402

display = Display()

try:  # ansible-core 2.19's own parts of what a worker does before a task's `when`, and of what it sends back
    from ansible._internal._display_utils import DeferredWarningContext
    from ansible._internal._templating._engine import TemplateEngine
    from ansible.executor.task_result import _RawTaskResult
except ImportError:  # an older ansible-core: every task goes to a worker, as with Ansible's own strategy
    DeferredWarningContext = TemplateEngine = _RawTaskResult = None  # type: ignore[assignment, misc]

# One name per plugin set: naming one of a collection's filters loads every filter file of that collection.
PRELOAD = ((filter_loader, "sendmail_fleet.mail.record_refusal"), (filter_loader, "ansible.builtin.default"),
           (test_loader, "ansible.builtin.success"), (lookup_loader, "sendmail_fleet.mail.template"))


def preload() -> list[str]:
    """Load the PRELOAD plugins in this process (the one the workers fork from); returns the names it could not load."""
    missed = []
    for loader, name in PRELOAD:
        try:
            found = loader.get(name)
        except (AnsibleError, KeyError, ImportError) as ex:
            display.vvv(f"mitogen_linear_unpinned: {name} not loaded before the workers fork: {ex}")
            found = None
        if found is None:
            missed.append(name)
    return missed


def _ident(value: Any) -> str:
    """A setting as text that is the same in every process of the run: a function by its name, not its address."""
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return repr(value)


def share_compiled_templates(directory: str) -> bool:
    """From now on, Jinja code that Ansible's environment compiles from template text is kept in `directory` and
    loaded from there by every process forked after this call. False where this ansible-core has no such environment
    (then nothing changes)."""
    try:
        from ansible._internal._templating import _jinja_bits as bits
    except ImportError:
        return False
    env_class = bits.AnsibleEnvironment
    if not all(hasattr(bits, n) for n in ("_TemplateCompileContext", "_TemplateConfig", "_TEMPLATE_OVERRIDE_FIELD_NAMES")):
        return False  # another ansible-core: what shapes the code is not known here, so nothing is shared
    if getattr(env_class.compile, "sendmail_fleet_shared", False):
        return True
    os.makedirs(directory, mode=0o700, exist_ok=True)
    store = FileSystemBytecodeCache(directory, "%s.jinja")
    plain: Callable[..., Any] = env_class.compile  # jinja2.Environment.compile

    def key(env: Any, source: str, name: str | None, filename: str | None) -> str:
        """The text and every setting that shapes the code Jinja makes of it."""
        ctx = bits._TemplateCompileContext.current(optional=True)
        settings = [type(env).__qualname__, repr(name), repr(filename),
                    repr(ctx.escape_backslashes if ctx else None), repr(bits._TemplateConfig.allow_embedded_templates),
                    repr(env.is_async), repr(env.optimized), _ident(env.autoescape), _ident(env.finalize),
                    ",".join(sorted(env.extensions))]
        settings += [repr(getattr(env, field)) for field in bits._TEMPLATE_OVERRIDE_FIELD_NAMES]
        digest = hashlib.sha256("\0".join(settings).encode())
        digest.update(b"\0\0" + source.encode("utf-8"))
        return digest.hexdigest()

    def compile(self: Any, source: Any, name: str | None = None, filename: str | None = None, raw: bool = False,
                defer_init: bool = False) -> Any:
        if raw or defer_init or not isinstance(source, str) or env_class._debuggable_template_source:
            return plain(self, source, name, filename, raw, defer_init)
        try:
            bucket = store.get_bucket(self, key(self, source, name, filename), None, source)
        except (OSError, UnicodeError):  # a text that is not UTF-8 (lone surrogates), a folder gone: compile here
            return plain(self, source, name, filename)
        if bucket.code is None:
            bucket.code = plain(self, source, name, filename)  # a syntax error raises here, as it would have
            try:
                store.set_bucket(bucket)
            except OSError:
                pass  # the next worker compiles it again
        return bucket.code

    compile.sendmail_fleet_shared = True  # type: ignore[attr-defined]
    env_class.compile = compile  # type: ignore[method-assign]
    return True


Scan = Callable[..., list[tuple[str, str, bool]]]


def _stamp(paths: list[str]) -> list[list[int] | None]:
    """Size and modification time of each path (None where it is gone)."""
    out: list[list[int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
        else:
            out.append([st.st_size, st.st_mtime_ns])
    return out


def _read_from(module_path: str, search_path: tuple[str, ...], found: list[tuple[str, str, bool]]) -> list[str]:
    """Every file and folder a scan's answer depends on: the module, the module_utils files it found, their packages'
    folders and the search path's folders (a file added to one changes the folder's time)."""
    paths = [module_path, *search_path, *(path for _, path, _ in found)]
    paths += [os.path.dirname(path) for _, path, is_pkg in found if is_pkg]
    return paths


class KeptScans:
    """Mitogen's module scans, kept in a JSON file of the user's own between runs."""

    def __init__(self, file: Path, scan: Scan) -> None:
        self.file, self.scan = file, scan
        self.kept: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            st = self.file.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return {}  # not this user's own file: not trusted
            kept = json.loads(self.file.read_text(encoding="utf-8"))
            return kept if isinstance(kept, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        try:  # the collection's one atomic write (its modules' too): a reader sees the old file or the new one
            from ansible_collections.sendmail_fleet.mail.plugins.module_utils.atomic import write_atomic

            self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(str(self.file), json.dumps(self.kept).encode(), mode=0o600)
        except (ImportError, OSError):
            pass  # the next run scans again

    def __call__(self, module_name: str, module_path: str, search_path: tuple[str, ...]) -> list[tuple[str, str, bool]]:
        if self.kept is None:
            self.kept = self._load()
        key = json.dumps([module_name, module_path, list(search_path)])
        entry = self.kept.get(key)
        if isinstance(entry, dict):
            found = [(str(n), str(p), bool(k)) for n, p, k in entry.get("found", [])]
            if entry.get("stamp") == _stamp(_read_from(module_path, search_path, found)):
                return found
        found = [tuple(f) for f in self.scan(module_name=module_name, module_path=module_path, search_path=search_path)]
        self.kept[key] = {"found": found, "stamp": _stamp(_read_from(module_path, search_path, found))}
        self._prune()
        self._save()
        return found

    def _prune(self) -> None:
        """Answers for modules whose file is gone (a removed checkout or worktree, a test's temporary folder) are
        dropped, so the file holds only modules that can still run."""
        for key in list(self.kept or {}):
            try:
                module_path = json.loads(key)[1]
            except (ValueError, IndexError, TypeError):
                module_path = None
            if not isinstance(module_path, str) or not os.path.isfile(module_path):
                del self.kept[key]  # type: ignore[union-attr]


def scan_file() -> Path:
    """$XDG_CACHE_HOME/sendmail-fleet/mitogen-module-scans.json (~/.cache when XDG_CACHE_HOME is not set)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "sendmail-fleet" / "mitogen-module-scans.json"


@functools.cache
def preload_once() -> None:
    """Once per process (the strategy runs once per play): preload(), Mitogen's module scans kept between runs (set
    before Mitogen's multiplexer forks from this process), and the workers share compiled templates in a folder
    inside Ansible's local temporary folder of this run, which Ansible removes at its end."""
    preload()
    ansible_mitogen.module_finder.scan = KeptScans(scan_file(), ansible_mitogen.module_finder.scan)
    if not share_compiled_templates(os.path.join(C.DEFAULT_LOCAL_TMP, "jinja")):
        display.vvv("mitogen_linear_unpinned: this ansible-core's template environment is not the one known here; "
                    "templates compile as before")


def skipped_here(loader: Any, host: Any, task: Any, task_vars: dict[str, Any],
                 play_context: Any) -> dict[str, Any] | None:
    """The result a worker would send for this task on this host when its `when` is false, made here in the
    controller's main process by the worker's own steps up to that point (TaskExecutor: the search path, the
    play context's variables, the conditional, no_log); None where the task must go to a worker: no `when`, a loop
    (its items have their own `when`), delegate_to (the worker adds the delegated host's variables first), a
    throttle, a conditional that is true, fails or warns, or anything else unusual, which the worker reports as
    always. A true `when` is decided again in the worker: a conditional has no effect of its own, but a lookup in
    it runs twice then (the roles' one is a first_found)."""
    if _RawTaskResult is None:
        return None
    if not task.when or task.loop_with or task.loop is not None or task.delegate_to or task.throttle:
        return None  # (a throttle is templated before any worker starts, as ansible-core does, and may fail there)
    variables = dict(task_vars)
    search_path = task.get_search_path()
    if loader.get_basedir() not in search_path:
        search_path.append(loader.get_basedir())
    variables["ansible_search_path"] = search_path
    templar = TemplateEngine(loader=loader, variables=variables)
    context: dict[str, Any] = {}
    with DeferredWarningContext(variables=variables) as caught:
        try:
            tempvars = variables.copy()
            task_context = play_context.set_task_and_variable_override(task=task, variables=variables, templar=templar)
            task_context.post_validate(templar=templar)
            if not task_context.remote_addr:
                task_context.remote_addr = host.address
            task_context.update_vars(tempvars)
            if task._resolve_conditional(task.when, tempvars, result_context=context):
                return None
            result = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"} | context
            task.update_result_no_log(templar, result)
        except Exception:  # noqa: BLE001 - the worker meets it again and reports it as Ansible does
            return None
        if caught.get_warnings() or caught.get_deprecation_warnings():
            return None  # the worker's result carries them
    return result


Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):  # type: ignore[misc, valid-type]
    def run(self, iterator, play_context):  # type: ignore[no-untyped-def]
        preload_once()
        return super().run(iterator, play_context)

    def _queue_task(self, host, task, task_vars, play_context):  # type: ignore[no-untyped-def]
        """A task whose `when` is false on this host skips without a worker: its result goes the way a worker's does
        (the results queue, the strategy's processing, the callbacks), only no process is forked for it."""
        result = skipped_here(self._loader, host, task, task_vars, play_context)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(_RawTaskResult(host=host, task=task, return_data=result,
                                                      task_fields=task.dump_attrs()))
        self._pending_results += 1
        return None

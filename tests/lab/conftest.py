"""One lab per test session: brought up (or reused and repaired), provisioned once, removed at the end.

MAILLAB_TEST_VPS (default: the default lab, every variant on Debian 13 and on 12) sets the fleet size.
A lab that is already up is reused: `up` only
repairs what differs, so an edit-and-test loop does not rebuild images. Keep the lab after the run with
`-k "not down"` (the last test removes it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import testinfra

import docker
from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.cpu import busy_share, machine_cpu
from sendmail_fleet.lab import Paths, publish_dns, save_topology, up
from sendmail_fleet.mailcheck import MailLab, Result
from sendmail_fleet.progress import Progress
from sendmail_fleet.textable import align
from sendmail_fleet.topology import DEFAULT_SUBNET, DEFAULT_VPS, Topology, build
from sendmail_fleet.variants import all_variants

# Every playbook run of the session (the tests', `maillab provision`'s and the demo's) is noted here, and the end
# of the session sums them up (pytest_terminal_summary): where the lab tests' time goes.
RUN_LOG = Paths.default().state / "logs" / "test-playbook-runs.jsonl"
RUN_LOG.parent.mkdir(parents=True, exist_ok=True)
RUN_LOG.write_text("")
# Each test's playbook run keeps its whole output here (NNN-PLAYBOOK.log): an assertion shows only its end.
RUN_OUTPUTS = RUN_LOG.parent / "test-runs"
if RUN_OUTPUTS.is_dir():
    for old in RUN_OUTPUTS.glob("*.log"):
        old.unlink()
RUN_OUTPUTS.mkdir(exist_ok=True)
os.environ[ansible_playbook.RUN_LOG_ENV] = str(RUN_LOG)
SESSION_T0, SESSION_CPU = time.monotonic(), machine_cpu()

LAB_VPS = int(os.environ.get("MAILLAB_TEST_VPS", str(DEFAULT_VPS)))
TOPOLOGY = build(LAB_VPS, os.environ.get("MAILLAB_SUBNET", DEFAULT_SUBNET))
VPS = TOPOLOGY.by_role("vps")
VPS_IDS = [f"{n.short}-{n.variant}" for n in VPS]
DEBIAN_13, DEBIAN_12 = "trixie", "bookworm"


def lab_host(variant: str | None = None, release: str | None = None, *, feature: str | None = None,
             nth: int = 0) -> str:
    """The inventory name of the session lab's nth VPS (0: the first) in `variant`, on Debian `release` (codename),
    with `feature`: tests choose their hosts by what the hosts run, never by number."""
    found = [n.short for n in VPS if variant in (None, n.variant) and release in (None, n.release)
             and (feature is None or feature in all_variants()[n.variant or ""].features)]
    if len(found) <= nth:
        raise LookupError(f"the lab ({LAB_VPS} VPS) has no VPS number {nth + 1} in variant {variant}, release "
                          f"{release}, feature {feature}: run the lab tests on the default lab")
    return found[nth]


# Seconds (setup, call and teardown) per test module: which modules the lab session's time goes to.
MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    module = report.nodeid.split("::")[0]
    MODULE_SECONDS[module] = MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    """The session's time by test module, and its playbook runs by playbook: how many, how long in all, and their
    share of the session."""
    if MODULE_SECONDS:
        terminalreporter.write_sep("=", "seconds per test module (setup, call, teardown)")
        rows = [("MODULE", "SECONDS")] + [(m, f"{s:.0f}") for m, s in
                                          sorted(MODULE_SECONDS.items(), key=lambda kv: -kv[1])]
        for line in align(rows, rule="  "):
            terminalreporter.write_line(line)
    try:
        runs = [json.loads(line) for line in RUN_LOG.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return
    if not runs:
        return
    session = time.monotonic() - SESSION_T0
    by: dict[str, list[float]] = {}
    for r in runs:
        one = r["limit"] not in ("all", "fleet") and "," not in r["limit"]
        by.setdefault(f"{r['playbook']} ({'-l one host' if one else 'several hosts'})", []).append(r["seconds"])
    rows = [("PLAYBOOK", "RUNS", "SECONDS", "MEAN S")]
    rows += [(name, str(len(s)), f"{sum(s):.0f}", f"{sum(s) / len(s):.1f}")
             for name, s in sorted(by.items(), key=lambda kv: -sum(kv[1]))]
    total = sum(r["seconds"] for r in runs)
    terminalreporter.write_sep("=", "ansible-playbook runs of this session")
    for line in align(rows, rule="  "):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"{len(runs)} runs, {total:.0f} s: {total / session:.0%} of the session's "
                                f"{session:.0f} s (runs beside one another count each; list: {RUN_LOG})")
    terminalreporter.write_line(f"the machine's {os.cpu_count()} cores were busy "
                                f"{busy_share(SESSION_CPU, machine_cpu()):.0%} of the session (the controller and the "
                                "lab's hosts together): the idle rest is all that tests side by side could use")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/lab/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def paths() -> Paths:
    return Paths.default()


@pytest.fixture(scope="session")
def topo(paths: Paths) -> Topology:
    up(TOPOLOGY, paths, Progress())
    save_topology(paths, TOPOLOGY)
    return TOPOLOGY


def playbook(paths: Paths, *args: str, name: str | Path = "site.yml", env: dict[str, str] | None = None,
             accelerated: bool = True) -> subprocess.CompletedProcess:
    """ansible-playbook on the lab inventory (accelerated False: plain ansible-core); stdout holds everything it
    printed, its errors too."""
    run = ansible_playbook.run(paths.inventory, name, *args, capture=True, env=env, timeout=1800,
                               accelerated=accelerated)
    n = len(list(RUN_OUTPUTS.glob("*.log"))) + 1
    (RUN_OUTPUTS / f"{n:03d}-{Path(str(name)).stem}.log").write_text(
        f"ansible-playbook {name} {' '.join(args)}\nexit {run.returncode}\n\n{run.stdout}")
    return run


def at_once(work, hosts) -> dict:
    """work(host) on every host at once (each host's own steps in order): short name -> its result."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        return dict(zip([h.short for h in hosts], pool.map(work, hosts), strict=True))


TLS_PORTS = (25, 465, 587, 110, 995)


def tls_seen(lab: MailLab, node, field: str = "cert_serial", ports: tuple[int, ...] = TLS_PORTS) -> dict:
    """What a verifying client (client1) sees of the certificate on each TLS port: the probe's `field`
    (cert_serial, cert_issuer; None where the session failed). STARTTLS on 25 and 587, STLS on 110."""
    a = node.accounts[0]
    how = {25: lambda: lab.smtp("client1", node, port=25, starttls=True).raw,
           465: lambda: lab.smtp("client1", node, port=465, tls=True).raw,
           587: lambda: lab.smtp("client1", node, port=587, starttls=True).raw,
           110: lambda: lab.pop3("client1", node, a.user, a.password),
           995: lambda: lab.pop3("client1", node, a.user, a.password, port=995)}
    return {port: how[port]().get(field) for port in ports}


def client_sh(lab: MailLab, cmd: str, client: str = "client1") -> tuple[int, str]:
    """A shell command in a client container: (exit status, what it printed)."""
    res = lab.container(client).exec_run(["sh", "-c", cmd])
    return res.exit_code, res.output.decode(errors="replace")


def curl(lab: MailLab, url: str, *args: str) -> tuple[int, str, str]:
    """(HTTP status, content type, body) as curl in client1 sees it, verifying the server's certificate and name."""
    code, out = client_sh(lab, f"curl -sS --max-time 20 -o /tmp/body -w '%{{http_code}} %{{content_type}}' "
                               f"{' '.join(shlex.quote(a) for a in args)} {shlex.quote(url)}; echo; cat /tmp/body")
    assert code == 0, out
    head, _, body = out.partition("\n")
    status, _, ctype = head.partition(" ")
    return int(status), ctype, body


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines: host -> {ok, changed, failed, ...} (summed over plays)."""
    hosts: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", output, re.M):
        counts = hosts.setdefault(m.group(1), {})
        for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)):
            counts[k] = counts.get(k, 0) + int(v)
    return hosts


def changed_tasks(output: str) -> list[str]:
    """'TASK name: host' for every task result that says changed, so an idempotence failure names its cause."""
    found, task = [], ""
    for line in output.splitlines():
        if m := re.match(r"^(?:TASK|RUNNING HANDLER) \[(.+?)\] \*+$", line):
            task = m.group(1)
        elif m := re.match(r"^changed: \[([^\]]+)\]", line):
            found.append(f"{task}: {m.group(1)}")
    return found


@pytest.fixture(scope="session")
def provisioned(topo: Topology, paths: Paths) -> Topology:
    run = playbook(paths)
    assert run.returncode == 0, run.stdout[-8000:]
    publish_dns(topo, Progress())  # the DKIM keys the run made, as `maillab provision` publishes them
    return topo


@pytest.fixture(scope="session")
def maillab(provisioned: Topology) -> MailLab:
    return MailLab(provisioned, docker.from_env())


@pytest.fixture(scope="session")
def lost_host_rollout(maillab: MailLab, paths: Paths, tmp_path_factory) -> Iterator[Future]:
    """The lost-host rollout scenario (tests/lab/lost_host.py, on four Debian 12 hosts), started in a thread when a
    test first asks for it; test_d's fleet rollout asks first and works on the other hosts meanwhile. Its tests wait for the result."""
    from .lost_host import run

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lost-host")
    future = pool.submit(run, maillab.topo, paths, tmp_path_factory.mktemp("lost-host"))
    yield future
    pool.shutdown(wait=True)  # never leave a playbook running behind the session


@dataclass
class DemoRun:
    """`maillab demo --skip-provision` as a user runs it: what it printed, its exit status, its JSON and HTML."""
    returncode: int
    output: str
    json: Path
    html: Path

    @property
    def results(self) -> dict[str, SimpleNamespace]:
        hosts = json.loads(self.json.read_text())["hosts"]
        return {h["vps"]: SimpleNamespace(results=[Result(**r) for r in h["checks"]]) for h in hosts}


def maillab_cli(*args: str, timeout: float = 1800, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The `maillab` command of this virtualenv (with `env` added to the environment), output (stdout and stderr)
    in one text."""
    return subprocess.run([str(Path(sys.executable).parent / "maillab"), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "SENDMAIL_FLEET_ACCELERATOR": os.environ.get(
                              "SENDMAIL_FLEET_ACCELERATOR", "mitogen"), **(env or {})})


@pytest.fixture(scope="session")
def demo_run(maillab: MailLab, tmp_path_factory) -> DemoRun:
    """The real-mail checks, run once per session by the main job itself on the provisioned lab."""
    out = tmp_path_factory.mktemp("demo") / "demo-results.json"
    run = maillab_cli("demo", "--skip-provision", "--json", str(out))
    return DemoRun(run.returncode, run.stdout, out, out.with_suffix(".html"))


@pytest.fixture(scope="session")
def mail_results(demo_run: DemoRun) -> dict[str, SimpleNamespace]:
    """Per VPS, the results of every check (mailcheck.Result) as the demo recorded them."""
    assert demo_run.json.exists(), demo_run.output[-3000:]
    return demo_run.results


def host(node) -> testinfra.host.Host:
    return testinfra.get_host(f"docker://{node.name}")


def sha(node, path: str) -> str:
    """SHA-256 of a file in the container, read there by sha256sum ("missing" when there is no such file). An
    answer with no output at all (docker exec's attach can lose it on a loaded machine) is asked again."""
    c = docker.from_env().containers.get(node.name)
    for _ in range(5):
        res = c.exec_run(["sh", "-c", f"if [ -e {shlex.quote(path)} ]; then sha256sum < {shlex.quote(path)}; "
                                      "else echo missing; fi"])
        out = res.output.decode(errors="replace").split()
        if res.exit_code == 0 and out:
            return out[0]
    raise AssertionError(f"{node.short}: could not read {path} ({res.exit_code}: {res.output!r})")

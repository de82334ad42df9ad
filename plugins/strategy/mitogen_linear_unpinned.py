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
"""

from __future__ import annotations

import functools

import ansible_mitogen.affinity

# Before the multiplexer starts (on the first run of a strategy) and before any worker asks for its CPU.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

import ansible_mitogen.loaders  # noqa: E402
import ansible_mitogen.strategy  # noqa: E402
from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.loader import filter_loader, lookup_loader, test_loader  # noqa: E402
from ansible.utils.display import Display  # noqa: E402

display = Display()

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


@functools.cache
def preload_once() -> None:
    """preload(), once per process: the strategy runs once per play, the plugins stay loaded."""
    preload()


Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):  # type: ignore[misc, valid-type]
    def run(self, iterator, play_context):  # type: ignore[no-untyped-def]
        preload_once()
        return super().run(iterator, play_context)

"""Strategy mitogen_linear_unpinned: Mitogen's linear strategy without its CPU pinning.

Mitogen pins its connection multiplexer to CPU 0 and, on a machine with fewer than four CPUs, the Ansible process
and every worker it forks to the CPUs after it: on two cores, all of Ansible's own work shares one. Measured here
(2 cores, 11 hosts, 50 tasks that skip): 10.4 s pinned, 6.7 s unpinned, 5.9 s on ansible-core's linear strategy;
benchmarks/provision.py compares the two on the lab. This strategy leaves placement to the kernel (Mitogen's
no-op policy) and is otherwise Mitogen's mitogen_linear. It needs Mitogen installed (the project's `fast` extra).
"""

from __future__ import annotations

import ansible_mitogen.affinity

# Before the multiplexer starts (on the first run of a strategy) and before any worker asks for its CPU.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

import ansible_mitogen.loaders  # noqa: E402
import ansible_mitogen.strategy  # noqa: E402

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):  # type: ignore[misc, valid-type]
    pass

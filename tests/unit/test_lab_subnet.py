"""A subnet another Docker network uses is refused before the lab is touched."""

from types import SimpleNamespace

import pytest

from sendmail_fleet.lab import LabError, _check_subnet_free
from sendmail_fleet.topology import build


class FakeNetworks:
    def __init__(self, nets: dict[str, list[str]]) -> None:
        self.nets = {name: SimpleNamespace(name=name, id=name, attrs={"IPAM": {"Config": [{"Subnet": s} for s in subs]
                                                                             if subs else None}})
                     for name, subs in nets.items()}

    def list(self):
        return list(self.nets.values())

    def get(self, key):
        return self.nets[key]


def client(nets):
    return SimpleNamespace(networks=FakeNetworks(nets))


def test_overlapping_subnet_names_the_network_and_the_fix():
    with pytest.raises(LabError, match=r"overlaps network 'other'.*--subnet"):
        _check_subnet_free(client({"bridge": ["172.17.0.0/16"], "other": ["10.213.7.0/24"], "none": []}),
                           build(2, "10.213.7.0/25"))


def test_the_labs_own_network_and_unrelated_ones_are_fine():
    topo = build(2, "10.213.7.0/24")
    _check_subnet_free(client({topo.network: ["10.213.7.0/24"], "bridge": ["172.17.0.0/16"], "v6": ["fd00::/64"]}),
                       topo)

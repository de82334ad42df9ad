"""`maillab demo` tests the lab as `maillab up` made it: variants given with --variant stay."""

from sendmail_fleet.cli import _topology, parser
from sendmail_fleet.demo import lab_topology
from sendmail_fleet.lab import Paths, save_topology, saved_topology


def test_demo_keeps_the_variants_saved_by_up(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILLAB_STATE_DIR", str(tmp_path))
    paths = Paths.default()
    args = parser().parse_args(["up", "--vps", "3", "--variant", "2=default-auth-only", "--subnet", "10.98.0.0/24"])
    save_topology(paths, _topology(args, paths))
    for topo in (lab_topology(paths, None), lab_topology(paths, 4)):
        assert topo.get("vps2").variant == "default-auth-only"
        assert topo.subnet == "10.98.0.0/24"
    assert lab_topology(paths, 4).vps_count == 4


def test_a_later_up_keeps_earlier_variants_and_adds_new_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILLAB_STATE_DIR", str(tmp_path))
    paths = Paths.default()
    save_topology(paths, _topology(parser().parse_args(["up", "--vps", "3", "--variant", "2=default-auth-only"]),
                                   paths))
    save_topology(paths, _topology(parser().parse_args(["up", "--variant", "3=pop-before-smtp"]), paths))
    topo = saved_topology(paths)
    assert (topo.get("vps2").variant, topo.get("vps3").variant) == ("default-auth-only", "pop-before-smtp")

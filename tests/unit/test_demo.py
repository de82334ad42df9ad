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


def test_demo_only_names_a_vps_of_the_lab_before_anything_starts(tmp_path, monkeypatch):
    import pytest

    from sendmail_fleet.demo import demo
    from sendmail_fleet.lab import LabError
    from sendmail_fleet.progress import Progress

    monkeypatch.setenv("MAILLAB_STATE_DIR", str(tmp_path))
    paths = Paths.default()
    save_topology(paths, _topology(parser().parse_args(["up", "--vps", "3"]), paths))
    assert parser().parse_args(["demo", "--only", "vps3", "--only", "vps1"]).only == ["vps3", "vps1"]
    with pytest.raises(LabError, match=r"--only vps9: not a VPS of this lab \(vps1, vps2, vps3\)"):
        demo(paths, Progress(), lambda *a: None, None, None, True, ["vps9"])

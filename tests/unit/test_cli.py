"""maillab's bad input gets one line that names the problem and the fix, and a non-zero exit."""

import subprocess
import sys

import pytest


def maillab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from sendmail_fleet.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60)


def test_unknown_subcommand_is_one_line_naming_the_commands():
    r = maillab("frobnicate")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown command 'frobnicate'" in lines[0] and "up, down, status" in lines[0]


@pytest.mark.parametrize("n", ["0", "41", "many"])
def test_vps_count_out_of_range_is_refused(n):
    r = maillab("up", "--vps", n)
    assert r.returncode == 2
    assert "1 to 40" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_variant_names_the_choices():
    r = maillab("up", "--variant", "2=sendmail-classic", "--subnet", "10.99.0.0/24")
    assert r.returncode == 1 and "default-auth-only" in r.stderr


@pytest.mark.parametrize("item", ["2=bullseye", "2=11", "two=trixie"])
def test_bad_release_names_the_choices_before_anything_starts(item):
    r = maillab("up", "--release", item, "--subnet", "10.99.0.0/24")
    assert r.returncode == 1 and f"--release '{item}'" in r.stderr
    assert ("trixie (13), bookworm (12)" in r.stderr) or ("N=RELEASE" in r.stderr)


def test_ssh_to_an_unknown_host_is_refused():
    r = maillab("ssh", "nosuchhost")
    assert r.returncode == 1 and "no lab host 'nosuchhost'" in r.stderr


def test_an_engine_that_does_not_answer_is_named_with_the_fix(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    r = maillab("up", "--subnet", "10.99.0.0/24")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "DOCKER_HOST=tcp://127.0.0.1:9 does not answer" in lines[0] and "unset" in lines[0]


@pytest.mark.parametrize("argv", [["-v", "demo"], ["demo", "-v"], ["--verbose", "up"], ["up", "--verbose"]])
def test_verbose_is_taken_before_or_after_the_command(argv):
    from sendmail_fleet.cli import parser

    assert parser().parse_args(argv).verbose is True
    assert parser().parse_args([argv[-1] if argv[0].startswith("-") else argv[0]]).verbose is False


def test_provision_passes_ansible_options_on_and_without_an_inventory_says_to_run_up_first(tmp_path):
    from sendmail_fleet.cli import parser

    args, extra = parser().parse_known_args(["provision", "-vvv", "--check", "-l", "vps1"])
    assert [*extra, *args.ansible_args] == ["-vvv", "--check", "-l", "vps1"]
    r = subprocess.run([sys.executable, "-c", "from sendmail_fleet.cli import main; main()", "provision"],
                       capture_output=True, text=True, timeout=60,
                       env={"MAILLAB_STATE_DIR": str(tmp_path), "MAILLAB_INVENTORY": str(tmp_path / "none.yml"),
                            "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and r.stderr.strip() == "maillab: error: no lab inventory: run `maillab up` first"

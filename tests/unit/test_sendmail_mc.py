"""Each variant's sendmail.mc has the macros its features promise, and none that they do not."""


import jinja2
import pytest
import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin
from sendmail_fleet.variants import all_variants, auth_only_of, variant_for_setup_date

ROLE = repo_root() / "roles" / "sendmail"


def render(variant: str, **overrides) -> str:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["sendmail_fleet.mail.milters_for"] = filter_plugin("milters").milters_for
    grace_text = yaml.safe_load((ROLE / "vars/main.yml").read_text())["__sendmail_grace_text"]
    ctx = {**defaults, "sendmail_fqdn": "mail.example.test", "ansible_managed": "managed",
           "__sendmail_grace_text": env.from_string(grace_text).render({**defaults, **overrides}),
           "__sendmail_render_features": sorted(all_variants()[variant].features),
           "__sendmail_render_variant": variant,
           "__sendmail_uses_probe": True,  # vars/main.yml: MSA on, probe on, saslauthd backend
           **overrides}
    return env.get_template("sendmail.mc.j2").render(ctx)


VARIANTS = list(all_variants())


def test_the_five_provider_variants_and_their_grace_phases_exist():
    assert set(VARIANTS) == {"pop-before-smtp", "default", "default-auth-only", "default-procmail-lda",
                             "default-procmail-lda-auth-only", "default-grace", "default-procmail-lda-grace"}


def test_argument_spec_names_every_variant_of_the_table_and_the_feature_choices():
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    described = " ".join(spec["sendmail_variant"]["description"])
    assert all(name in described for name in VARIANTS)
    from sendmail_fleet.variants import features
    assert sorted(spec["sendmail_features"]["choices"]) == sorted(features())


def test_every_variant_makes_a_promise_for_every_check_and_dash_only_where_the_check_does_not_apply():
    from sendmail_fleet.variants import NOT_APPLICABLE, applies, checks, promise
    for name in VARIANTS:
        for check in checks():
            value = promise(name, check)
            assert value.strip(), (name, check)  # "-" is a value here: it must stand exactly where the check
            assert (value == NOT_APPLICABLE) == (not applies(name, check)), (name, check, value)  # does not apply
        assert (promise(name, "POP login relay") == "250") == all_variants()[name].pop_before_smtp
        assert (promise(name, "AUTH PLAIN relay") == "235") == all_variants()[name].smtp_auth


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_variant_asks_the_client_who_it_is_by_ident(variant):
    """An ident answer is the client's own text, and sendmail puts it into the relay= fields fail2ban and the audit
    read ("user@name [address]"); Debian's default asks, for up to 5 s."""
    assert "define(`confTO_IDENT', `0')dnl" in render(variant).splitlines()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_keeps_debian_domain_and_listens_on_25_and_587(variant):
    mc = render(variant)
    assert "DOMAIN(`debian-mta')" in mc
    assert "DAEMON_OPTIONS(`Family=inet, Name=MTA-v4, Port=smtp" in mc  # no Addr=: all addresses
    assert "Port=submission" in mc and "FEATURE(`no_default_msa')" in mc
    assert "confSERVER_CERT" in mc and "FEATURE(`access_db'" in mc
    assert mc.index("MAILER_DEFINITIONS") > mc.index("FEATURE(`local_")


@pytest.mark.parametrize("variant", VARIANTS)
def test_smtp_auth_adds_mechanisms_tls_only_and_an_msa_that_requires_auth(variant):
    mc = render(variant)
    if all_variants()[variant].smtp_auth:
        assert "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')" in mc
        assert "TRUST_AUTH_MECH(`PLAIN LOGIN')" in mc
        assert "define(`confAUTH_OPTIONS', `A p y')" in mc
        if all_variants()[variant].grace:  # AUTH required by a rule, so that a POP3 user hears the grace refusal
            assert "Port=submission, M=E'" in mc
            assert 'R$* $| <msa> <none>\t$#error $@ 5.7.0 $: "530 5.7.0 Authentication required"' in mc
        else:
            assert "Port=submission, M=Ea'" in mc
    else:
        assert "define(`confAUTH_MECHANISMS', `')" in mc
        assert "TRUST_AUTH_MECH" not in mc and "M=Ea" not in mc
        # every listener refuses AUTH itself, even where SASL libraries are left from an earlier variant
        assert "Name=MTA-v4, Port=smtp, M=A')" in mc and "Port=submission, M=EA')" in mc


@pytest.mark.parametrize("variant", VARIANTS)
def test_pop_before_smtp_adds_the_drac_map_only_where_wanted(variant):
    """The grace phase keeps the map for the excepted mailboxes and networks; auth-only variants have none."""
    mc = render(variant)
    v = all_variants()[variant]
    assert ("FEATURE(`drac', `hash -o /etc/mail/drac')" in mc) == (v.pop_before_smtp or v.grace)
    assert ("Kpop_grace hash -o /etc/mail/pop-before-smtp-grace" in mc) == v.grace


def test_the_grace_refusal_is_temporary_names_the_help_page_and_spares_authenticated_and_local_mail():
    mc = render("default-grace", sendmail_grace_help_url="https://autoconfig.example.test/")
    rcpt = mc[mc.index("SLocal_check_rcpt"):mc.index("SLocal_check_mail")].splitlines()
    assert rcpt[1] == "R$*\t$: $1 $| $&{auth_type}" and rcpt[2] == "R$* $| $+\t$@ $1"  # authenticated: untouched
    assert "R$* $| $+ < @ $=w >\t$@ local" in rcpt  # mail for this server's own domains: untouched
    refusal = rcpt[-1]
    assert refusal.startswith('R$* $| $* < @ $+ > $*\t$#error $@ 4.7.1 $: "450 4.7.1 ')
    assert "https://autoconfig.example.test/" in refusal and "SMTP authentication" in refusal
    assert "https://" not in render("default-grace", sendmail_grace_help_url="")
    for name in VARIANTS:
        assert ("Local_check_rcpt" in render(name)) == all_variants()[name].grace


@pytest.mark.parametrize("variant", VARIANTS)
def test_procmail_variants_deliver_with_procmail_others_with_mail_local(variant):
    mc = render(variant)
    if all_variants()[variant].procmail_lda:
        assert "FEATURE(`local_procmail', `/usr/bin/procmail', `procmail -a $h -d $u')" in mc
        assert "local_lmtp" not in mc
    else:
        assert "FEATURE(`local_lmtp', `/usr/libexec/sendmail/mail.local')" in mc
        assert "PROCMAIL_MAILER_PATH" not in mc and "local_procmail" not in mc


def test_plaintext_auth_before_tls_only_when_asked():
    assert "`A y'" in render("default", sendmail_auth_require_tls=False)


def test_extra_lines_go_before_the_mailers():
    mc = render("default", sendmail_mc_extra="define(`confMAX_MESSAGE_SIZE', `1000')dnl")
    assert mc.index("confMAX_MESSAGE_SIZE") < mc.index("MAILER(`local')")


def test_ipv6_listeners_are_optional():
    assert "Family=inet6" not in render("default")
    assert "Family=inet6, Name=MTA-v6" in render("default", sendmail_listen_ipv6=True)


def test_set_up_date_rule():
    import datetime as dt
    assert variant_for_setup_date(dt.date(2003, 1, 15)) == "pop-before-smtp"
    assert variant_for_setup_date(dt.date(2003, 1, 16)) == "default"


def test_rollout_targets_are_auth_only_and_keep_procmail():
    for name, v in all_variants().items():
        target = all_variants()[auth_only_of(name)]
        assert target.smtp_auth and not target.pop_before_smtp
        assert target.procmail_lda == v.procmail_lda


@pytest.mark.parametrize("variant", VARIANTS)
def test_smtp_auth_variants_answer_454_on_the_submission_port_while_saslauthd_is_down(variant):
    mc = render(variant)
    has_probe = "Ksaslauthd_state text -o -k0 -v1 /run/sendmail-fleet/saslauthd.state" in mc
    assert has_probe == ("smtp_auth" in all_variants()[variant].features)
    if has_probe:
        rules = mc[mc.index("LOCAL_TLS_CLIENT"):].splitlines()[1:5]
        assert all(line.startswith("R") and "\t" in line for line in rules)  # sendmail needs a tab before the RHS
        # "-" is no operator in sendmail's tokens: MSA-v4 is one word, matched through a class
        assert "C{SubmissionDaemons}MSA-v4 MSA-v6" in mc
        assert "<> $={SubmissionDaemons}\t$: $1 <> $(saslauthd_state probe $: up $)" in rules[1]
        assert '$#error $@ 4.7.0 $: "454 4.7.0 ' in rules[2]
        assert mc.index("LOCAL_TLS_CLIENT") > mc.index("MAILER(`smtp')")  # cfhead.m4 warns otherwise


def test_the_probe_is_a_text_map_no_program_runs_per_command():
    mc = render("default-auth-only")
    assert " program " not in mc[mc.index("LOCAL_CONFIG"):]


def test_no_saslauthd_probe_when_it_is_turned_off():
    assert "saslauthd_state" not in render("default", __sendmail_uses_probe=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_465_is_opened_with_implicit_tls_and_auth_required_only_where_smtp_auth_is(variant):
    mc = render(variant)
    smtps = "DAEMON_OPTIONS(`Family=inet, Name=MSA-SSL-v4, Port=465, M=Eas')" in mc
    assert smtps == all_variants()[variant].smtp_auth
    assert ("Port=465" in render(variant, sendmail_smtps=False)) is False
    assert ("Port=465" in render(variant, sendmail_tls=False)) is False  # implicit TLS needs a certificate
    if smtps:
        assert "C{SubmissionDaemons}MSA-v4 MSA-v6 MSA-SSL-v4 MSA-SSL-v6" in mc  # 454 while saslauthd is down


def test_every_listener_serves_tls_1_2_or_later_and_the_given_ciphers():
    mc = render("default", sendmail_tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")
    assert ("define(`confSERVER_SSL_OPTIONS', `+SSL_OP_NO_SSLv2 +SSL_OP_NO_SSLv3 +SSL_OP_NO_TLSv1"
            " +SSL_OP_NO_TLSv1_1')") in mc
    assert "define(`confCIPHER_LIST', `ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305')" in mc
    assert "confCIPHER_LIST" not in render("default", sendmail_tls_ciphers="")  # "" keeps OpenSSL's default
    assert "ECDHE-RSA-AES128-GCM-SHA256" in render("default")  # the role's own default is the project's policy


def test_the_roles_feature_list_is_the_variant_tables_own():
    """One source: the role's list is the filter's (the lab reads the filter's too)."""
    assert yaml.safe_load((ROLE / "vars/main.yml").read_text())["__sendmail_features_all"] == (
        "{{ [] | sendmail_fleet.mail.variant_features }}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_mail_program_is_logged_only_for_clients_that_authenticated_or_relay_by_pop3_login(variant):
    mc = render(variant)
    v = all_variants()[variant]
    rules = mc[mc.index("SLogProgram\n"):mc.index("SLogProgramNow")].splitlines()
    assert "HUser-Agent: $>+LogProgram" in mc and "HX-Mailer: $>+LogProgram" in mc
    assert "R$+ $| $*\t$@ $>LogProgramNow $2" in rules  # ${auth_type} set: the client authenticated
    assert ("R$* $| $*\t$: $(drac $&{client_addr} $: <none> $) $| $2" in rules) == (v.pop_before_smtp or v.grace)
    assert not any("$#" in r for r in rules)  # logging never refuses a message
    assert "LogProgram" not in render(variant, sendmail_log_programs=False)


MILTER = [{"name": "opendkim", "socket": "inet:8891@127.0.0.1"}]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_milter_sees_every_message_and_mail_by_pop_before_smtp_is_marked_for_it(variant):
    """The dkim role's milter (flag T: 4xx while it is down, nothing passes unsigned or is lost); where the variant has
    the relay map, Local_check_mail sets {pbs_relay} for a client the map lets relay and MAIL's macros carry it (a
    mark in a later stage arrives after OpenDKIM has decided, as the lab showed)."""
    mc = render(variant, sendmail_milters=MILTER)
    assert "INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@127.0.0.1, F=T, T=C:10s;S:30s;R:30s;E:2m')dnl" in mc
    features = all_variants()[variant]
    drac = features.pop_before_smtp or features.grace
    assert ("$(pbs_mark {pbs_relay} $@ yes $)" in mc) == drac
    envfrom = [line for line in mc.splitlines() if line.startswith("define(`confMILTER_MACROS_ENVFROM'")]
    assert bool(envfrom) == drac
    if drac:
        assert "{auth_type}, {auth_authen}" in envfrom[0] and envfrom[0].endswith("{pbs_relay}')dnl")
        assert mc.count("SLocal_check_mail") == 1 and mc.count("Kpbs_mark macro") == 1
    assert "INPUT_MAIL_FILTER" not in render(variant)  # no milter unless one is given


LIMITS = {"name": "limits", "socket": "inet:8892@127.0.0.1", "features": ["smtp_auth"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_milter_that_needs_smtp_auth_is_asked_only_in_variants_with_it_and_before_the_signer(variant):
    """The sending limit counts mailboxes that authenticated: a variant without SMTP-Auth does not ask it, so every
    variant's .mc is the same whatever variant the host runs (the variants folder stays as it is after a switch)."""
    mc = render(variant, sendmail_milters=[LIMITS, *MILTER])
    asked = [line.split("`")[1].split("'")[0] for line in mc.splitlines() if line.startswith("INPUT_MAIL_FILTER")]
    assert asked == (["limits", "opendkim"] if "smtp_auth" in all_variants()[variant].features else ["opendkim"])


@pytest.mark.parametrize("socket, args", [
    ("inet:8891@127.0.0.1", {"host": "127.0.0.1", "port": 8891}),
    ("inet6:8892@::1", {"host": "::1", "port": 8892}),
    ("local:/run/milter/sock", {"path": "/run/milter/sock"}),
])
def test_a_milter_socket_becomes_the_address_the_roles_wait_on(socket, args):
    assert filter_plugin("milters").milter_listen(socket) == args

"""What mail programs send and fetch, on every VPS whatever its variant: the cases other mail servers' test suites
check. A message with dot lines, 8-bit text, long lines and trailing blanks comes back over POP3 as it was sent;
the limits the EHLO reply announces (SIZE, recipients) are the ones enforced; upper-case and +detail addresses
reach the mailbox; mail that arrives while a POP3 session deletes others survives its QUIT; a message to a remote
mailbox that does not exist comes back to its sender as a bounce; VRFY and EXPN list no mailbox.

client2 is the mail program of a stranger (port 25, to the VPS's own mailboxes, no relay asked) and, with a
mailbox's password, of its owner (POP3 over STLS, SMTP-Auth on 587). The limits are read from the sendmail role's
defaults, which the lab does not override."""

from __future__ import annotations

import base64
import json

import pytest

from sendmail_fleet.collection import role_defaults
from sendmail_fleet.mailcheck import MailLab, token
from sendmail_fleet.variants import all_variants

from .conftest import TOPOLOGY, VPS, VPS_IDS, at_once

CLIENT = "client2"
MX = TOPOLOGY.by_role("mx")[0]
SENDER = f"dave@{MX.domain}"  # a remote sender whose domain the lab's DNS knows
LIMITS = role_defaults("sendmail")
MAX_SIZE, MAX_RCPTS = int(LIMITS["sendmail_max_message_size"]), int(LIMITS["sendmail_max_recipients"])
# sendmail measures a message as it stores it, each line ending in LF: 999 bytes a filler line, and these are 10
# lines more than the limit holds.
OVER_LINES = MAX_SIZE // 999 + 10

# Run in client2 with one JSON request as its argument (the mailbox's password, where one is needed, comes in the
# environment as PW): SMTP or POP3 the way a mail program speaks it, every reply printed as JSON.
# smtp: {"server", "port", "auth": user or absent, "ask": [commands], "mail": "FROM:<..> PARAMS" (none: QUIT after
#        "ask"), "rcpt": [..], "data": text,
#        "filler_lines": lines of 998 characters to add to the body} -> {"ehlo": {keyword: value}, "mail": [code, text],
#        "rcpt": [[code, text], ..], "data": [code, text] or null, "asked": [[code, text], ..]}
# pop3: {"server", "user", "find": [tokens], "delete": [tokens], "send": [smtp requests], "arrives": [tokens]}:
#       the messages carrying each token of "find" (base64 of their lines), those of "delete" marked deleted; then,
#       with the session still open, the "send" messages go out at once while a mail program checks the mailbox
#       in new sessions until every token of "arrives" is there (90 s at most), and only then the first QUITs.
CLIENT_SCRIPT = r"""
import base64, json, os, poplib, smtplib, ssl, sys, time
from concurrent.futures import ThreadPoolExecutor
req = json.loads(sys.argv[1])
ctx = ssl.create_default_context()

def smtp(req):
    s = smtplib.SMTP(req["server"], req.get("port", 25), timeout=120)
    s.ehlo("client2.clients.test")
    if req.get("auth"):
        s.starttls(context=ctx)
        s.ehlo("client2.clients.test")
        s.login(req["auth"], os.environ["PW"])
    out = {"ehlo": dict(s.esmtp_features), "rcpt": [], "data": None, "mail": None}
    out["asked"] = [[c, t.decode(errors="replace")] for c, t in (s.docmd(q) for q in req.get("ask", []))]
    if not req.get("mail"):
        s.quit()
        return out
    out["mail"] = list(s.docmd("MAIL " + req["mail"]))
    if out["mail"][0] == 250:
        out["rcpt"] = [list(s.docmd(f"RCPT TO:<{r}>")) for r in req["rcpt"]]
        if any(code == 250 for code, _ in out["rcpt"]):
            body = req["data"].encode() + (b"z" * 998 + b"\r\n") * req.get("filler_lines", 0)
            try:
                out["data"] = list(s.data(body))
            except smtplib.SMTPDataError as e:
                out["data"] = [e.smtp_code, e.smtp_error]
    for part in ("mail", "data"):
        if out[part]:
            out[part][1] = out[part][1].decode(errors="replace")
    out["rcpt"] = [[c, t.decode(errors="replace")] for c, t in out["rcpt"]]
    s.quit()
    return out

def session(timeout=60):
    p = poplib.POP3(req["server"], 110, timeout=timeout)
    p.stls(ctx)
    p.user(req["user"])
    p.pass_(os.environ["PW"])
    return p

def carrying(p, tok):
    return [i for i in range(1, p.stat()[0] + 1) if any(tok.encode() in l for l in p.top(i, 0)[1])]

def pop3():
    p, out = session(), {"found": {}, "deleted": [], "arrived": None}
    for tok in req.get("find", []):
        out["found"][tok] = [base64.b64encode(b"\n".join(p.retr(i)[1])).decode() for i in carrying(p, tok)]
    for i in [i for tok in req.get("delete", []) for i in carrying(p, tok)]:
        out["deleted"].append(p.dele(i).decode())
    if req.get("send"):
        with ThreadPoolExecutor(len(req["send"])) as pool:
            sending = [pool.submit(smtp, r) for r in req["send"]]
            deadline, waiting = time.monotonic() + 90, set(req["arrives"])
            while waiting and (left := deadline - time.monotonic()) > 0:
                try:
                    q = session(timeout=left)
                    waiting = {tok for tok in waiting if not carrying(q, tok)}
                    q.quit()
                except (OSError, poplib.error_proto) as e:
                    out.setdefault("check_errors", []).append(repr(e)[:200])
                if waiting:
                    time.sleep(0.3)
            out["sent"], out["not_arrived"] = [f.result() for f in sending], sorted(waiting)
    out["quit"] = p.quit().decode()
    return out

print(json.dumps(smtp(req) if sys.argv[2] == "smtp" else pop3()))
"""


def client(maillab: MailLab, kind: str, req: dict, password: str | None = None) -> dict:
    res = maillab.container(CLIENT).exec_run(["python3", "-c", CLIENT_SCRIPT, json.dumps(req), kind],
                                             environment={"PW": password} if password else None)
    out = res.output.decode(errors="replace").strip()
    assert res.exit_code == 0, f"{kind} {req.get('server')}: {out[-600:]}"
    return json.loads(out.splitlines()[-1])


# The body of the message that must come back as it was sent: lines that SMTP's dot-stuffing changes on the wire, a
# line mbox stores quoted, 8-bit UTF-8 text (sent with BODY=8BITMIME), lines of 990 and 1500 characters, blanks.
BODY = [".leading dot", "..two dots", ".", " .space then dot", "From the start of a line", ">From quoted already",
        "\u00e9t\u00e9, caf\u00e9, \u2603, \u65e5\u672c\u8a9e: 8-bit UTF-8", "x" * 990, "y" * 1500,
        "trailing spaces   ", "trailing tab\t", "", "", "the last line"]


def as_sent(tok: str, rcpt: str) -> str:
    head = [f"From: <{SENDER}>", f"To: <{rcpt}>", f"Subject: as sent {tok}", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return "\r\n".join(head) + "\r\n\r\n" + "\r\n".join([f"token {tok}", *BODY]) + "\r\n"


def body_lines(b64: str) -> list[str]:
    """The body of a message as POP3 gave it (dot-unstuffed by poplib), line by line."""
    raw = base64.b64decode(b64).decode("utf-8", errors="replace").split("\n")
    return raw[raw.index("") + 1:]


def to_mailbox(vps, rcpt: str, subject: str, tok: str) -> dict:
    """The stranger's mail program sends a short message carrying tok to rcpt on the VPS, on port 25."""
    return {"server": vps.fqdn, "mail": f"FROM:<{SENDER}>", "rcpt": [rcpt],
            "data": f"Subject: {subject} {tok}\r\n\r\n{subject} {tok}\r\n"}


@pytest.fixture(scope="module")
def round_trips(maillab: MailLab) -> dict[str, dict]:
    """client2 sends the message to the first mailbox, then fetches it over POP3."""
    def trip(vps) -> dict:
        alice, tok = vps.accounts[0], token()
        sent = client(maillab, "smtp", {"server": vps.fqdn, "mail": f"FROM:<{SENDER}> BODY=8BITMIME",
                                         "rcpt": [alice.address], "data": as_sent(tok, alice.address)})
        arrived = maillab.wait_for_mail(vps, f"/var/mail/{alice.user}", tok)
        got = client(maillab, "pop3", {"server": vps.fqdn, "user": alice.user, "find": [tok]}, alice.password)
        return {"token": tok, "sent": sent, "arrived": arrived, "fetched": got["found"][tok]}

    return at_once(trip, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_the_ehlo_reply_offers_8bitmime_pipelining_starttls_and_the_size_limit_the_role_sets(round_trips, vps):
    ehlo = round_trips[vps.short]["sent"]["ehlo"]
    assert {"8bitmime", "pipelining", "starttls", "enhancedstatuscodes"} <= set(ehlo), (vps.short, sorted(ehlo))
    assert ehlo.get("size") == str(MAX_SIZE), (vps.short, ehlo.get("size"))


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_a_message_with_dot_lines_8bit_text_and_long_lines_comes_back_over_pop3_as_it_was_sent(round_trips, vps):
    trip = round_trips[vps.short]
    assert trip["sent"]["data"][0] == 250, (vps.short, trip["sent"])
    assert trip["arrived"], f"{vps.short}: the message did not reach the mailbox"
    assert len(trip["fetched"]) == 1, (vps.short, f"{len(trip['fetched'])} messages carry the token")
    got, want = body_lines(trip["fetched"][0]), [f"token {trip['token']}", *BODY]
    # mbox stores a body line that starts "From " quoted as ">From " (procmail does; mail.local writes a
    # Content-Length instead): the only change a mailbox may make.
    changed = [(w, g) for w, g in zip(want, got, strict=False)
               if g != w and not (w.startswith("From ") and g == ">" + w)]
    assert not changed, f"{vps.short} ({vps.variant}): lines changed on the way: {changed}"
    assert len(got) == len(want), (vps.short, f"{len(got)} lines came back, {len(want)} were sent", got[-3:])


@pytest.fixture(scope="module")
def limit_answers(maillab: MailLab) -> dict[str, dict]:
    """MAIL with a SIZE one byte over the limit and one at it; a message over the limit sent without SIZE; one
    recipient more than the limit (the same mailbox each time: one delivery)."""
    def attempts(vps) -> dict:
        alice, toks = vps.accounts[0], {name: token() for name in ("big", "many")}
        out: dict = {"tokens": toks}
        for name, size in (("over", MAX_SIZE + 1), ("at", MAX_SIZE)):
            out[name] = client(maillab, "smtp", {"server": vps.fqdn, "mail": f"FROM:<{SENDER}> SIZE={size}",
                                                 "rcpt": [], "data": ""})
        out["big"] = client(maillab, "smtp", {**to_mailbox(vps, alice.address, "too big", toks["big"]),
                                              "filler_lines": OVER_LINES})
        out["many"] = client(maillab, "smtp", {**to_mailbox(vps, alice.address, "many", toks["many"]),
                                               "rcpt": [alice.address] * (MAX_RCPTS + 1)})
        return out

    return at_once(attempts, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_mail_over_the_announced_size_is_refused_with_552_at_mail_from_or_after_data_and_not_delivered(
        maillab: MailLab, limit_answers, vps):
    seen = limit_answers[vps.short]
    assert seen["over"]["mail"][0] == 552, (vps.short, seen["over"]["mail"])
    assert seen["at"]["mail"][0] == 250, (vps.short, seen["at"]["mail"])
    assert seen["big"]["data"] and seen["big"]["data"][0] == 552, (vps.short, seen["big"]["data"])
    assert not maillab.has_mail(vps, f"/var/mail/{vps.accounts[0].user}", seen["tokens"]["big"]), vps.short


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_the_recipient_past_the_limit_gets_452_4_5_3_and_the_message_reaches_the_mailbox_once(
        maillab: MailLab, limit_answers, vps):
    seen, mailbox = limit_answers[vps.short]["many"], f"/var/mail/{vps.accounts[0].user}"
    codes = [code for code, _ in seen["rcpt"]]
    assert codes == [250] * MAX_RCPTS + [452], (vps.short, {c: codes.count(c) for c in set(codes)})
    assert "4.5.3" in seen["rcpt"][-1][1], (vps.short, seen["rcpt"][-1])
    assert seen["data"][0] == 250, (vps.short, seen["data"])
    tok = limit_answers[vps.short]["tokens"]["many"]
    assert maillab.wait_for_mail(vps, mailbox, f"many {tok}"), vps.short
    assert maillab.sh(vps, f"grep -c '^Subject: many {tok}' {mailbox}")[1].strip() == "1", vps.short


@pytest.fixture(scope="module")
def address_forms(maillab: MailLab) -> dict[str, list[tuple[str, str, dict, bool]]]:
    """The first mailbox written in upper case and with a +detail: (address, token, the replies, arrived)."""
    def forms(vps) -> list[tuple[str, str, dict, bool]]:
        alice = vps.accounts[0]
        sent = [(rcpt, tok, client(maillab, "smtp", to_mailbox(vps, rcpt, "form", tok)))
                for rcpt, tok in ((f"{alice.user.upper()}@{vps.domain.upper()}", token()),
                                  (f"{alice.user}+lists@{vps.domain}", token()))]
        return [(rcpt, tok, seen, maillab.wait_for_mail(vps, f"/var/mail/{alice.user}", tok))
                for rcpt, tok, seen in sent]

    return at_once(forms, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_upper_case_and_plus_detail_addresses_reach_the_mailbox(address_forms, vps):
    for rcpt, _, seen, arrived in address_forms[vps.short]:
        assert [c for c, _ in seen["rcpt"]] == [250] and seen["data"][0] == 250, (vps.short, rcpt, seen)
        assert arrived, f"{vps.short}: mail to {rcpt} did not reach the mailbox"


# How many messages arrive at once while a POP3 session that deleted others is open and a mail program checks the
# mailbox: each delivery and each check locks the mbox, as the session's QUIT does.
ARRIVING = 6


@pytest.fixture(scope="module")
def arrivals(maillab: MailLab) -> dict[str, dict]:
    """Two messages to the second mailbox; a POP3 session deletes them and, still open, sees ARRIVING messages
    come in while other sessions check the mailbox; then QUIT, and what the mailbox holds after."""
    def arrive(vps) -> dict:
        bob = vps.accounts[1]
        old, new = [token(), token()], [token() for _ in range(ARRIVING)]
        for tok in old:
            client(maillab, "smtp", to_mailbox(vps, bob.address, "old", tok))
        if not all(maillab.wait_for_mail(vps, f"/var/mail/{bob.user}", tok) for tok in old):
            return {"error": "the two messages to delete did not reach the mailbox"}
        try:
            session = client(maillab, "pop3", {"server": vps.fqdn, "user": bob.user, "delete": old, "arrives": new,
                                               "send": [to_mailbox(vps, bob.address, "new", tok) for tok in new]},
                             bob.password)
            after = client(maillab, "pop3", {"server": vps.fqdn, "user": bob.user, "find": [*old, *new]},
                           bob.password)
        except AssertionError as e:  # a session that died (a time-out, a refusal): this host's test says so
            return {"error": str(e).splitlines()[-1]}
        return {"session": session, "left": [len(after["found"][tok]) for tok in (*old, *new)]}

    return at_once(arrive, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_mail_that_arrives_while_pop3_sessions_delete_and_check_is_delivered_at_once_and_survives_the_quit(
        arrivals, vps):
    assert "error" not in arrivals[vps.short], f"{vps.short} ({vps.variant}): {arrivals[vps.short]['error']}"
    session, left = arrivals[vps.short]["session"], arrivals[vps.short]["left"]
    assert [s["data"][0] for s in session["sent"]] == [250] * ARRIVING, (vps.short, session["sent"])
    assert len(session["deleted"]) == 2, (vps.short, session["deleted"])
    # Delivered and seen by the checking sessions within 90 s (a delivery and a session that each hold one of the
    # mbox's locks and wait for the other wait out dovecot's 5-minute lock timeout; procmail's deliveries, which
    # retry a taken dotlock every 8 s, took up to 32 s here), no check refused, and the deleting session's QUIT
    # kept them.
    assert not session["not_arrived"] and not session.get("check_errors"), (
        f"{vps.short} ({vps.variant}): {len(session['not_arrived'])} of {ARRIVING} not in the mailbox after 90 s; "
        f"the checks' errors: {session.get('check_errors')}")
    assert left == [0, 0] + [1] * ARRIVING, (vps.short, session["quit"], left)


SMTP_AUTH_VPS = [v for v in VPS if all_variants()[v.variant].smtp_auth]


@pytest.fixture(scope="module")
def bounces(maillab: MailLab) -> dict[str, tuple[str, dict, str]]:
    """The first mailbox's owner sends, with SMTP-Auth on 587, to a mailbox the mx does not have: (that address,
    the replies, the bounce in the sender's mailbox or "")."""
    def send(vps) -> tuple[str, dict, str]:
        alice, tok = vps.accounts[0], token()
        nobody, mailbox = f"nobody-{tok}@{MX.domain}", f"/var/mail/{alice.user}"
        sent = client(maillab, "smtp", {"server": vps.fqdn, "port": 587, "auth": alice.user,
                                        "mail": f"FROM:<{alice.address}>", "rcpt": [nobody],
                                        "data": f"From: <{alice.address}>\r\nSubject: lost {tok}\r\n\r\nlost\r\n"},
                      alice.password)
        if not maillab.wait_for_mail(vps, mailbox, nobody, timeout=60):
            return nobody, sent, ""
        return nobody, sent, maillab.sh(vps, f"grep -B40 -A40 -F -- {nobody} {mailbox}")[1]

    return at_once(send, SMTP_AUTH_VPS)


@pytest.mark.parametrize("vps", SMTP_AUTH_VPS, ids=[f"{v.short}-{v.variant}" for v in SMTP_AUTH_VPS])
def test_mail_to_a_remote_mailbox_that_does_not_exist_comes_back_to_its_sender_as_a_bounce(bounces, vps):
    nobody, sent, bounce = bounces[vps.short]
    assert [c for c, _ in sent["rcpt"]] == [250] and sent["data"][0] == 250, (vps.short, sent)
    assert bounce, f"{vps.short}: no bounce for {nobody} came back within 60 s"
    # The bounce names the address and says why (the mx's 550 5.1.1 for an unknown user).
    assert "Returned mail" in bounce and "5.1.1" in bounce, (vps.short, bounce[-800:])


@pytest.fixture(scope="module")
def vrfy_expn(maillab: MailLab) -> dict[str, list]:
    def ask(vps) -> list:
        """A stranger asks, in one session, about a mailbox that exists and one that does not, and for two lists."""
        user = vps.accounts[0].user
        return client(maillab, "smtp", {"server": vps.fqdn, "ask": [f"VRFY {user}", f"VRFY nobody-{token()}",
                                                                    "EXPN postmaster", f"EXPN {user}"]})["asked"]

    return at_once(ask, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_vrfy_and_expn_tell_a_stranger_nothing_about_the_mailboxes(vrfy_expn, vps):
    known, unknown, *expn = vrfy_expn[vps.short]
    assert known == unknown and known[0] == 252, (vps.short, known, unknown)  # the same answer for both
    assert [c for c, _ in expn] == [502, 502], (vps.short, expn)

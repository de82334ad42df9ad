"""A probe whose connection was refused (no listener, or a ban) is told apart from one a server answered."""

from sendmail_fleet.mailcheck import refused_at_connect


def test_a_refused_connection_is_the_first_step_failing_with_connection_refused():
    assert refused_at_connect([{"step": "error", "code": 0, "text": "ConnectionRefusedError: [Errno 111] "
                                                                      "Connection refused"}])


def test_an_answer_a_timeout_or_no_step_at_all_is_not_a_refused_connection():
    assert not refused_at_connect([{"step": "connect", "code": 220, "text": "mail.example.test ESMTP"}])
    assert not refused_at_connect([{"step": "error", "code": 0, "text": "TimeoutError: timed out"}])
    assert not refused_at_connect([])

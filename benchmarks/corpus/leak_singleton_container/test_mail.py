def test_mail_with_fake_mailer(container):
    container.override("mailer", lambda: "fake")
    assert container.resolve("mailer") == "fake"


def test_clock_is_system(container):
    assert container.resolve("clock") == "system"

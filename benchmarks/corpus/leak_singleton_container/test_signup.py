def test_signup_uses_smtp(container):
    assert container.resolve("mailer") == "smtp"


def test_container_is_singleton(container):
    from container import Container
    assert Container.get() is container

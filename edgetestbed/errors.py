"""Errors the user caused and can fix: reported as one clear message, exit status 2."""


class UserError(Exception):
    """Bad input (YAML, CLI arguments) or a request this machine cannot honour.

    The CLI prints ``str(error)`` without a traceback and exits with status 2.
    """

    exit_status = 2


class SpecError(UserError):
    """The experiment spec is invalid; the message names file, line and field."""


class CapabilityError(UserError):
    """The spec asks for something this machine cannot emulate."""


class LeftoverError(UserError):
    """Resources of another (or a crashed) run are still present."""

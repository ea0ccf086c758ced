"""The one error type users see: the CLI prints it on one line and exits with code 2."""


class KdnlpError(Exception):
    """A problem with the user's input (a bad value, a missing file); never a bug in kdnlp."""

"""The one error type users see (the CLI prints it on one line and exits with code 2), and progress messages."""
import sys


class KdnlpError(Exception):
    """A problem with the user's input (a bad value, a missing file); never a bug in kdnlp."""


def say(msg: str) -> None:
    """A progress message for the user, on stderr (stdout carries results)."""
    print(f"kdnlp: {msg}", file=sys.stderr, flush=True)

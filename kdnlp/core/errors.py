"""The one error type users see (the CLI prints it on one line and exits with code 2), and progress messages."""
import sys


class KdnlpError(Exception):
    """A problem with the user's input (a bad value, a missing file); never a bug in kdnlp."""


class LineStream:
    """A text stream that knows whether the next write starts a line: progress bars redraw their line after a
    carriage return and may stop without ending it (at a tty a bare carriage return has gone back to the start)."""

    def __init__(self, stream):
        self.stream = stream
        self.at_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_start = text.endswith("\n") or (text.endswith("\r") and self.stream.isatty())
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def line(text: str) -> None:
    """`text` on stderr on a line of its own, never at the end of a progress bar's."""
    start = "" if getattr(sys.stderr, "at_start", True) else "\n"
    print(f"{start}{text}", file=sys.stderr, flush=True)


def say(msg: str) -> None:
    """A progress message for the user, on stderr (stdout carries results)."""
    line(f"kdnlp: {msg}")

"""The one exception type the core raises for bad input.

Every message is a single line that names the file, package or URL at fault and says what to do.
The command line turns it into `error: <message>` and a non-zero exit, never a traceback.
"""

__all__ = ["OciBuildError"]


class OciBuildError(Exception):
    """Bad input or a failed check; the message is meant for the user as is."""

"""The one exception type the CLI turns into a clean `Error: ...` line and exit code 1."""


class MyoError(Exception):
    """A failure the user can act on: the message names the file, sequence or option and the fix."""

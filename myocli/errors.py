"""The one exception type the CLI turns into a clean `Error: ...` line and exit code 1, and its
kind for a value that does not fit: a usage error of the option that gave it."""


class MyoError(Exception):
    """A failure the user can act on: the message names the file, sequence or option and the fix."""


class OptionError(MyoError):
    """A value the user gave that the loaded model cannot take, tied to the option that gave it: a
    command shows it as a usage error of `option` (exit 2), `myo demo`'s page as its message."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option

"""The one error type users see.

Anything caused by the user's input (a config field, a data row, a missing path) raises
:class:`LorasumError` with a message that names the place and says what to do. The CLI
prints it as one line and exits with status 2, never with a traceback.
"""


class LorasumError(Exception):
    """A problem with the user's input, explained in one line."""

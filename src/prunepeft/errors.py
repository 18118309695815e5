"""Errors a user can cause and fix. The CLI prints them in one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input: the message says what, why, and what to do."""

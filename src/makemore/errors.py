"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class MakemoreError(Exception):
    """A problem with the user's input, arguments or files (not a bug in makemore)."""

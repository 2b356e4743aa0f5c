"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""


class DetforgeError(Exception):
    """Base of every error detforge reports to a user as one line."""


class InputError(DetforgeError):
    """Bad input: the message names the file, the row/record and the field."""

    def __init__(self, file: object, record: object | None, field: str | None, reason: str):
        where = str(file)
        if record is not None:
            where += f", record {record}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {reason}")
        self.file, self.record, self.field, self.reason = str(file), record, field, reason

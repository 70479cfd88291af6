"""Errors that name the file, row or slide at fault and say what to do."""


class HistodistillError(Exception):
    """Base class: a problem with the user's inputs or configuration (not a bug)."""


class InputError(HistodistillError):
    """A sheet, table or config value is wrong; the message names the file and the row."""


class SlideError(HistodistillError):
    """One slide cannot be processed; the message names the slide and its path."""

    def __init__(self, slide_id: str, path: object, reason: str) -> None:
        self.slide_id = slide_id
        self.path = str(path)
        self.reason = reason
        super().__init__(f"slide {slide_id!r} ({self.path}): {reason}")


class WeightsError(HistodistillError):
    """A model weight file is missing or does not match the architecture."""

"""Errors raised by the model package; the CLI turns them into one-line messages."""


class ModelError(Exception):
    """Base class for every error the model package raises on bad input."""


class WeightsFileError(ModelError):
    """A pretrained weights file is missing, unreadable or does not fit the backbone."""


class DatasetError(ModelError):
    """A labelled data set is missing, empty or malformed."""


class ModelDirectoryError(ModelError):
    """A model directory is missing a file or holds a file that cannot be read."""

"""The one exception type for errors a user can cause.

A malformed model, an unsupported op or attribute, a budget no schedule meets: each
raises `MCUCError` with a message naming the op or tensor and what to do. The CLI prints
the message without a traceback and exits non-zero.
"""


class MCUCError(Exception):
    """An error caused by the input (model, options), not by a bug in mcuc."""

"""The error of :mod:`bump.evaluate`: an input it cannot score, with where and why."""

from __future__ import annotations

from ingest.errors import BumpError


class EvaluationInputError(BumpError, ValueError):
    """A truth, defects or impacts file (or object) cannot be evaluated; the message says where and why."""

    code = "evaluation_input"

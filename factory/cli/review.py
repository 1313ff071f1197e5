"""`bin/generate review`: clinician review of silver or bronze rows in the browser (factory/review/).

Also runnable on its own: `python -m factory.cli.review` (the tests start the server this way).
"""

from __future__ import annotations

from factory.cli.options import command
from factory.core.specs import ReviewSpec


@command(ReviewSpec)
def review(spec: ReviewSpec) -> None:
    from factory.review.commands import serve_review

    serve_review(spec)


if __name__ == "__main__":  # the tests start the server this way
    from factory.cli.main import run_command

    run_command(review)

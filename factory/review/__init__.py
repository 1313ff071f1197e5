"""Clinician review in the browser: a local web app over a run's silver or bronze rows.

`store` keeps the decisions (an append-only side table `<run>/<dataset>_review/`), `queue` builds the
review order and each row's context, `app` is the Starlette app and its local server (`bin/generate
review`). The page lives in `static/` (plain HTML, CSS and JS; nothing is fetched from outside the machine).
"""

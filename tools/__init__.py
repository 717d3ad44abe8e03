"""Development tooling (sample-data generator, name lists, role docs): not in the mailgov package.

Run from the repository root, e.g. ``python -m tools.generate --count 2000 -o /tmp/x.yaml``.
"""

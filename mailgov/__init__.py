"""mailgov: the ministry's e-mail system as code.

Pipeline, one module per stage: load → validate → plan → apply → verify → report.
"""

__version__ = "0.1.0"

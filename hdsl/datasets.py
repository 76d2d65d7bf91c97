"""Real multilevel data sets (the public namespace ``hdsl.datasets``; the code is
:mod:`hdsl.workflow.datasets`)."""

from .workflow.datasets import available, load

__all__ = ["load", "available"]

"""Training, evaluation and dataset tools for the ASN-neutrality classifier.

Needs the ``[train]`` extra. The light ``inference`` package never imports this one.
"""

__all__: list[str] = []

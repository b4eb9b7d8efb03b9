"""Threshold analytics: what each age threshold from 16 to 30 would mean, in figures.

:mod:`~auditor.threshold.figures` works them out (pure), :mod:`~auditor.threshold.inputs` reads
what they are computed from and :mod:`~auditor.threshold.chart` draws them.
"""

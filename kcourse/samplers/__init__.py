"""Decoding strategies, one per file: temperature / nucleus sampling (`nucleus`), and
the in-graph generation loop of recurrent models (`recurrent`)."""

from kcourse.samplers.nucleus import sample_next
from kcourse.samplers.recurrent import sample_ids

__all__ = ["sample_ids", "sample_next"]

"""Decoding strategies, one per file: temperature / nucleus sampling (`nucleus`), the
in-graph generation loop of recurrent models (`recurrent`), greedy decoding (`greedy`)
and beam search (`beam`)."""

from kcourse.samplers.beam import beam_search
from kcourse.samplers.greedy import greedy_ids
from kcourse.samplers.nucleus import sample_next
from kcourse.samplers.recurrent import sample_ids

__all__ = ["beam_search", "greedy_ids", "sample_ids", "sample_next"]

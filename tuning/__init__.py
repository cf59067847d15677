"""KerasTuner searches for any kcourse track: `TrackHyperModel` (the track's model and
training code as a `keras_tuner.HyperModel`) and `search.coarse_to_fine` (the course's
two-stage search, its space read from the experiment's `search` data)."""

"""Generating items: the Sampler, batched token generation, constraints, labels to draw, ranking."""

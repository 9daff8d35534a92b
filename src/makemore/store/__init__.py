"""What a run keeps on disk: the checkpoint format, the run directory, the run description, loaded runs."""

"""What a run knows: NLL and per-item scores, held-out files, diagnostics for plots."""

"""Training: the loop (Trainer) and its callbacks, how one step runs (device, DDP, compile, bf16),
torchrun's world, --time budgets, CPU threads, weight averaging, the lr sweep; train() and resume()."""

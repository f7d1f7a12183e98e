"""Redis adapters: the key layout, per-user state, recommendation lists and the model log."""

"""Step 3: the shared online models and how they learn.

Catalogue, item-item co-occurrence, item statistics, the river ranker, the learn records that
carry an event to them and the pure ``learn_batch`` step. Pure: shared between workers by
``pipeline.worker`` through ``pipeline.stores``.
"""

"""Step 2: a user's state and the pure rules that fold an event into it.

Counts, decayed category affinities, history, exclusions, de-duplication ids, controls
(what people tell recloop) and segments. Pure: persisted by ``pipeline.stores``.
"""

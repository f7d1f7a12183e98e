"""Online models: co-occurrence, item statistics and popularity, the river ranker.

All learn one event at a time and hold bounded state.
"""

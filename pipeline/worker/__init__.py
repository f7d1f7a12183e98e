"""The worker: a batch processor composed from stores, a publisher and a clock, plus its timers.

``agents.app`` hands it raw batches from Faust; everything that decides lives in the pure
packages it calls (events, features, model, lists, publish).
"""

"""Step 1 of the data path: raw Kafka bytes -> a validated event (or a dead letter) -> a signal.

Pure: no Redis, Kafka or Faust here (an import contract checks it).
"""

"""recloop's library: configuration, features, models, ranking, Redis and Kafka I/O.

Nothing here imports Faust: the logic runs and is tested without a broker; ``agents/`` wires
it into a Faust app.
"""

__version__ = "0.1.0"

"""Kafka adapters: the producer client, topic administration, consumer lag, security options."""

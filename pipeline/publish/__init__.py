"""Step 5: when a list is rebuilt (coalescing, background, handover, rescue) and publishing it.

The publisher is composed from ports (a list store, a record sender, a clock), so this
package never names Redis or Kafka itself.
"""

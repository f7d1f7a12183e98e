"""The Faust app and its agents: thin wiring over ``pipeline``."""

"""``recloop serve``: the HTTP API v1 and the live web console, a stateless process.

Build the app with :func:`pipeline.serve.app.create_api`; run it with ``recloop serve``.
Nothing here ranks: lists are read from what the workers wrote.
"""

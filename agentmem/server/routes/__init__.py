"""The ``/v1`` routers, one module per resource; ``app.py`` includes each."""

"""A local MailUp emulator: a real HTTP server for tests and demos (MailUp is unreachable here).

Start one with ``Sandbox().start()`` (or as a context manager) and point clients at
``sandbox.token_url``, ``console_url``, ``send_url`` and ``sms_url``; ``serve(host, port)`` runs
one in the foreground for demos.
"""

from sandbox.server import Sandbox, serve
from sandbox.state import SandboxState

__all__ = ["Sandbox", "SandboxState", "serve"]

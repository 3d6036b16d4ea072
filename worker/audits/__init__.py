"""The ledger's audits: what SMS cost, how many jobs ran and how, what failed and why, what
was sent to one recipient, and the in_doubt jobs an operator resolves.

Each function takes the settings and returns small dataclasses (``as_dict()`` gives the flat,
JSON-ready row the CLI prints); ``producers.audit`` offers them to applications.
"""

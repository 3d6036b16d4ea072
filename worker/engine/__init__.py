"""The engine that runs job kinds: claim, gate, call, classify, record; retries, pauses,
shared limits, MailUp clients from settings, the sweeper. It knows no job kind by name."""

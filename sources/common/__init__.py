"""The layer every vendor stands on: HTTP with retries and rate limits, errors, secret masking, date windows,
the day cursor, Arrow conversion and run monitoring. Import from the module that holds a thing
(`sources.common.http`), so that a command pays only for the modules it uses."""

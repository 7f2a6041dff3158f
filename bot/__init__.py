"""interview-bot's platform-neutral core.

Nothing under ``bot`` may import a platform SDK (discord, slack_bolt, slack_sdk) or ``adapters``:
adapters translate platform payloads into :mod:`bot.events` and render :mod:`bot.render` messages.
"""

"""The bot's features, each a discord.py extension (`async def setup(bot)`) loaded by `MoodringBot.setup_hook`."""

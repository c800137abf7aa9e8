"""Plan (pure diff of the lab against host facts), apply (parallel executor) and the journal."""

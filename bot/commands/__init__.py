"""/quiz commands: parsing typed text and handling commands into neutral replies."""

"""SayIt services."""

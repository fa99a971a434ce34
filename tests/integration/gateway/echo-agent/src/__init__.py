"""Echo agent."""

"""Projects, API keys and the viewer."""

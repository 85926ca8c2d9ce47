"""kling-mcp: an MCP server for the Kling video models on Runware."""

__version__ = "0.1.0"

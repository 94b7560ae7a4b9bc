"""`forge`: validate, diff, test, deploy and pull Domain and Agent documents from the command line.

Offline work (validate, diff of two files, test) needs no server; deploy and pull speak the REST
API of a tenant host with an API token. See docs/forge.md. `forge mcp` bridges an MCP client on
stdio to the tenant's /mcp endpoint (docs/mcp.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agent-foundry")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

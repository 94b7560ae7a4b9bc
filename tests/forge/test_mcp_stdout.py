"""`forge mcp` writes nothing but the MCP protocol on stdout."""

from pathlib import Path


def test_forge_mcp_never_writes_anything_but_the_protocol_on_stdout_even_with_global_json():
    """`forge mcp`'s stdout is the protocol (docs/mcp.md): `--json`, before the command name or
    after it, is refused on stderr, and stdout stays empty."""
    import subprocess
    import sys

    forge = Path(sys.executable).with_name("forge")
    for args in (["--json", "mcp"], ["mcp", "--json"]):
        result = subprocess.run(
            [str(forge), *args, "--url", "http://127.0.0.1:1/mcp", "--token", "af_x_y"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            cwd="/tmp",
        )
        assert result.returncode == 2, (result.returncode, result.stderr)
        assert result.stdout == "", f"forge mcp wrote to the protocol's stdout: {result.stdout!r}"

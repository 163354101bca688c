"""A client of `agentrun mcp` written with the official Python MCP SDK (`mcp` on PyPI).

It starts the agentrun binary as an MCP server over stdio, lists its tools, starts a run
on the simulator while collecting its progress notifications, reads the run's summary,
starts a second run without asking for the simulator (with no Ollama server answering,
it must fall back to the simulator), lists the runs, plans the workflow, asks what Ollama has resident (an error when no
server answers), asks for a run with a negative time scale (an error), and calls `validate` and `run` on a
workflow that does not exist and on one that is invalid, which must fail. The server
inherits this process's environment and directory. What the client saw is printed as one
JSON object on stdout.

usage: python_client.py AGENTRUN WORKFLOW MISSING_WORKFLOW INVALID_WORKFLOW RUNS_DIR
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    """The text content of a tool result, joined."""
    return "".join(block.text for block in result.content if block.type == "text")


async def main(agentrun, workflow, missing, invalid, runs_dir):
    server = StdioServerParameters(command=agentrun, args=["mcp"], env=dict(os.environ))
    report = {}
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            initialized = await session.initialize()
            report["server_name"] = initialized.server_info.name
            tools = await session.list_tools()
            report["tools"] = sorted(tool.name for tool in tools.tools)

            progress = []

            async def on_progress(done, total, message):
                progress.append({"progress": done, "total": total, "message": message})

            run = await session.call_tool(
                "run",
                {"workflow": workflow, "sim": True, "runs_dir": runs_dir},
                progress_callback=on_progress,
            )
            report["run_is_error"] = bool(run.is_error)
            report["run"] = json.loads(text_of(run)) if not run.is_error else text_of(run)
            report["progress"] = progress

            if not run.is_error:
                summary = await session.call_tool("summary", {"run": report["run"]["run_dir"]})
                report["summary_is_error"] = bool(summary.is_error)
                report["summary"] = json.loads(text_of(summary))

            fallback = await session.call_tool("run", {"workflow": workflow, "runs_dir": runs_dir})
            report["fallback_is_error"] = bool(fallback.is_error)
            report["fallback"] = (
                json.loads(text_of(fallback)) if not fallback.is_error else text_of(fallback)
            )

            runs = await session.call_tool("runs", {"runs_dir": runs_dir})
            report["runs_is_error"] = bool(runs.is_error)
            report["runs"] = json.loads(text_of(runs))

            scale = await session.call_tool(
                "run", {"workflow": workflow, "sim": True, "time_scale": -1}
            )
            report["negative_time_scale"] = {"is_error": bool(scale.is_error), "text": text_of(scale)}

            plan = await session.call_tool("plan", {"workflow": workflow, "sim": True})
            report["plan_is_error"] = bool(plan.is_error)
            report["plan"] = json.loads(text_of(plan)) if not plan.is_error else text_of(plan)

            ps = await session.call_tool("ps", {})
            report["ps"] = {"is_error": bool(ps.is_error), "text": text_of(ps)}

            for name, path in (("missing", missing), ("invalid", invalid)):
                for tool in ("validate", "run"):
                    arguments = {"workflow": path}
                    if tool == "run":
                        arguments["sim"] = True
                    result = await session.call_tool(tool, arguments)
                    report[f"{tool}_{name}"] = {"is_error": bool(result.is_error), "text": text_of(result)}
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
